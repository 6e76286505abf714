"""``python app.py train DATA --name NAME [...]``: one run through the RunManager, with progress.

It loads no chat model: the run's worker process loads the base. Bad input raises UserFacingError
before anything is written (app.py prints it as one line, exit 1); a run that fails exits 1 with
its message; Ctrl+C stops the run at a checkpoint (Resume it from the Training tab).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from webui.config import Settings
from webui.errors import UserFacingError
from webui.training.types import Hyperparams, RunStatus, TrainRequest

POLL_SECONDS = 1.0


def build_request(settings: Settings, args: argparse.Namespace) -> TrainRequest:
    """The request the flags describe; the base is --model (or the embedded model)."""
    from webui.cli import pick_model
    from webui.engine.catalog import embedded_model_path
    from webui.engine.options import flag_values

    base = pick_model(settings).model or str(embedded_model_path())
    hyper = Hyperparams()
    if args.max_steps is not None:
        hyper.max_steps = args.max_steps
    if args.epochs is not None:
        hyper.epochs = args.epochs
    hyper.learning_rate, hyper.rank = args.lr, args.rank
    if args.batch_size is not None:
        hyper.batch_size = args.batch_size
    if args.max_length is not None:
        hyper.max_length = args.max_length
    options = flag_values(vars(settings))
    if options.get("quantization") == "bnb-4bit":
        hyper.quantization = "4bit"
    elif options.get("quantization", "none") != "none":
        raise UserFacingError("Training takes --load-in-4bit (QLoRA on a CUDA GPU) or no quantization.")
    if options.get("dtype") in ("float32", "bfloat16"):
        hyper.dtype = options["dtype"]
    return TrainRequest(name=args.name, base_model=base, method=args.method, data_file=args.data,
                        validation_file=args.validation, hyper=hyper)


def progress_line(status: RunStatus) -> str:
    parts = [f"step {status.step}/{status.max_steps or '?'}", f"epoch {status.epoch:.2f}"]
    if status.train_loss:
        parts.append(f"loss {status.train_loss[-1][1]:.4f}")
    if status.val_loss:
        parts.append(f"val {status.val_loss[-1][1]:.4f}")
    if status.tokens_per_second:
        parts.append(f"{status.tokens_per_second:.0f} tok/s")
    if status.eta_seconds is not None and status.state == "running":
        parts.append(f"ETA {status.eta_seconds:.0f}s")
    return "  ".join(parts)


def report(status: RunStatus, out: TextIO) -> None:
    if status.perplexity_before is not None and status.perplexity_after is not None:
        print(f"Validation perplexity: {status.perplexity_before:.2f} before, {status.perplexity_after:.2f} after",
              file=out)
    for sample in status.samples:
        print(f"Prompt: {sample['prompt']}\n  base:    {sample['base']}\n  adapter: {sample['adapter']}", file=out)
    print(f"Saved the adapter {status.name} to {status.adapter_dir}", file=out)


def train_command(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Start the run, print a line per step (and the worker's phases) until it ends."""
    from webui.training.runs import RunManager

    manager = RunManager(settings.data_dir)
    request = build_request(settings, args)
    status = manager.start(request)
    print(f"Training {request.name} ({request.method}) on {request.base_model}; run {status.id}", file=out, flush=True)
    shown = ""
    try:
        while status.state in ("queued", "running"):
            time.sleep(POLL_SECONDS)
            status = manager.status(status.id)
            line = status.message if status.message and status.state == "running" else progress_line(status)
            if status.state in ("queued", "running") and line != shown and (status.step or status.message):
                print(line, file=out, flush=True)
                shown = line
    except KeyboardInterrupt:
        manager.stop(status.id)
        print("Stopping at the next step (saving a checkpoint)...", file=out, flush=True)
        status = manager.wait(status.id)
    print(progress_line(status), file=out, flush=True)
    if status.state == "done":
        report(status, out)
        return 0
    if status.state == "stopped":
        print(f"Stopped: {status.message}", file=out)
        return 130
    print(f"error: training failed: {status.message} (log: {manager.root / status.id / 'log.txt'})", file=sys.stderr)
    return 1
