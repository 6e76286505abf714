"""The Trainer callback that reports a run: it rewrites ``status.json`` (atomically) at every step,
log and evaluation, and turns a stop request into a saved checkpoint and a clean end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from webui.training.run_files import write_status
from webui.training.types import RunStatus


class StatusCallback(TrainerCallback):
    """Keeps ``status`` (a RunStatus this process owns) current and written to ``run_dir``.

    ``stop_requested`` is polled after every optimizer step; when it says so, the Trainer saves a
    checkpoint at that step and stops (``stopped`` is then True and ``status.checkpoint`` names it).
    """

    def __init__(self, run_dir: Path, status: RunStatus, stop_requested: Callable[[], bool]) -> None:
        self.run_dir = run_dir
        self.status = status
        self.stop_requested = stop_requested
        self.stopped = False
        self._t0 = 0.0
        self._step0 = 0
        self._tokens0 = 0

    def write(self) -> None:
        write_status(self.run_dir, self.status)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()
        self._step0 = state.global_step
        self._tokens0 = int(state.num_input_tokens_seen or 0)
        self.status.max_steps = int(state.max_steps)
        self.status.state = "running"
        self.write()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        status = self.status
        status.step = int(state.global_step)
        status.epoch = float(state.epoch or 0.0)
        elapsed = time.perf_counter() - self._t0
        done = status.step - self._step0
        if elapsed > 0 and done > 0:
            status.tokens_per_second = (int(state.num_input_tokens_seen or 0) - self._tokens0) / elapsed
            status.eta_seconds = max(0.0, (status.max_steps - status.step) * elapsed / done)
        if self.stop_requested() and not self.stopped:
            self.stopped = True
            control.should_save = True
            control.should_evaluate = False
            control.should_training_stop = True
        self.write()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.status.train_loss.append((int(state.global_step), float(logs["loss"])))
            self.write()

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:
        if metrics and "eval_loss" in metrics:
            self.record_eval(int(state.global_step), float(metrics["eval_loss"]))

    def record_eval(self, step: int, loss: float) -> None:
        """One validation loss at ``step`` (an evaluation repeated at one step replaces the last)."""
        losses = self.status.val_loss
        if losses and losses[-1][0] == step:
            losses.pop()
        losses.append((step, loss))
        self.write()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.status.checkpoint = str(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        self.write()
