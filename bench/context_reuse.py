"""Long chats at full speed (issue 12): time to first token at the context limit and when chats
alternate, for the app as shipped (context shift + a saved state per chat) against the same app with
both off (``--no-context-shift --prompt-cache-mb 0``: every changed prompt read again), interleaved,
in one run, through the OpenAI API as a client would use it.

    python bench/context_reuse.py [--n-ctx 2048] [--turns 10]

Prints, per variant: the median TTFT of a short chat's turns; the mean and max TTFT over ``--turns``
consecutive turns of a chat at the context limit (target: mean <= 2x the short chat's median); the
median TTFT of two ~2,000-token chats alternating (target <= 1.5 s); and how many greedy replies at
the context limit differ between the two variants (the shift is an approximation).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server_utils import RunningApp, start_app  # noqa: E402

VARIANTS = {"app": [], "no reuse": ["--no-context-shift", "--prompt-cache-mb", "0"]}
SYSTEM = "You are Captain Mira, a lighthouse keeper who answers in two short sentences."


def start(args: list[str], data_dir: Path, n_ctx: int) -> RunningApp:
    return start_app(data_dir, "--n-ctx", str(n_ctx), *args, timeout=180)


def ask(url: str, messages: list[dict[str, str]], max_tokens: int = 16) -> tuple[float, str]:
    """(seconds to the first streamed token, the whole greedy reply)."""
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    start = time.perf_counter()
    first = None
    text = ""
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            if delta and first is None:
                first = time.perf_counter() - start
            text += delta
    return (first if first is not None else time.perf_counter() - start), text


def user_turn(i: int, topic: str) -> dict[str, str]:
    return {"role": "user", "content": f"Question {i} about {topic}: tell me about the light, the rocks, the ships "
                                       f"and the storms you saw in year {1900 + i}, and what the sea smelled like."}


def filled_chat(topic: str, n_turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}]
    for i in range(n_turns):
        messages += [user_turn(i, topic), {"role": "assistant", "content": f"In {1900 + i} the light of {topic} "
                     "burned all night and three ships passed the rocks safely. The storms were loud but brief."}]
    return messages


@dataclass
class Ttft:
    """Seconds to the first token per variant: a short chat's turns, consecutive turns at the context
    limit, two chats alternating; and how many greedy replies at the limit differ between variants."""

    n_ctx: int
    turns: int
    short: dict[str, list[float]]
    limit: dict[str, list[float]]
    alternating: dict[str, list[float]]
    differ: int


def measure(n_ctx: int = 2048, turns: int = 10) -> Ttft:
    """Start both variants (``VARIANTS``) and time their first tokens, interleaved (see the module's doc)."""
    apps: dict[str, str] = {}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name, flags in VARIANTS.items():
                app = start(flags, Path(tmp) / name.replace(" ", "-"), n_ctx)
                procs.append(app)
                apps[name] = app.url
            short: dict[str, list[float]] = {n: [] for n in apps}
            limit: dict[str, list[float]] = {n: [] for n in apps}
            alternating: dict[str, list[float]] = {n: [] for n in apps}
            # a short chat's turns
            chat = [{"role": "system", "content": SYSTEM}]
            for i in range(5):
                chat.append(user_turn(i, "Gull Point"))
                replies = {}
                for name, url in apps.items():
                    ttft, replies[name] = ask(url, chat)
                    short[name].append(ttft)
                chat.append({"role": "assistant", "content": replies["app"]})
            # a chat at the context limit: 40 turns (~4,000 tokens) of which the prompt keeps the newest that fit
            chat = filled_chat("Gull Point", 40)
            differ = 0
            for turn in range(turns + 1):  # turn 0 reads the chat for the first time: not counted
                chat.append(user_turn(100 + turn, "Gull Point"))
                replies = {}
                for name, url in (apps.items() if turn % 2 else reversed(apps.items())):
                    ttft, replies[name] = ask(url, chat)
                    if turn:
                        limit[name].append(ttft)
                if turn:
                    differ += replies["app"] != replies["no reuse"]
                chat.append({"role": "assistant", "content": replies["app"]})
            # two ~2,000-token chats, alternating
            chats = [filled_chat("Gull Point", 22), filled_chat("Black Rock", 22)]
            for turn in range(7):  # turn 0: each chat read once (not counted)
                for c, chat in enumerate(chats):
                    chat.append(user_turn(200 + turn, ("Gull Point", "Black Rock")[c]))
                    replies = {}
                    for name, url in apps.items():
                        ttft, replies[name] = ask(url, chat)
                        if turn:
                            alternating[name].append(ttft)
                    chat.append({"role": "assistant", "content": replies["app"]})
                    del chat[1:3]  # keep it at ~2,000 tokens: the oldest turn goes
        finally:
            for app in procs:
                app.stop()
    return Ttft(n_ctx, turns, short, limit, alternating, differ)


def report(r: Ttft) -> None:
    """Print ``measure``'s rows."""
    print(f"n_ctx {r.n_ctx}; seconds to the first token (TTFT)\n")
    print(f"{'variant':>10}  {'short chat median':>17}  {'at limit mean':>13}  {'at limit max':>12}  "
          f"{'mean/short':>10}  {'alternating median':>18}")
    for name in r.short:
        short_median = statistics.median(r.short[name])
        mean = statistics.mean(r.limit[name])
        print(f"{name:>10}  {short_median:17.2f}  {mean:13.2f}  {max(r.limit[name]):12.2f}  "
              f"{mean / short_median:10.2f}  {statistics.median(r.alternating[name]):18.2f}")
    print(f"\nat the limit, per turn (app):      {' '.join(f'{t:.2f}' for t in r.limit['app'])}")
    print(f"at the limit, per turn (no reuse): {' '.join(f'{t:.2f}' for t in r.limit['no reuse'])}")
    print(f"greedy replies at the limit that differ between the variants: {r.differ} of {r.turns}")
    print("targets: app mean/short <= 2; app alternating median <= 1.5 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    report(measure(args.n_ctx, args.turns))


if __name__ == "__main__":
    main()
