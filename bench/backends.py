"""Every CPU-capable load option on the default model: decode tok/s, load s, real footprint, and the
raw-backend vs through-the-engine ratio, measured in one run.

The embedded SmolLM2-135M-Instruct GGUF is converted once to HF safetensors (transformers loads it
with gguf_file=, dequantized; cached under bench/out/, which git ignores). Each option is loaded
through the project's own path (Engine + ModelSpec); then the same loaded model decodes the same
greedy prompt raw (model.generate / llm.create_completion, on the same inference thread) and through
Engine.generate, interleaved, and the medians are compared.

    python bench/backends.py [--max-tokens 32] [--rounds 3] [--only bnb-4bit-nf4,llama.cpp]

Target (issue 3): engine/raw >= 0.97 for every option. The ratio is the median of per-round ratios
(raw and engine back to back); on a busy shared machine absolute tok/s swing widely, ratios less so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()
warnings.filterwarnings("ignore")

from webui.engine.catalog import embedded_model_path  # noqa: E402
from webui.engine.engine import Engine  # noqa: E402
from webui.engine.memory import human  # noqa: E402
from webui.engine.protocol import ModelSpec  # noqa: E402
from webui.generation.params import GenerationParams  # noqa: E402

OUT = REPO / "bench" / "out"
PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]

HF_OPTIONS: dict[str, dict[str, Any]] = {
    "fp32": {"dtype": "float32"},
    "bf16": {"dtype": "bfloat16"},
    "bnb-8bit": {"quantization": "bnb-8bit"},
    "bnb-4bit-nf4": {"quantization": "bnb-4bit", "quant_type": "nf4", "use_double_quant": True},
    "bnb-4bit-fp4": {"quantization": "bnb-4bit", "quant_type": "fp4"},
    "torchao-int8": {"quantization": "torchao-int8"},
    "quanto-int8": {"quantization": "quanto-int8"},
}


def convert_gguf_to_hf(gguf: Path, out: Path) -> Path:
    """Dequantize the GGUF with transformers and save it as safetensors (once; cached)."""
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def rate(stamps: list[tuple[float, int]]) -> float:
    """tok/s between the first and the last token (prefill excluded)."""
    (t0, n0), (t1, n1) = stamps[0], stamps[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else 0.0


def raw_transformers(engine: Engine, prompt: str, max_tokens: int) -> float:
    """model.generate on the engine's worker thread, with a streamer that only timestamps tokens."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    loaded = engine.model
    model, tok = loaded._model, loaded._tok

    class Stamps(BaseStreamer):
        def __init__(self) -> None:
            self.stamps: list[tuple[float, int]] = []
            self.prompt_seen = False
            self.n = 0

        def put(self, value: Any) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            self.n += int(value.numel())
            self.stamps.append((time.perf_counter(), self.n))

        def end(self) -> None:
            pass

    def run() -> float:
        streamer = Stamps()
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, streamer=streamer, pad_token_id=pad)
        return rate(streamer.stamps)

    return engine.worker.call(run)


def raw_llama(engine: Engine, prompt: str, max_tokens: int) -> float:
    llm = engine.model._llm

    def run() -> float:
        stamps: list[tuple[float, int]] = []
        n = 0
        for chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0, seed=1, stream=True):
            if chunk["choices"][0]["text"]:
                n += 1
                stamps.append((time.perf_counter(), n))
        return rate(stamps)

    return engine.worker.call(run)


def through_engine(engine: Engine, prompt: str, max_tokens: int) -> float:
    stamps: list[tuple[float, int]] = []
    handle = engine.generate(prompt, GenerationParams(temperature=0, max_new_tokens=max_tokens, seed=1))
    for _ in handle:
        stamps.append((time.perf_counter(), handle.stats.completion_tokens))
    return rate(stamps)


def measure(engine: Engine, name: str, spec: ModelSpec, raw: Any, rounds: int, max_tokens: int) -> dict[str, Any]:
    info = engine.load(spec)
    prompt = engine.format_chat(PROMPT)
    through_engine(engine, prompt, 4)  # warm-up (first-call allocations)
    raws, engs = [], []
    for _ in range(rounds):  # interleaved so machine noise hits both paths alike
        raws.append(raw(engine, prompt, max_tokens))
        engs.append(through_engine(engine, prompt, max_tokens))
    # The ratio is the median of per-round ratios: each pair runs back to back, so load from other
    # processes on this shared machine drifts less within a pair than across the whole run.
    ratios = [e / r for r, e in zip(raws, engs) if r > 0]
    row = {
        "name": name, "load_s": info.load_seconds, "footprint": info.footprint_bytes,
        "rss": engine.model_info.rss_delta_bytes if engine.model_info else 0,
        "raw": statistics.median(raws), "engine": statistics.median(engs),
        "ratio": statistics.median(ratios) if ratios else 0.0,
        "spread": f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "",
    }
    engine.unload()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated option names to run (default: all)")
    args = ap.parse_args()

    gguf = embedded_model_path()
    t = time.perf_counter()
    hf_dir = convert_gguf_to_hf(gguf, OUT / "smollm2-135m-instruct-hf")
    print(f"HF copy of the embedded GGUF: {hf_dir} (ready in {time.perf_counter() - t:.1f} s)", flush=True)

    runs: list[tuple[str, ModelSpec, Any]] = [
        (f"hf {name}", ModelSpec(str(hf_dir), "transformers", opts, display_name=name), raw_transformers)
        for name, opts in HF_OPTIONS.items()
    ]
    runs.append(("gguf llama.cpp Q4_1", ModelSpec(str(gguf), "llama.cpp", {"n_ctx": 2048}), raw_llama))
    runs.append((
        "gguf llama.cpp Q4_1 flash+q8 KV",
        ModelSpec(str(gguf), "llama.cpp", {"n_ctx": 2048, "flash_attn": True, "cache_type": "q8_0"}),
        raw_llama,
    ))
    runs.append(("gguf transformers (dequantized)", ModelSpec(str(gguf), "transformers", {}), raw_transformers))
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        runs = [r for r in runs if any(w in r[0] for w in wanted)]

    engine = Engine()
    rows = []
    try:
        for name, spec, raw in runs:
            try:
                rows.append(measure(engine, name, spec, raw, args.rounds, args.max_tokens))
            except Exception as exc:  # noqa: BLE001 - one failing option must not hide the others
                rows.append({"name": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"})
            print(f"  done: {name}", flush=True)
    finally:
        engine.shutdown()

    print(f"\nSmolLM2-135M-Instruct on CPU, greedy, {args.max_tokens} new tokens, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'option':<34}{'load s':>8}{'footprint':>12}{'RSS +':>11}{'raw tok/s':>11}"
          f"{'engine tok/s':>14}{'engine/raw':>12}{'per round':>12}")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<34}  failed: {r['error']}")
            continue
        flag = "" if r["ratio"] >= 0.97 else "  < 0.97"
        print(f"{r['name']:<34}{r['load_s']:>8.2f}{human(r['footprint']):>12}{human(r['rss']):>11}"
              f"{r['raw']:>11.1f}{r['engine']:>14.1f}{r['ratio']:>12.3f}{r['spread']:>12}{flag}")


if __name__ == "__main__":
    main()
