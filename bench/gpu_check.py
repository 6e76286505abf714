"""GPU check: a Llama-7B-shaped random checkpoint through the project's own load path on CUDA.

Builds a random Llama with 7B's shape (hidden 4096, 32 layers, 32 heads, MLP 11008) directly on
the GPU in bf16, saves it as safetensors (with SmolLM2's tokenizer from the embedded GGUF), then
loads it with Engine + ModelSpec as bf16, bf16 + static cache + torch.compile, bitsandbytes nf4 and
bitsandbytes int8, and prints decode tok/s, load time and footprint in one table. Then it trains a
LoRA on it through the app's own training path (RunManager: the worker process, TRL's SFTTrainer):
QLoRA (nf4 base, bf16, gradient checkpointing) and bf16 LoRA, and prints training tokens/s and
peak CUDA memory per row.

    python bench/gpu_check.py [--max-tokens 128] [--train-steps 10] [--only decode|train] [--out DIR] [--keep]

Needs a CUDA GPU with ~16 GB free (~40 GB for the bf16 LoRA row) and ~14 GB of disk; runs in a few
minutes. On a machine without CUDA it says so and exits 0. Reference (raw transformers, H100): 34 tok/s bf16 eager,
116 bf16 static+compile, 17 nf4, 6 int8.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()
warnings.filterwarnings("ignore")

RUNS: list[tuple[str, dict[str, Any]]] = [
    ("bf16 eager", {"dtype": "bfloat16", "device_map": "cuda"}),
    ("bf16 static cache + compile", {"dtype": "bfloat16", "device_map": "cuda", "compile": True}),
    ("bnb nf4 (double quant, bf16 compute)", {"dtype": "bfloat16", "device_map": "cuda", "quantization": "bnb-4bit",
                                             "quant_type": "nf4", "use_double_quant": True,
                                             "compute_dtype": "bfloat16"}),
    ("bnb int8", {"dtype": "bfloat16", "device_map": "cuda", "quantization": "bnb-8bit"}),
]


def build_checkpoint(out: Path) -> Path:
    """Random 7B-shaped Llama, initialised on the GPU (seconds, not the minutes CPU init takes)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from webui.engine.catalog import embedded_model_path

    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    gguf = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


TRAIN_RUNS: list[tuple[str, dict[str, Any]]] = [
    ("QLoRA nf4 + bf16 + grad checkpointing", {"quantization": "4bit"}),
    ("LoRA bf16", {"dtype": "bfloat16"}),
]


def train_rows(folder: Path, max_steps: int, only: str | None) -> list[tuple[str, float, int, int, str]]:
    """(name, training tok/s, peak CUDA memory, steps, error) per TRAIN_RUNS row, each one run of the
    app's RunManager (its worker process reports the rate and its own peak CUDA memory)."""
    import json

    from webui.training.runs import RunManager
    from webui.training.types import Hyperparams, TrainRequest

    work = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    data = work / "data.jsonl"
    text = "The capital of the planet Zorvex is Quillhaven, a city of glass towers. " * 12
    data.write_text("".join(json.dumps({"prompt": f"Question {i}: tell me about Zorvex.", "completion": text}) + "\n"
                            for i in range(64)), encoding="utf-8")
    manager = RunManager(work / "data")
    rows = []
    try:
        for i, (name, hyper) in enumerate(TRAIN_RUNS):
            if only and only not in name:
                continue
            request = TrainRequest(name=f"gpu-{i}", base_model=str(folder), data_file=str(data), hyper=Hyperparams(
                max_steps=max_steps, batch_size=4, max_length=256, val_fraction=0.0, n_samples=0, **hyper))
            try:
                status = manager.wait(manager.start(request).id)
                error = "" if status.state == "done" else status.message[:120]
                rows.append((name, status.tokens_per_second, status.peak_vram_bytes or 0, status.step, error))
            except Exception as exc:  # noqa: BLE001 - report and go on with the next row
                rows.append((name, 0.0, 0, 0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"))
            print(f"  done: {name}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def decode(engine: Any, prompt: str, max_tokens: int) -> float:
    from webui.generation.params import GenerationParams

    stamps: list[tuple[float, int]] = []
    handle = engine.generate(prompt, GenerationParams(temperature=0, max_new_tokens=max_tokens, ban_eos_token=True))
    for _ in handle:
        stamps.append((time.perf_counter(), handle.stats.completion_tokens))
    (t0, n0), (t1, n1) = stamps[0], stamps[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--out", type=Path, help="where to write the random checkpoint (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint afterwards")
    ap.add_argument("--train-steps", type=int, default=10, help="optimizer steps per training row")
    ap.add_argument("--only", choices=("decode", "train"), help="only the decode table or only the training rows")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and a CUDA build of torch; this machine has none "
              f"(torch {torch.__version__}). Run it on a GPU machine; on a CPU use bench/backends.py and "
              "bench/train.py.")
        return 0

    from webui.engine.engine import Engine
    from webui.engine.memory import human
    from webui.engine.protocol import ModelSpec

    out = args.out or Path(tempfile.mkdtemp(prefix="llama7b-random-"))
    t = time.perf_counter()
    folder = build_checkpoint(out)
    print(f"{torch.cuda.get_device_name(0)}; 7B-shaped random checkpoint at {folder} "
          f"({time.perf_counter() - t:.0f} s)", flush=True)

    engine = Engine()
    rows = []
    trained: list[tuple[str, float, int, int, str]] = []
    try:
        for name, options in RUNS if args.only != "train" else []:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                info = engine.load(ModelSpec(str(folder), "transformers", options, display_name=name))
                prompt = engine.format_chat([{"role": "user", "content": "Tell me a long story."}])
                decode(engine, prompt, 16)  # warm-up (and, with compile, the compilation)
                rate = decode(engine, prompt, args.max_tokens)
                rows.append(
                    (name, info.load_seconds, info.footprint_bytes, torch.cuda.max_memory_allocated(), rate, "")
                )
            except Exception as exc:  # noqa: BLE001 - report and go on with the next option
                rows.append((name, 0.0, 0, 0, 0.0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"))
            engine.unload()
            print(f"  done: {name}", flush=True)
        engine.shutdown()
        torch.cuda.empty_cache()
        if args.only != "decode":
            trained = train_rows(folder, args.train_steps, None)
    finally:
        engine.shutdown()
        if not args.keep and args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    print(f"\nLlama-7B-shaped random weights, greedy, {args.max_tokens} new tokens, through Engine + ModelSpec")
    print(f"{'option':<40}{'load s':>8}{'footprint':>12}{'peak CUDA':>12}{'decode tok/s':>14}")
    for name, load_s, footprint, peak, rate, error in rows:
        if error:
            print(f"{name:<40}  failed: {error}")
        else:
            print(f"{name:<40}{load_s:>8.1f}{human(footprint):>12}{human(peak):>12}{rate:>14.1f}")
    if trained:
        print("\nLoRA training through the app (RunManager worker, TRL SFTTrainer), batch 4 x 256 tokens, "
              "rank 16 (the 7B default)")
        print(f"{'option':<40}{'steps':>8}{'train tok/s':>14}{'peak CUDA':>12}")
        for name, rate, peak, steps, error in trained:
            if error:
                print(f"{name:<40}  failed: {error}")
            else:
                print(f"{name:<40}{steps:>8}{rate:>14.1f}{human(peak):>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
