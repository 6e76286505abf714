"""Decode speed with samplers on: llama.cpp's own sampler chain vs neutral parameters (issue 12, item 3).

Three paths on the embedded model, interleaved in rounds, medians of decode tok/s (prefill excluded):

- ``neutral``: neutral parameters (temperature 1, top_p 1, nothing else; the engine,
  webui.engine.llama_samplers); ``--temperature``/``--top-p`` change both paths' base;
- ``samplers``: the same plus ban_eos_token, repetition_penalty 1.2 and DRY 0.8 (native samplers);
- ``python``: the same samplers as llama-cpp-python ``logits_processor`` callbacks over the 49k-token
  vocabulary (how the app ran them before: webui.generation.penalties + a Python DRY), for comparison.

    python bench/samplers.py [--rounds 5] [--max-tokens 128] [--threads 0]

Target: samplers / neutral >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()

from webui.engine.catalog import embedded_spec  # noqa: E402
from webui.engine.engine import Engine  # noqa: E402
from webui.generation.params import GenerationParams  # noqa: E402

PROMPT = "Write a very long story about a dragon who learns to bake bread. Use many paragraphs."
SEED = 11
SAMPLERS = {"ban_eos_token": True, "repetition_penalty": 1.2, "dry_multiplier": 0.8}


Stamps = list[tuple[float, int]]  # (time, tokens so far) at each delta


def engine_stamps(engine: Engine, prompt: str, params: GenerationParams) -> Stamps:
    """One reply through the engine: when each delta came and how many tokens had come by then."""
    handle = engine.generate(prompt, params)
    stamps: Stamps = []
    for _ in handle:
        stamps.append((time.perf_counter(), handle.stats.completion_tokens))
    return stamps


def rate_upto(stamps: Stamps, n: int) -> float:
    """tok/s from the first delta to the last one within the first ``n`` tokens. Replies of one round are
    compared over the same number of tokens: neutral ones may end early (no ban_eos), and decode slows as
    a reply grows, so a shorter reply would read as faster sampling."""
    inside = [(t, k) for t, k in stamps if k <= n]
    if len(inside) < 2:
        return 0.0
    (t0, k0), (t1, k1) = inside[0], inside[-1]
    return (k1 - k0) / (t1 - t0) if t1 > t0 else 0.0


def python_stamps(engine: Engine, prompt: str, max_tokens: int, base: dict[str, Any]) -> Stamps:
    """The same samplers as Python logits processors in llama-cpp-python's create_completion."""
    from llama_cpp import LogitsProcessorList

    from webui.generation.hf_samplers import DRY, dry_breaker_ids
    from webui.generation.penalties import PenaltyConfig, numpy_processor
    from webui.plugins.samplers import for_llama_cpp

    model: Any = engine.model
    llm = model._llm

    def run() -> Stamps:
        params = GenerationParams(**base, **SAMPLERS)
        penalties = numpy_processor(PenaltyConfig.from_params(params, model.eog_ids))

        class Tok:  # dry_breaker_ids wants a transformers-like tokenizer
            def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
                return {"input_ids": llm.tokenize(text.encode(), add_bos=False, special=False)}

        dry = for_llama_cpp(DRY(0.8, 1.75, 2, dry_breaker_ids(Tok(), params.dry_sequence_breakers), 0))
        stream = llm.create_completion(prompt, max_tokens=max_tokens, temperature=base["temperature"],
                                       top_p=base["top_p"], top_k=0,
                                       min_p=0.0, repeat_penalty=1.0, seed=11, stream=True,
                                       logits_processor=LogitsProcessorList([penalties, dry]))
        stamps: Stamps = []
        for chunk in stream:
            if chunk["choices"][0]["text"]:
                stamps.append((time.perf_counter(), len(stamps) + 1))
        return stamps

    return engine.worker.call(run)


def sampling_cost_us(engine: Engine, prompt: str, params: GenerationParams, python: bool = False,
                     steps: int = 200) -> float:
    """Microseconds per token spent choosing it (no model evaluation): the chain's ``sample`` on the
    prompt's last logits, ``steps`` times (its history grows as in a reply). Greedy, so that the cost is
    the samplers' own (drawing again and again from one step's logits makes top_p sort ever more tokens).
    ``python``: the neutral chain plus the Python processors the app used before, on a copy of the logits."""
    params = params.model_copy(update={"temperature": 0.0})
    import llama_cpp
    import numpy as np

    from webui.engine.llama_decode import DecodeRequest, LlamaDecoder, load_prompt
    from webui.generation.hf_samplers import DRY
    from webui.generation.penalties import PenaltyConfig, numpy_processor
    from webui.plugins.samplers import for_llama_cpp

    model: Any = engine.model
    llm = model._llm

    def run() -> float:
        ids = list(llm.tokenize(prompt.encode(), add_bos=True, special=True))
        load_prompt(llm, ids)
        decoder = LlamaDecoder(llm, DecodeRequest(ids, params, 11, eog_ids=model.eog_ids), lambda *a, **k: True)
        chain = decoder._chain()
        processors: list[Any] = []
        if python:
            processors = [numpy_processor(PenaltyConfig.from_params(GenerationParams(**SAMPLERS), model.eog_ids)),
                          for_llama_cpp(DRY(0.8, 1.75, 2, set(), 0))]
        n_vocab = int(llm.n_vocab())
        history = np.asarray(ids, dtype=np.intc)
        started = time.perf_counter()
        for _ in range(steps):
            if processors:
                raw = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
                scores = raw.copy()
                for processor in processors:
                    scores = processor(history, scores)
            token = chain.sample(llm._ctx.ctx)
            history = np.append(history, token)
        elapsed = time.perf_counter() - started
        chain.free()
        return elapsed / steps * 1e6

    return engine.worker.call(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="0: the app's default")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--no-python", action="store_true", help="skip the Python-processor comparison")
    args = parser.parse_args()
    spec = embedded_spec()
    spec.options = {"threads": args.threads} if args.threads else {}
    engine = Engine()
    engine.load(spec)
    prompt = engine.format_chat([{"role": "user", "content": PROMPT}])
    base = {"temperature": args.temperature, "top_p": args.top_p, "seed": SEED}
    neutral = GenerationParams(**base, max_new_tokens=args.max_tokens)
    samplers = GenerationParams(**base, **SAMPLERS, max_new_tokens=args.max_tokens)
    rates: dict[str, list[float]] = {"neutral": [], "samplers": [], "python": []}
    engine_stamps(engine, prompt, neutral)  # warm-up
    for i in range(args.rounds):
        replies = {"neutral": engine_stamps(engine, prompt, neutral),
                   "samplers": engine_stamps(engine, prompt, samplers)}
        if not args.no_python:
            replies["python"] = python_stamps(engine, prompt, args.max_tokens, base)
        common = min(stamps[-1][1] for stamps in replies.values())
        for name, stamps in replies.items():
            rates[name].append(rate_upto(stamps, common))
        print(f"round {i + 1} (first {common} tokens): " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items() if v),
              flush=True)
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    print("median decode tok/s: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print(f"samplers / neutral = {med['samplers'] / med['neutral']:.3f} (target >= 0.95)")
    if "python" in med:
        print(f"python processors / neutral = {med['python'] / med['neutral']:.3f} (the path before)")
    # The same comparison without the model's noise: the time to choose a token, against the time per token
    ms_per_token = 1000 / med["neutral"]
    costs = {"neutral": sampling_cost_us(engine, prompt, neutral),
             "samplers": sampling_cost_us(engine, prompt, samplers),
             "python": sampling_cost_us(engine, prompt, neutral, python=True)}
    print("choosing a token (greedy), us: " + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()))
    for name in ("samplers", "python"):
        extra = (costs[name] - costs["neutral"]) / 1000
        print(f"{name}: implied decode ratio {ms_per_token / (ms_per_token + extra):.3f} "
              f"at {ms_per_token:.1f} ms per token")
    engine.shutdown()


if __name__ == "__main__":
    main()
