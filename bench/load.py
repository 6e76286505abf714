"""Load test: 32 concurrent OpenAI-API clients for 30 s against `python app.py` on the default model.

Prints one client's decode rate alone, the aggregate rate under load, their ratio, latency
percentiles and the error count (which must be 0). Usage: python bench/load.py [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server_utils import start_app  # noqa: E402

BODY = {"model": "default", "messages": [{"role": "user", "content": "Tell me a short story about a cat."}],
        "max_tokens": 48, "temperature": 0.7}


def run_client(url: str, until: float, tokens: list[int], latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(timeout=300) as client:
        while time.monotonic() < until:
            start = time.monotonic()
            try:
                r = client.post(f"{url}/v1/chat/completions", json=BODY)
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                continue
            tokens.append(r.json()["usage"]["completion_tokens"])
            latencies.append(time.monotonic() - start)


def measure(url: str, clients: int, seconds: float) -> tuple[float, list[float], list[str], int]:
    tokens: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    until = start + seconds
    threads = [
        threading.Thread(target=run_client, args=(url, until, tokens, latencies, errors)) for _ in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start  # includes the requests still in flight at the deadline
    return sum(tokens) / elapsed, latencies, errors, len(tokens)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    app = start_app(Path(tempfile.mkdtemp()) / "data")
    try:
        httpx.post(f"{app.url}/v1/chat/completions", json={**BODY, "max_tokens": 4}, timeout=120)  # warm up
        single, single_lat, single_err, n1 = measure(app.url, 1, 10)
        agg, lat, errors, n = measure(app.url, args.clients, args.seconds)
    finally:
        app.stop()
    q = statistics.quantiles(lat, n=20) if len(lat) >= 2 else [float("nan")] * 19
    print(f"one client alone: {single:.1f} tok/s ({n1} requests, errors {len(single_err)})")
    print(f"{args.clients} clients for {args.seconds:.0f}s: {agg:.1f} tok/s aggregate, {n} requests, "
          f"latency p50 {q[9]:.1f}s p95 {q[18]:.1f}s, errors {len(errors)}")
    print(f"aggregate / one client: {agg / single:.2f}x (one inference thread, requests served FIFO)")
    for e in errors[:5]:
        print("  error:", e)
    return 1 if errors or single_err else 0


if __name__ == "__main__":
    sys.exit(main())
