"""Chat load by message kind (price, scan-list, small talk), from a process of its own.

`kind_load_run` starts `python -m tests.chat_load URL KIND SESSIONS MESSAGES DEADLINE_S`: each
session is an asyncio task that sends its messages one after another through Gradio's HTTP API
(POST /gradio_api/call/chat, then that event's stream) under one session hash, as a browser tab
does. So the figures are the server's: gradio_client threads in the server's own process took
the GIL from it and spent more CPU per message (~70 ms) than the server's whole turn.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.faults import PRODUCTS, LoadResult

ROOT = Path(__file__).resolve().parents[1]
KIND_MESSAGES: dict[str, list[str]] = {
    "price": [f"what is this worth: {p}" for p in PRODUCTS],
    "scan-list": ["show me the best deals under $200", "best deals", "list the deals you found",
                  "show me deals under $500", "what deals did you find"],
    # Three recognised (a fixed answer), two for the local model (or the help text when it is busy).
    "small talk": ["hello there", "tell me a joke", "who are you", "do you like cats?", "thanks a lot"],
}
KIND_ANSWERS = {"price": ("Worth about", "rough guess"), "scan-list": ("below worth", "No deals"),
                "small talk": ("DealScout", "welcome", "I can value", "Doing well")}


def kind_load_run(url: str, kind: str, sessions: int, messages_per_session: int = 5,
                  deadline_s: float = 300.0) -> LoadResult:
    """`sessions` sessions at once, each sending `messages_per_session` chat messages of one kind
    in turn; an answer counts when it reads like that kind's (KIND_ANSWERS). A request with
    neither an answer nor a refusal by the deadline is lost."""
    command = [sys.executable, "-m", "tests.chat_load", url, kind, str(sessions), str(messages_per_session),
               str(deadline_s)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=deadline_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load client failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(sessions=sessions, requests=found["requests"], answered=found["answered"],
                      errors=found["errors"], latencies=found["latencies"], seconds=found["seconds"])


async def chat(http, session: str, message: str) -> list:
    """The chat's final output for `message` ([box, messages]); RuntimeError with what the app
    said when it refused."""
    joined = await http.post("gradio_api/call/chat", json={"data": [message, []], "session_hash": session})
    if joined.status_code != 200:
        raise RuntimeError(f"{joined.status_code}: {joined.text[:160]}")
    event, data = "", None
    async with http.stream("GET", f"gradio_api/call/chat/{joined.json()['event_id']}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line.removeprefix("data:"))
                break
    if event != "complete" or not isinstance(data, list):
        raise RuntimeError(f"{event or 'no answer'}: {json.dumps(data)[:160]}")
    return data


async def sessions_at_once(url: str, kind: str, sessions: int, messages: int, deadline_s: float) -> dict:
    import httpx

    texts, markers = KIND_MESSAGES[kind], KIND_ANSWERS[kind]
    found: dict = {"requests": 0, "answered": 0, "errors": [], "latencies": []}
    stop_at = time.monotonic() + deadline_s

    async def session(n: int, http: httpx.AsyncClient) -> None:
        session_hash = uuid.uuid4().hex[:11]
        for i in range(messages):
            if time.monotonic() > stop_at:
                return
            found["requests"] += 1
            started = time.perf_counter()
            try:
                data = await asyncio.wait_for(chat(http, session_hash, texts[(n + i) % len(texts)]),
                                              max(1.0, stop_at - time.monotonic()))
            except TimeoutError:
                continue
            except (RuntimeError, httpx.HTTPError) as err:
                found["errors"].append(str(err)[:200])
                continue
            last = json.dumps(data[1][-1:])
            if any(marker in last for marker in markers):
                found["answered"] += 1
                found["latencies"].append(time.perf_counter() - started)
            else:
                found["errors"].append(f"not a {kind} answer: {last[:160]}")

    limits = httpx.Limits(max_connections=2 * sessions + 4)
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(session(n, http) for n in range(sessions)))
        found["seconds"] = time.perf_counter() - started
    return found


if __name__ == "__main__":
    url, kind, sessions, messages, deadline = sys.argv[1:6]
    print(json.dumps(asyncio.run(sessions_at_once(url, kind, int(sessions), int(messages), float(deadline)))))
