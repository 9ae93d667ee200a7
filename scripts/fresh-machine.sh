#!/usr/bin/env bash
# Clone this repo into a sibling folder (so ../shared resolves as in CI) and run the README's
# two commands from nothing, timing each phase: install, artifact build, first chat answer, tests.
set -euo pipefail
src=$(git rev-parse --show-toplevel)
dest=${1:-$(dirname "$src")/fresh-check}
rm -rf "$dest"
git clone -q "$src" "$dest"
cd "$dest"
stamp() { date +%s; }
t0=$(stamp)
make setup >"$dest/setup.log" 2>&1
t1=$(stamp)
make artifacts >"$dest/artifacts.log" 2>&1
t2=$(stamp)
# `make run` is setup + artifacts + app: both are done, so this is the app's start.
make run >"$dest/run.log" 2>&1 &
app=$!
trap 'kill $app 2>/dev/null || true; pkill -f "launch.py app" || true' EXIT
answer=$(.venv/bin/python - <<'PY'
import sys, time
from gradio_client import Client
deadline = time.time() + 600
while True:
    try:
        client = Client("http://127.0.0.1:7860/", verbose=False)
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(2)
reply = client.predict("what is this worth: Sony WH-1000XM5 wireless noise cancelling headphones", api_name="/chat")
print(reply[1][-1]["content"][0]["text"].splitlines()[0])
PY
)
t3=$(stamp)
kill $app 2>/dev/null || true
pkill -f "launch.py app" || true
make test >"$dest/test.log" 2>&1
t4=$(stamp)
cat <<REPORT
fresh clone: $dest
| phase | seconds |
|---|---|
| install (make setup) | $((t1 - t0)) |
| default artifacts (make artifacts) | $((t2 - t1)) |
| app start to first chat answer | $((t3 - t2)) |
| make test | $((t4 - t3)) |
first answer: $answer
tests: $(grep -E "passed|failed" "$dest/test.log" | tail -1)
REPORT
