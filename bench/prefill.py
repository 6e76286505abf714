"""Prompt processing (prefill) speed on this CPU: flash attention on/off, ``n_batch`` and ``n_ubatch``.

Every setting is a ``llama_cpp.Llama`` of its own on the same GGUF (the embedded model unless
``--model``), all loaded at once in this process (the app is not involved: this picks the app's
defaults), then measured in interleaved rounds: each round reads the same prompt (``--prompt-tokens``
long, from the KV cache cleared) once with every setting, so drift on this shared machine hits each
alike. Prints prompt tok/s (median of the rounds) and its ratio to llama-cpp-python's own defaults
(flash attention off, n_batch 512, n_ubatch 512), plus each setting's decode tok/s over 64 greedy
tokens after the prompt, so a faster prefill that slows decode is seen.

    python bench/prefill.py [--rounds 5] [--prompt-tokens 1500] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webui.engine.catalog import embedded_model_path  # noqa: E402
from webui.engine.llamacpp_backend import default_threads  # noqa: E402

# (flash attention, n_batch, n_ubatch); the first is llama-cpp-python's own default
SETTINGS = [
    (False, 512, 512), (True, 512, 512),
    (False, 512, 256), (True, 512, 256), (False, 512, 128), (True, 512, 128),
    (False, 1024, 1024), (True, 1024, 1024), (False, 2048, 2048), (True, 2048, 2048),
    (False, 2048, 512), (True, 2048, 512), (False, 256, 256), (True, 256, 256),
]
DECODE_TOKENS = 64


def label(setting: tuple[bool, int, int]) -> str:
    flash, batch, ubatch = setting
    return f"flash {'on ' if flash else 'off'}  n_batch {batch:5d}  n_ubatch {ubatch:5d}"


def prompt_ids(llm, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    text = " ".join(f"Line {i}: the lighthouse keeper counted the ships that passed in the storm." for i in range(n))
    return llm.tokenize(text.encode(), add_bos=True)[:n]


def prefill_rate(llm, ids: list[int]) -> float:  # type: ignore[no-untyped-def]
    llm.reset()
    llm._ctx.kv_cache_clear()
    start = time.perf_counter()
    llm.eval(ids)
    return len(ids) / (time.perf_counter() - start)


def decode_rate(llm) -> float:  # type: ignore[no-untyped-def]
    """Greedy tokens one at a time after the prompt already in the cache."""
    import llama_cpp
    import numpy as np

    start = time.perf_counter()
    for _ in range(DECODE_TOKENS):
        last = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
        llm.eval([int(np.argmax(last))])
    return DECODE_TOKENS / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    import llama_cpp

    model = args.model or embedded_model_path()
    threads = args.threads or default_threads()
    n_ctx = args.prompt_tokens + DECODE_TOKENS + 16
    llms = {s: llama_cpp.Llama(str(model), n_ctx=n_ctx, n_threads=threads, n_batch=s[1], n_ubatch=s[2],
                               flash_attn=s[0], verbose=False) for s in SETTINGS}
    ids = prompt_ids(next(iter(llms.values())), args.prompt_tokens)
    for llm in llms.values():  # first-use costs (buffers, pages of the file) out of the rounds
        prefill_rate(llm, ids[:64])
    prefill: dict[tuple[bool, int, int], list[float]] = {s: [] for s in SETTINGS}
    decode: dict[tuple[bool, int, int], list[float]] = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):
        for s, llm in llms.items():
            prefill[s].append(prefill_rate(llm, ids))
            decode[s].append(decode_rate(llm))
    base = SETTINGS[0]
    ratio = {s: statistics.median(p / b for p, b in zip(prefill[s], prefill[base])) for s in SETTINGS}
    dratio = {s: statistics.median(d / b for d, b in zip(decode[s], decode[base])) for s in SETTINGS}
    print(f"{model.name}, {threads} threads, prompt {len(ids)} tokens, {args.rounds} interleaved rounds")
    print(f"  {'setting':<44} {'prefill tok/s':>13} {'÷ default':>9}   {'decode tok/s':>12} {'÷ default':>9}")
    for s in sorted(SETTINGS, key=lambda s: -ratio[s]):
        print(f"  {label(s):<44} {statistics.median(prefill[s]):13.1f} {ratio[s]:9.3f}   "
              f"{statistics.median(decode[s]):12.1f} {dratio[s]:9.3f}")


if __name__ == "__main__":
    main()
