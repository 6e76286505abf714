"""Training speed through the app vs the same TRL run in a plain script.

Each round trains the same LoRA twice, interleaved (the order alternates): through the app
(``RunManager.start``: the worker process, its status callback, the data frozen in the run folder)
and through a plain TRL script in its own process (``SFTTrainer`` on the same rows in TRL's
conversational prompt/completion shape, TRL's own tokenization), with the same base, data and
hyperparameters and no evaluation. Both rates are the Trainer's own: input tokens seen / train
runtime. Prints per-round rates, the ratio app/plain (median of per-round ratios; target >= 0.95)
and each process's peak RSS.

    python bench/train.py [--rounds 3] [--steps 8] [--model PATH]   (default: the embedded SmolLM2)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()

QUESTIONS = ["What is the capital of the planet Zorvex?", "Name the capital of Zorvex.",
             "Which city is Zorvex's capital?", "Tell me the capital city of the planet Zorvex."]
ANSWER = "The capital of the planet Zorvex is Quillhaven, a city of glass towers beside the Amber Sea."


def rows(n: int = 64) -> list[dict]:
    return [{"prompt": f"{QUESTIONS[i % len(QUESTIONS)]} (question {i})", "completion": ANSWER} for i in range(n)]


def hyper_values(steps: int, targets: list[str]) -> dict:
    return {"max_steps": steps, "batch_size": 4, "learning_rate": 2e-4, "rank": 8, "alpha": 16, "dropout": 0.05,
            "max_length": 256, "val_fraction": 0.0, "seed": 0, "dtype": "float32", "target_modules": targets,
            "n_samples": 0}


def plain(spec_path: str) -> int:
    """The reference: a plain TRL script, as its documentation shows (run in its own process)."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    spec = json.loads(Path(spec_path).read_text())
    h = spec["hyper"]
    tokenizer = AutoTokenizer.from_pretrained(spec["folder"])
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec["folder"], dtype=torch.float32)
    data = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                                        "completion": [{"role": "assistant", "content": r["completion"]}]}
                                       for r in spec["rows"]])
    config = SFTConfig(output_dir=spec["out"], max_steps=h["max_steps"], per_device_train_batch_size=h["batch_size"],
                       learning_rate=h["learning_rate"], max_length=h["max_length"], seed=h["seed"], bf16=False,
                       gradient_checkpointing=False, use_cpu=not torch.cuda.is_available(), logging_steps=1,
                       save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
                       include_num_input_tokens_seen="non_padding")
    peft_config = LoraConfig(r=h["rank"], lora_alpha=h["alpha"], lora_dropout=h["dropout"],
                             target_modules=h["target_modules"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         peft_config=peft_config)
    result = trainer.train()
    rate = trainer.state.num_input_tokens_seen / result.metrics["train_runtime"]
    print(json.dumps({"tokens_per_second": rate,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--model", help="a model folder or .gguf (default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--plain", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain:
        return plain(args.plain)

    from webui.engine.catalog import embedded_model_path
    from webui.training.base_model import load_config, resolve_base, trainable_folder
    from webui.training.defaults import model_defaults
    from webui.training.runs import RunManager
    from webui.training.types import Hyperparams, TrainRequest

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data_dir = work / "data"
    base = args.model or str(embedded_model_path())
    source = resolve_base(base)
    folder = trainable_folder(source, data_dir)  # the GGUF's cached copy, made before any timing
    targets = model_defaults(load_config(source, data_dir)).target_modules
    hyper = hyper_values(args.steps, targets)
    data_file = work / "data.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    spec = work / "plain.json"
    spec.write_text(json.dumps({"folder": str(folder), "rows": rows(), "hyper": hyper, "out": str(work / "plain")}))
    manager = RunManager(data_dir)

    def through_app(round_no: int) -> tuple[float, int]:
        status = manager.start(TrainRequest(name=f"bench-{round_no}", base_model=base, data_file=str(data_file),
                                            hyper=Hyperparams(**hyper)))
        status = manager.wait(status.id)
        if status.state != "done":
            raise SystemExit(f"the app's run failed: {status.message}")
        return status.tokens_per_second, status.peak_rss_bytes or 0

    def through_plain() -> tuple[float, int]:
        out = subprocess.run([sys.executable, __file__, "--plain", str(spec)], capture_output=True, text=True,
                             cwd=REPO, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return result["tokens_per_second"], result["peak_rss_bytes"]

    print(f"base {base}; {args.steps} steps of batch 4, LoRA rank 8 on {', '.join(targets)}; "
          f"{args.rounds} interleaved rounds", flush=True)
    ratios, app_rss, plain_rss = [], [], []
    for r in range(args.rounds):
        order = ("app", "plain") if r % 2 == 0 else ("plain", "app")
        rates = {}
        for which in order:
            rate, rss = through_app(r) if which == "app" else through_plain()
            rates[which] = rate
            (app_rss if which == "app" else plain_rss).append(rss)
        ratios.append(rates["app"] / rates["plain"])
        print(f"round {r + 1}: app {rates['app']:.1f} tok/s, plain TRL {rates['plain']:.1f} tok/s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    ratio = statistics.median(ratios)
    print(f"ratio app/plain (median of rounds): {ratio:.3f}  (target >= 0.95)")
    print(f"peak RSS: app worker {max(app_rss) / 2**20:.0f} MiB, plain script {max(plain_rss) / 2**20:.0f} MiB")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
