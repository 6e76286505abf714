"""Decode speed and time to first token: the app (through the OpenAI API and through the UI) against
raw llama-cpp-python in a process of its own (bench/raw_llama.py), on the embedded model.

The reference is what a user would run instead of the app: llama-cpp-python's own chat path, same
model, threads, context and sampling settings, in a separate process. While one side runs, the other
is paused (SIGSTOP), so neither pays for the other; rounds are interleaved and medians reported.

    python bench/serving.py [--rounds 5] [--max-tokens 200]

Targets (issue 12): API and UI decode each >= 0.95 of raw; API time to first token within 20 ms of
raw on a short prompt. Also prints the seconds from `python app.py` to the first page served.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()

import httpx  # noqa: E402

from tests.support.gradio_session import GradioSession, html_text  # noqa: E402
from tests.support.server_utils import free_port  # noqa: E402
from webui.engine.catalog import embedded_model_path  # noqa: E402

LONG = "Write a very long story about a dragon who learns to bake bread. Use many paragraphs."
SHORT = "Say hello."
SAMPLING = {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "seed": 42}
N_CTX = 4096


def decode_rate(stamps: list[tuple[float, int]]) -> float:
    """tok/s between the first and last delta (prefill excluded). stamps: (time, tokens so far)."""
    (t0, n0), (t1, n1) = stamps[0], stamps[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else 0.0


@contextmanager
def paused(proc: subprocess.Popen):
    """``proc`` stopped (SIGSTOP) for the duration: it takes no CPU while the other side is measured."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


class Raw:
    """bench/raw_llama.py, one request at a time over its stdin/stdout."""

    def __init__(self, model: Path, threads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "raw_llama.py"), str(model), "--n-ctx", str(N_CTX),
             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def ask(self, content: str, max_tokens: int, count) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """(time to first token, decode tok/s)."""
        request = {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **SAMPLING}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        text, stamps = "", []
        for t, part in zip(out["stamps"], out["parts"]):
            text += part
            stamps.append((t, count(text)))
        return out["ttft"], decode_rate(stamps)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def api_ask(url: str, content: str, max_tokens: int, count) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Through /v1/chat/completions, streaming: (time to first token, decode tok/s)."""
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "stream": True,
            **SAMPLING}
    start = time.perf_counter()
    lines: list[tuple[float, str]] = []  # kept as they come; parsed and counted after the reply, as raw's are
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            lines.append((time.perf_counter() - start, line))
    text, stamps = "", []
    for t, line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        if delta:
            text += delta
            stamps.append((t, count(text)))
    return stamps[0][0], decode_rate(stamps)


def ui_rate(url: str, max_tokens: int, count) -> float:  # type: ignore[no-untyped-def]
    """Through the UI, as the page does it: Gradio's ``prepare`` step, then the reply's own event
    stream (``live-reply/<token>``, what the page writes into the live bubble). The Parameters tab
    holds the same sampling settings and reply length as raw's requests: decode slows as a reply
    grows, so a longer reply would read as a slower app."""
    ui = GradioSession(url, f"bench-{time.monotonic_ns()}")
    ui.page_load()
    ui.run("new_chat")
    values = {"chat-input": LONG, "param-max_new_tokens": max_tokens, **{f"param-{k}": v for k, v in SAMPLING.items()}}
    events = [(now, e["html"]) for now, e in ui.live_reply("prepare", values) if e.get("html")]
    # counted after the reply, as raw's deltas are: the bench's own work must not compete with the app's
    return decode_rate([(now, count(html_text(html))) for now, html in events])


def start_server(data_dir: Path, port: int, threads: int) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--port", str(port), "--data-dir", str(data_dir),
         "--n-ctx", str(N_CTX), "--threads", str(threads)],
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=200)
    args = ap.parse_args()
    import llama_cpp

    from webui.engine.llamacpp_backend import default_threads

    threads = default_threads()
    model = embedded_model_path()
    vocab = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)  # counts tokens of streamed text
    count = lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=True))  # noqa: E731
    rates: dict[str, list[float]] = {"raw": [], "api": [], "ui": []}
    ttft: dict[str, list[float]] = {"raw": [], "api": []}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        app, startup_s = start_server(Path(tmp) / "data", port, threads)
        url = f"http://127.0.0.1:{port}"
        raw = Raw(model, threads)
        try:
            api_ask(url, SHORT, 8, count)  # the first request's one-time costs, on both sides
            with paused(app):
                raw.ask(SHORT, 8, count)
            for _ in range(args.rounds):  # interleaved, so drift hits every path alike
                with paused(app):
                    t, r = raw.ask(LONG, args.max_tokens, count)
                    rates["raw"].append(r)
                    ttft["raw"].append(raw.ask(SHORT, 8, count)[0])
                with paused(raw.proc):
                    rates["api"].append(api_ask(url, LONG, args.max_tokens, count)[1])
                    ttft["api"].append(api_ask(url, SHORT, 8, count)[0])
                    rates["ui"].append(ui_rate(url + "/", args.max_tokens, count))
        finally:
            raw.close()
            app.terminate()
            app.wait()

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"embedded SmolLM2-135M-Instruct Q4_1, {threads} threads, n_ctx {N_CTX}, {args.rounds} interleaved rounds;"
          " raw = llama-cpp-python in its own process, the other side paused")
    for k in ("raw", "api", "ui"):
        print(f"  {k:<4} decode tok/s  median {med[k]:7.1f}   rounds {' '.join(f'{r:.1f}' for r in rates[k])}")
    for path in ("api", "ui"):
        per_round = [p / r for p, r in zip(rates[path], rates["raw"])]
        rounds = " ".join(f"{x:.2f}" for x in per_round)
        print(f"  ratio {path}/raw = {statistics.median(per_round):.3f} (rounds {rounds})   (target >= 0.95)")
    raw_t, api_t = statistics.median(ttft["raw"]), statistics.median(ttft["api"])
    print(f"  time to first token, short prompt: raw {raw_t * 1000:.0f} ms, api {api_t * 1000:.0f} ms, "
          f"difference {(api_t - raw_t) * 1000:+.0f} ms   (target <= +20 ms)")
    print(f"  start-up: python app.py -> first page served in {startup_s:.2f} s   (target <= 8 s)")


if __name__ == "__main__":
    main()
