"""The training process: ``python -m webui.training.worker RUN_DIR [--resume]``.

It reads the run's files (``webui.training.run_files``), loads the base model, and runs TRL's
``SFTTrainer`` or ``DPOTrainer`` with a peft ``LoraConfig`` (TRL wraps the model). On CUDA: bf16,
and with quantization "4bit" QLoRA (bitsandbytes nf4 base, gradient checkpointing); on CPU: fp32
or bf16. It reports through ``status.json`` (StatusCallback). The ``stop`` file or SIGTERM saves a
checkpoint and ends the run as "stopped"; ``--resume`` continues from that checkpoint's step.

At the end it writes the adapter to a temp folder in ``<data-dir>/loras/`` (PEFT files, the
metadata, and for a GGUF base the GGUF LoRA llama.cpp applies) and renames it to ``<name>/``, so an
adapter folder is never half written. Any failure ends this process only, with its message.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from webui.atomic_file import write_json_atomic
from webui.errors import UserFacingError
from webui.training import run_files as rf
from webui.training.types import (
    GGUF_ADAPTER_FILE,
    METADATA_FILE,
    Hyperparams,
    LoraMetadata,
    RunStatus,
    TrainRequest,
    loras_dir,
)

EVALUATIONS_PER_RUN = 10
SAVE_MIN_STEPS = 25  # a checkpoint holds the optimizer state too: not worth writing every few steps


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def data_dir_of(run_dir: Path) -> Path:
    """``<data-dir>/training/runs/<id>`` -> ``<data-dir>``."""
    return run_dir.resolve().parents[2]


def total_steps(n_train: int, hyper: Hyperparams) -> int:
    if hyper.max_steps:
        return hyper.max_steps
    per_epoch = math.ceil(n_train / max(1, hyper.batch_size) / max(1, hyper.grad_accum))
    return max(1, math.ceil(per_epoch * hyper.epochs))


def trainer_args(run_dir: Path, hyper: Hyperparams, *, n_train: int, has_eval: bool, cuda: bool, bf16: bool,
                 checkpointing: bool) -> dict[str, Any]:
    """The TrainingArguments both trainers share (their own configs add their specific fields)."""
    steps = total_steps(n_train, hyper)
    every = hyper.eval_steps or max(1, steps // EVALUATIONS_PER_RUN)
    return {
        "output_dir": str(run_dir / rf.CHECKPOINTS),
        "num_train_epochs": hyper.epochs,
        "max_steps": hyper.max_steps or -1,
        "learning_rate": hyper.learning_rate,
        "per_device_train_batch_size": hyper.batch_size,
        "per_device_eval_batch_size": hyper.batch_size,
        "gradient_accumulation_steps": hyper.grad_accum,
        "logging_steps": 1,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": every,
        "save_strategy": "steps",
        # periodic checkpoints for a crash (Stop saves its own): about 4 a run, none in a very short one
        "save_steps": max(SAVE_MIN_STEPS, steps // 4),
        "save_total_limit": 2,
        "report_to": "none",
        "seed": hyper.seed,
        "bf16": bf16,
        "gradient_checkpointing": checkpointing,
        "use_cpu": not cuda,
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding",
        "remove_unused_columns": True,
    }


def lora_config(hyper: Hyperparams) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=hyper.rank, lora_alpha=hyper.alpha, lora_dropout=hyper.dropout,
                      target_modules=hyper.target_modules, task_type="CAUSAL_LM", bias="none")


def sft_datasets(tokenizer: Any, hyper: Hyperparams, train_rows: list, val_rows: list) -> tuple[Any, Any]:
    """Rows tokenized by ``render.tokenize_sft`` (chat template, trained-token mask), as TRL takes them."""
    import datasets

    from webui.training.render import tokenize_sft

    train = tokenize_sft(train_rows, tokenizer, max_length=hyper.max_length, train_on=hyper.train_on)
    if not train.examples:
        raise UserFacingError("No training example is left after tokenizing (each lost every trained token to "
                              "truncation): raise the maximum length.")
    val = tokenize_sft(val_rows, tokenizer, max_length=hyper.max_length, train_on=hyper.train_on) if val_rows else None
    to_ds = datasets.Dataset.from_list
    return to_ds(train.examples), (to_ds(val.examples) if val and val.examples else None)


def dpo_datasets(train_rows: list, val_rows: list) -> tuple[Any, Any]:
    """Preference rows in TRL's conversational shape (answers as one assistant message)."""
    import datasets

    def shaped(rows: list) -> list:
        return [{"prompt": r["prompt"], "chosen": _as_messages(r["chosen"]), "rejected": _as_messages(r["rejected"])}
                for r in rows]

    return datasets.Dataset.from_list(shaped(train_rows)), (datasets.Dataset.from_list(shaped(val_rows))
                                                            if val_rows else None)


def _as_messages(answer: Any) -> list[dict[str, str]]:
    return answer if isinstance(answer, list) else [{"role": "assistant", "content": str(answer)}]


class Run:
    """One training process's work on one run folder."""

    def __init__(self, run_dir: Path, resume: bool) -> None:
        self.run_dir = run_dir
        self.resume = resume
        self._signalled = threading.Event()
        self.status: RunStatus = rf.read_status(run_dir)
        self.request: TrainRequest = rf.read_request(run_dir)

    def stop_requested(self) -> bool:
        return self._signalled.is_set() or (self.run_dir / rf.STOP).exists()

    def on_sigterm(self, *_: Any) -> None:
        self._signalled.set()

    def write(self) -> None:
        self.status.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        rf.write_status(self.run_dir, self.status)

    def finish(self, state: str, message: str = "") -> None:
        self.status.state = state  # type: ignore[assignment]
        self.status.message = message
        self.status.finished_at = now()
        self.status.eta_seconds = None if state != "done" else 0.0
        self.write()

    def main(self) -> int:
        signal.signal(signal.SIGTERM, self.on_sigterm)
        self.status.pid = os.getpid()
        self.status.state = "running"
        self.status.message = "loading the base model"
        self.status.finished_at = None
        self.write()
        try:
            self.train()
        except UserFacingError as exc:
            self.finish("failed", str(exc))
            return 1
        except MemoryError:
            self.finish("failed", "Out of memory: try a smaller batch size or maximum length, or 4-bit on a GPU.")
            return 1
        except Exception as exc:  # noqa: BLE001 - this process exists to contain it: the message is the run's
            traceback.print_exc()
            if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA)
                self.finish("failed", "Out of GPU memory: try a smaller batch size or maximum length, or 4-bit.")
            else:
                lines = str(exc).strip().splitlines()
                self.finish("failed", f"{type(exc).__name__}: {lines[0][:300] if lines else 'no message'}")
            return 1
        return 0

    def train(self) -> None:
        import torch

        from webui.training.base_model import (
            check_machine,
            load_config,
            load_for_training,
            resolve_base,
            torch_dtype,
            uses_checkpointing,
        )
        from webui.training.callbacks import StatusCallback
        from webui.training.defaults import model_defaults, resolved

        request, run_dir = self.request, self.run_dir
        data_dir = data_dir_of(run_dir)
        cuda = torch.cuda.is_available()
        check_machine(request.hyper, cuda=cuda)
        source = resolve_base(request.base_model)
        hyper = resolved(request.hyper, model_defaults(load_config(source, data_dir), request.method))
        train_rows, val_rows = rf.read_rows(run_dir / rf.TRAIN_ROWS), rf.read_rows(run_dir / rf.VAL_ROWS)
        model, tokenizer = load_for_training(source, data_dir, hyper, cuda=cuda)
        if self.stop_requested():
            self.finish("stopped", "Stopped before the first step: there is no checkpoint to resume from.")
            return
        self.status.message = ""
        bf16 = torch_dtype(hyper, cuda=cuda) == torch.bfloat16
        args = trainer_args(run_dir, hyper, n_train=len(train_rows), has_eval=bool(val_rows), cuda=cuda, bf16=bf16,
                            checkpointing=uses_checkpointing(hyper))
        callback = StatusCallback(run_dir, self.status, self.stop_requested)
        trainer = self.build_trainer(model, tokenizer, hyper, args, train_rows, val_rows, callback)
        checkpoint = self.resume_point() if self.resume else None
        has_eval = trainer.eval_dataset is not None
        if checkpoint is None and has_eval:  # the validation loss at step 0: where the chart starts
            callback.record_eval(0, float(trainer.evaluate()["eval_loss"]))
            if request.method == "sft":
                self.status.perplexity_before = _exp(self.status.val_loss[-1][1])
        if checkpoint is None and request.method == "dpo" and val_rows:
            self.status.perplexity_before = self.chosen_ppl(trainer.model, tokenizer, val_rows, hyper)
        self.write()
        result = trainer.train(resume_from_checkpoint=checkpoint)
        if cuda:
            self.status.peak_vram_bytes = int(torch.cuda.max_memory_allocated())
        if callback.stopped:
            self.finish("stopped", f"Stopped at step {self.status.step}; Resume continues from the checkpoint.")
            return
        tokens = int(trainer.state.num_input_tokens_seen or 0) - callback._tokens0
        runtime = float(result.metrics.get("train_runtime") or 0)
        if runtime > 0 and tokens > 0:
            self.status.tokens_per_second = tokens / runtime
        self.status.message = "evaluating"
        self.write()
        if has_eval:
            if not self.status.val_loss or self.status.val_loss[-1][0] != self.status.step:
                trainer.evaluate()
            if request.method == "sft":
                self.status.perplexity_after = _exp(self.status.val_loss[-1][1])
        if request.method == "dpo" and val_rows:
            self.status.perplexity_after = self.chosen_ppl(trainer.model, tokenizer, val_rows, hyper)
        from webui.training.evaluation import samples

        self.status.samples = samples(trainer.model, tokenizer, val_rows, limit=hyper.n_samples,
                                      max_new_tokens=hyper.sample_max_tokens)
        self.status.message = "saving the adapter"
        self.write()
        self.status.adapter_dir = str(self.save_adapter(trainer.model, hyper, source))
        self.finish("done")

    def build_trainer(self, model: Any, tokenizer: Any, hyper: Hyperparams, args: dict[str, Any], train_rows: list,
                      val_rows: list, callback: Any) -> Any:
        if self.request.method == "dpo":
            from trl import DPOConfig, DPOTrainer

            train_ds, val_ds = dpo_datasets(train_rows, val_rows)
            if val_ds is None:
                args["eval_strategy"] = "no"
            config = DPOConfig(**args, beta=hyper.beta, max_length=hyper.max_length)
            return DPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=val_ds,
                              processing_class=tokenizer, peft_config=lora_config(hyper), callbacks=[callback])
        from trl import SFTConfig, SFTTrainer

        train_ds, val_ds = sft_datasets(tokenizer, hyper, train_rows, val_rows)
        if val_ds is None:
            args["eval_strategy"] = "no"
        # render.py's contract: tokenized rows with an assistant_masks column, no packing, TRL's own
        # label building (assistant_only_loss stays False: TRL refuses it on tokenized rows).
        config = SFTConfig(**args, max_length=hyper.max_length, packing=False, assistant_only_loss=False,
                           completion_only_loss=None)
        return SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=val_ds,
                          processing_class=tokenizer, peft_config=lora_config(hyper), callbacks=[callback])

    def chosen_ppl(self, model: Any, tokenizer: Any, rows: list, hyper: Hyperparams) -> float | None:
        from webui.training.evaluation import chosen_perplexity

        return chosen_perplexity(model, tokenizer, rows, max_length=hyper.max_length)

    def resume_point(self) -> str:
        """The checkpoint to continue from; the losses after its step are dropped (trained again)."""
        checkpoint = self.status.checkpoint
        if not checkpoint or not Path(checkpoint).is_dir():
            raise UserFacingError("This run has no checkpoint to resume from: start a new run.")
        match = re.search(r"checkpoint-(\d+)$", checkpoint)
        step = int(match.group(1)) if match else self.status.step
        self.status.train_loss = [(s, v) for s, v in self.status.train_loss if s <= step]
        self.status.val_loss = [(s, v) for s, v in self.status.val_loss if s <= step]
        self.status.step = step
        return checkpoint

    def save_adapter(self, model: Any, hyper: Hyperparams, source: Any) -> Path:
        """PEFT files + metadata (+ GGUF LoRA) in a temp folder, renamed to loras/<name> at the end."""
        info = rf.read_dataset_info(self.run_dir)
        root = loras_dir(data_dir_of(self.run_dir))
        root.mkdir(parents=True, exist_ok=True)
        target = root / self.request.name
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.request.name}-", dir=root))
        try:
            model.save_pretrained(tmp)
            meta = LoraMetadata(
                name=self.request.name, base_model=self.request.base_model, method=self.request.method,
                data_source=info["source"], data_sha256=info["sha256"], data_format=info["format"],
                hyperparams=hyper.to_dict(), train_loss=self.status.train_loss, val_loss=self.status.val_loss,
                perplexity_before=self.status.perplexity_before, perplexity_after=self.status.perplexity_after,
                created_at=now(), steps=self.status.step,
            )
            write_json_atomic(tmp / METADATA_FILE, meta.to_dict())
            if source.is_gguf:
                self.export_gguf(tmp, source.path)
            if target.exists():
                raise UserFacingError(f"An adapter named {self.request.name!r} appeared while this run trained; "
                                      "the checkpoint is kept, rename and train again.")
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def export_gguf(self, adapter_dir: Path, base_gguf: Path) -> None:
        """The same adapter as a GGUF LoRA for llama.cpp; a base it cannot map is logged, not fatal."""
        try:
            from webui.training.gguf_lora import export_gguf_lora
        except ImportError:  # pragma: no cover - the module ships with the app
            return
        try:
            export_gguf_lora(adapter_dir, base_gguf, adapter_dir / GGUF_ADAPTER_FILE)
        except UserFacingError as exc:
            print(f"No GGUF LoRA for llama.cpp: {exc}", flush=True)


def _exp(loss: float) -> float | None:
    return math.exp(loss) if loss < 50 else None


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m webui.training.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    from webui.privacy import apply_private_defaults

    apply_private_defaults()
    return Run(Path(argv[0]), resume="--resume" in argv[1:]).main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
