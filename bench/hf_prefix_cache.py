"""The transformers backend's prompt cache (webui/engine/hf_prompt_cache.py): time to first token of
a chat's next turn when the previous request's KV cache is reused, against the same turn read from
scratch, interleaved, in one run, on the embedded SmolLM2 loaded through transformers (dequantized
from its GGUF).

    python bench/hf_prefix_cache.py [--turns 8] [--rounds 5]

Each round: *reuse* generates the chat's previous turn (untimed; it leaves its cache) and times the
next turn; *scratch* clears the cache and times the same turn. Prints the prompt's length, the tokens
reused, each variant's median time to first token, their ratio (reuse ÷ scratch; lower is better), and
whether the greedy replies were the same both ways (they must be: the reuse is exact).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webui.engine.catalog import embedded_model_path  # noqa: E402
from webui.engine.protocol import ModelSpec  # noqa: E402
from webui.engine.transformers_backend import TransformersBackend, TransformersModel  # noqa: E402
from webui.generation.params import GenerationParams  # noqa: E402

SYSTEM = "You are Captain Mira, a lighthouse keeper who answers in two short sentences."
GREEDY = GenerationParams(temperature=0, max_new_tokens=8, seed=1)


def timed(model: TransformersModel, prompt: str) -> tuple[float, str, int]:
    """(seconds to the first token, the reply, prompt tokens reused)."""
    first: list[float] = []
    pieces: list[str] = []

    def emit(text: str, n_tokens: int = 1, logprobs: Any = None) -> bool:
        if not first:
            first.append(time.perf_counter())
        pieces.append(text)
        return True

    start = time.perf_counter()
    stats = model.generate(prompt, GREEDY, emit)
    return (first[0] if first else time.perf_counter()) - start, "".join(pieces), stats.cached_tokens


def build_chat(model: TransformersModel, turns: int) -> tuple[str, str]:
    """(the prompt of the chat's last turn but one, the prompt of its last turn), with the model's replies."""
    messages = [{"role": "system", "content": SYSTEM}]
    prompts = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"Question {i}: tell me about the light, the rocks, the ships "
                                                    f"and the storms you saw in year {1900 + i}."})
        prompt = model.format_chat(messages)
        prompts.append(prompt)
        _, reply, _ = timed(model, prompt)
        messages.append({"role": "assistant", "content": reply})
    return prompts[-2], prompts[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=8, help="turns in the chat (the last one is timed)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    loaded = time.perf_counter()
    model = TransformersBackend().load(ModelSpec(path=str(embedded_model_path())))
    print(f"loaded {model.info.name} through transformers in {time.perf_counter() - loaded:.1f} s")
    previous, last = build_chat(model, max(2, args.turns))
    times: dict[str, list[float]] = {"reuse": [], "scratch": []}
    replies: dict[str, set[str]] = {"reuse": set(), "scratch": set()}
    reused = 0
    for _ in range(args.rounds):
        timed(model, previous)  # leaves the previous turn's cache
        seconds, reply, reused = timed(model, last)
        times["reuse"].append(seconds)
        replies["reuse"].add(reply)
        model.prompt_cache.clear()
        seconds, reply, _ = timed(model, last)
        times["scratch"].append(seconds)
        replies["scratch"].add(reply)
    prompt_tokens = model.count_tokens(last)
    model.unload()

    print(f"last turn: {prompt_tokens} prompt tokens, {reused} reused; seconds to the first token")
    for name, values in times.items():
        print(f"{name:>8}  median {statistics.median(values):.3f}  per round {' '.join(f'{t:.3f}' for t in values)}")
    ratio = statistics.median(times["reuse"]) / statistics.median(times["scratch"])
    print(f"ratio reuse/scratch (median TTFT): {ratio:.2f}")
    same = replies["reuse"] == replies["scratch"] and len(replies["reuse"]) == 1
    print(f"greedy replies the same both ways: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
