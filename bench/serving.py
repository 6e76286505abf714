"""Decode speed: raw llama.cpp vs through the engine vs through the UI, on the embedded model.

Prints tok/s for each path and the ratios engine/raw and UI/raw, measured in one run with the
paths interleaved (this machine is shared and noisy: absolute numbers drift, ratios less so).
Also prints the seconds from `python app.py` to the first page served.

    python bench/serving.py [--rounds 3] [--max-tokens 256]

Targets (issue 2): engine and UI >= 0.97 of raw; start-up <= 8 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()

import httpx  # noqa: E402

from tests.support.gradio_session import GradioSession, html_text  # noqa: E402
from webui.engine.catalog import embedded_spec  # noqa: E402
from webui.engine.engine import Engine  # noqa: E402
from webui.generation.params import GenerationParams  # noqa: E402

PROMPT = "Write a very long story about a dragon who learns to bake bread. Use many paragraphs."


def decode_rate(stamps: list[tuple[float, int]]) -> float:
    """tok/s between the first and last delta (prefill excluded). stamps: (time, tokens so far)."""
    (t0, n0), (t1, n1) = stamps[0], stamps[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else 0.0


def raw_rate(llm, prompt: str, params: GenerationParams) -> float:  # type: ignore[no-untyped-def]
    stamps: list[tuple[float, int]] = []
    n = 0
    for chunk in llm.create_completion(
        prompt, max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
        top_k=params.top_k, min_p=params.min_p, repeat_penalty=params.repetition_penalty, seed=params.seed, stream=True,
    ):
        if chunk["choices"][0]["text"]:
            n += 1
            stamps.append((time.perf_counter(), n))
    return decode_rate(stamps)


def engine_rate(engine: Engine, messages: list[dict[str, str]], params: GenerationParams) -> float:
    stamps: list[tuple[float, int]] = []
    handle = engine.generate(engine.format_chat(messages), params)
    for _ in handle:
        stamps.append((time.perf_counter(), handle.stats.completion_tokens))
    return decode_rate(stamps)


def ui_rate(url: str, count_tokens) -> float:  # type: ignore[no-untyped-def]
    """Through the UI, as the page does it: Gradio's ``prepare`` step, then the reply's own event
    stream (``live-reply/<token>``, what the page writes into the live bubble)."""
    ui = GradioSession(url, f"bench-{time.monotonic_ns()}")
    ui.page_load()
    ui.run("new_chat")
    stamps: list[tuple[float, int]] = []
    for now, event in ui.live_reply("prepare", {"chat-input": PROMPT}):
        if event.get("html"):
            stamps.append((now, count_tokens(html_text(event["html"]))))
    return decode_rate(stamps)


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}/"
    while True:
        if proc.poll() is not None:
            raise SystemExit("app.py exited during start-up")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, time.perf_counter() - start
        except httpx.HTTPError:
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--port", type=int, default=7899)
    args = ap.parse_args()

    from webui.engine.llamacpp_backend import default_threads

    # The app's default sampling settings, with a fixed seed so every path decodes the same text.
    params = GenerationParams(max_new_tokens=args.max_tokens, seed=42)
    messages = [{"role": "user", "content": PROMPT}]
    engine = Engine()
    engine.load(embedded_spec())
    prompt = engine.format_chat(messages)

    with tempfile.TemporaryDirectory() as tmp:
        server, startup_s = start_server(Path(tmp) / "data", args.port)
        try:
            # The raw path calls the very llama.cpp object the engine loaded, directly from this
            # thread while the worker is idle: one model in memory, so the two paths differ only
            # by the engine's machinery (worker thread, queue, stop filter).
            llm = engine.model._llm
            count = lambda text: len(llm.tokenize(text.encode(), add_bos=False, special=True))  # noqa: E731
            rates: dict[str, list[float]] = {"raw": [], "engine": [], "ui": []}
            for _ in range(args.rounds):  # interleaved so drift hits every path alike
                rates["raw"].append(raw_rate(llm, prompt, params))
                rates["engine"].append(engine_rate(engine, messages, params))
                rates["ui"].append(ui_rate(f"http://127.0.0.1:{args.port}/", count))
        finally:
            server.terminate()
            server.wait()
            engine.shutdown()

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"embedded SmolLM2-135M-Instruct Q4_1, llama.cpp, {default_threads()} threads, "
          f"{args.rounds} interleaved rounds")
    for k in ("raw", "engine", "ui"):
        print(f"  {k:<7} decode tok/s  median {med[k]:7.1f}   rounds {' '.join(f'{r:.1f}' for r in rates[k])}")
    # Each round's paths run back to back, so the median of per-round ratios cancels drift best.
    for path in ("engine", "ui"):
        per_round = [p / r for p, r in zip(rates[path], rates["raw"])]
        print(f"  ratio {path}/raw = {statistics.median(per_round):.3f} (median of rounds: "
              f"{' '.join(f'{x:.2f}' for x in per_round)}; ratio of medians {med[path] / med['raw']:.3f})"
              "   (target >= 0.97)")
    print(f"  start-up: python app.py -> first page served in {startup_s:.2f} s   (target <= 8 s)")


if __name__ == "__main__":
    main()
