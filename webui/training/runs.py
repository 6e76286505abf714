"""RunManager: check, start, list, stop, resume and delete training runs.

A run is a folder of files (``webui.training.run_files``) under ``<data-dir>/training/runs/``, and a
training process (``python -m webui.training.worker``) in its own session, so it survives the
server and never runs on the inference thread. The server only reads what the worker writes; the
one thing it writes into a started run is the verdict on a worker that vanished (killed, out of
memory): "failed", with the last lines of its log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from webui.errors import UserFacingError
from webui.training import run_files as rf
from webui.training.types import Dataset, RunStatus, TrainRequest, loras_dir, runs_dir

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACTIVE = ("queued", "running")
START_GRACE_SECONDS = 60  # a queued run whose worker pid is not written yet is still starting
SPARE_DISK_BYTES = 200 * 2**20  # checkpoints, the adapter and its GGUF copy, with room to spare
GGUF_EXPANSION = 8  # a dequantized fp32 copy of a 4-5 bit GGUF is up to ~8x its file


@dataclass
class Prepared:
    """A checked request: the data as it will be trained on."""

    request: TrainRequest
    train: Dataset
    val: Dataset | None


class RunManager:
    """Training runs of one data dir. ``repo``/``characters``/``personas`` are needed only for
    requests that train on chats from the history."""

    def __init__(self, data_dir: Path, *, repo: Any = None, characters: Any = None, personas: Any = None,
                 user_name: str = "You") -> None:
        self.data_dir = Path(data_dir)
        self.repo, self.characters, self.personas, self.user_name = repo, characters, personas, user_name
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # workers this process started (reaped here)
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return runs_dir(self.data_dir)

    # -- checking ---------------------------------------------------------------------------

    def validate(self, request: TrainRequest) -> None:
        """Raise UserFacingError (one message) if ``request`` cannot run here; nothing is written."""
        self.prepare(request)

    def prepare(self, request: TrainRequest) -> Prepared:
        import torch

        from webui.training.base_model import check_machine, resolve_base

        self._check_name(request.name)
        _check_hyper(request)
        check_machine(request.hyper, cuda=torch.cuda.is_available())
        source = resolve_base(request.base_model)
        train, val = self._read_data(request)
        self._check_space(source, request)
        return Prepared(request, train, val)

    def _check_name(self, name: str) -> None:
        if not NAME_RE.match(name or ""):
            raise UserFacingError(f"{name!r} cannot name an adapter: use 1-64 letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit.")
        if (loras_dir(self.data_dir) / name).exists():
            raise UserFacingError(f"An adapter named {name!r} already exists: choose another name or delete it.")
        for status in self.list():
            if status.name == name and status.state in (*ACTIVE, "stopped"):
                raise UserFacingError(f"The run {status.id} is already training an adapter named {name!r} "
                                      f"({status.state}): choose another name, or delete that run.")

    def _read_data(self, request: TrainRequest) -> tuple[Dataset, Dataset | None]:
        from webui.training.data_formats import read_dataset, split_validation

        if (request.data_file is None) == (request.chats is None):
            raise UserFacingError("Choose the training data: a file, or chats from the history (one of them).")
        if request.data_file is not None:
            data = read_dataset(Path(request.data_file).expanduser(), method=request.method)
        else:
            data = self._chat_data(request)
        if not data.rows:
            raise UserFacingError(f"{data.source}: there is nothing to train on (no rows).")
        if request.method == "dpo" and data.kind != "preference":
            raise UserFacingError(f"{data.source}: preference tuning (dpo) needs preference rows "
                                  f"(prompt/chosen/rejected); this is {data.format}.")
        if request.validation_file:
            val = read_dataset(Path(request.validation_file).expanduser(), method=request.method)
            if val.kind != data.kind:
                raise UserFacingError(f"{val.source} holds {val.format} rows, but the training data is "
                                      f"{data.format}: give validation rows of the same kind.")
            return data, val
        train, val = split_validation(data, request.hyper.val_fraction, request.hyper.seed)
        return train, (val if val.rows else None)

    def _chat_data(self, request: TrainRequest) -> Dataset:
        if self.repo is None:
            raise UserFacingError("Training on chats needs the chat history, which is not open here.")
        from webui.training.chat_data import chats_dataset, preference_dataset

        build = preference_dataset if request.method == "dpo" else chats_dataset
        assert request.chats is not None
        return build(self.repo, self.characters, request.chats, personas=self.personas, user_name=self.user_name)

    def _check_space(self, source: Any, request: TrainRequest) -> None:
        from webui.training.base_model import cache_folder

        weights = _weights_bytes(source)
        need = SPARE_DISK_BYTES
        if source.is_gguf and not (cache_folder(source, self.data_dir) / "config.json").is_file():
            need += weights * GGUF_EXPANSION
        self.data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.data_dir).free
        if free < need:
            raise UserFacingError(f"Not enough disk space for this run: about {need / 2**30:.1f} GiB is needed in "
                                  f"{self.data_dir}, {free / 2**30:.1f} GiB is free.")
        import psutil
        import torch

        if request.hyper.quantization == "4bit" or torch.cuda.is_available():
            return  # the weights go to the GPU
        in_memory = weights * (GGUF_EXPANSION if source.is_gguf else 1)
        if request.hyper.dtype == "bfloat16":
            in_memory //= 2
        available = psutil.virtual_memory().available
        if available < in_memory:
            raise UserFacingError(f"Not enough memory to train this model on the CPU: its weights need about "
                                  f"{in_memory / 2**30:.1f} GiB, {available / 2**30:.1f} GiB is available.")

    # -- starting ---------------------------------------------------------------------------

    def start(self, request: TrainRequest) -> RunStatus:
        """Check ``request``, freeze its data in a new run folder and start its worker."""
        with self._lock:
            prepared = self.prepare(request)
            run_id = self._new_id(request.name)
            run_dir = self.root / run_id
            run_dir.mkdir(parents=True)
            try:
                rf.write_request(run_dir, request)
                rf.write_dataset(run_dir, prepared.train, prepared.val)
                status = RunStatus(id=run_id, name=request.name, method=request.method, state="queued",
                                   started_at=_now())
                rf.write_status(run_dir, status)
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            return self._spawn(run_dir, status, resume=False)

    def _new_id(self, name: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_id, n = f"{stamp}-{name}", 1
        while (self.root / run_id).exists():
            n += 1
            run_id = f"{stamp}-{name}-{n}"
        return run_id

    def _spawn(self, run_dir: Path, status: RunStatus, *, resume: bool) -> RunStatus:
        from webui.config import REPO_ROOT

        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        command = [sys.executable, "-m", "webui.training.worker", str(run_dir)] + (["--resume"] if resume else [])
        with (run_dir / rf.LOG).open("ab") as log:
            proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._children[run_dir.name] = proc
        (run_dir / rf.PID).write_text(str(proc.pid), encoding="utf-8")
        status.pid = status.pid or proc.pid
        return status

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> list[RunStatus]:
        """Every run, newest first; a run whose worker vanished is reported (and recorded) failed."""
        if not self.root.is_dir():
            return []
        out = []
        for run_dir in sorted(self.root.iterdir(), key=lambda p: p.name, reverse=True):
            if (run_dir / rf.STATUS).is_file():
                try:
                    out.append(self.status(run_dir.name))
                except (UserFacingError, ValueError, OSError):
                    continue  # a folder being deleted, or not a run
        return sorted(out, key=lambda s: (s.started_at, s.id), reverse=True)

    def status(self, run_id: str) -> RunStatus:
        run_dir = self._run_dir(run_id)
        status = rf.read_status(run_dir)
        if status.state in ACTIVE and not self._alive(run_dir, status):
            status = rf.read_status(run_dir)  # it may have finished between the two reads
            if status.state in ACTIVE:
                tail = rf.log_tail(run_dir)
                status.state = "failed"
                status.message = "The training process ended unexpectedly" + (f": {tail}" if tail else ".")
                status.finished_at = _now()
                status.eta_seconds = None
                rf.write_status(run_dir, status)
        return status

    def _run_dir(self, run_id: str) -> Path:
        run_dir = self.root / run_id
        if "/" in run_id or run_id in ("", ".", "..") or not (run_dir / rf.STATUS).is_file():
            raise UserFacingError(f"No training run {run_id!r}.")
        return run_dir

    def _pid(self, run_dir: Path, status: RunStatus) -> int | None:
        try:
            return int((run_dir / rf.PID).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return status.pid

    def _alive(self, run_dir: Path, status: RunStatus) -> bool:
        child = self._children.get(run_dir.name)
        if child is not None:
            return child.poll() is None
        pid = self._pid(run_dir, status)
        if pid is None:  # started, pid not written yet
            return time.time() - (run_dir / rf.STATUS).stat().st_mtime < START_GRACE_SECONDS
        import psutil

        try:
            proc = psutil.Process(pid)
            return proc.status() != psutil.STATUS_ZOMBIE and str(run_dir) in " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    # -- controlling ------------------------------------------------------------------------

    def stop(self, run_id: str) -> RunStatus:
        """Ask the worker to save a checkpoint and stop (it does so after the current step)."""
        status = self.status(run_id)
        if status.state not in ACTIVE:
            raise UserFacingError(f"The run {run_id} is not running ({status.state}).")
        (self._run_dir(run_id) / rf.STOP).write_text(_now(), encoding="utf-8")
        return status

    def resume(self, run_id: str) -> RunStatus:
        """A new worker continuing a stopped (or failed) run from its checkpoint, at the same step."""
        with self._lock:
            run_dir = self._run_dir(run_id)
            status = self.status(run_id)
            if status.state not in ("stopped", "failed"):
                raise UserFacingError(f"Only a stopped or failed run can be resumed; {run_id} is {status.state}.")
            if not status.checkpoint or not Path(status.checkpoint).is_dir():
                raise UserFacingError(f"The run {run_id} has no checkpoint to resume from: start a new run.")
            if (loras_dir(self.data_dir) / status.name).exists():
                raise UserFacingError(f"An adapter named {status.name!r} exists now: delete it to resume this run.")
            (run_dir / rf.STOP).unlink(missing_ok=True)
            (run_dir / rf.PID).unlink(missing_ok=True)
            status.state, status.message, status.finished_at, status.pid = "queued", "", None, None
            rf.write_status(run_dir, status)
            return self._spawn(run_dir, status, resume=True)

    def delete(self, run_id: str) -> None:
        """Remove a run's folder (its adapter, if it made one, stays in loras/)."""
        status = self.status(run_id)
        if status.state in ACTIVE:
            raise UserFacingError(f"The run {run_id} is still {status.state}: stop it first.")
        self._children.pop(run_id, None)
        shutil.rmtree(self._run_dir(run_id))

    def wait(self, run_id: str, timeout: float | None = None, poll: float = 0.5) -> RunStatus:
        """Block until the run is no longer queued or running (or ``timeout`` seconds pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if status.state not in ACTIVE or (deadline is not None and time.monotonic() > deadline):
                return status
            time.sleep(poll)


def _check_hyper(request: TrainRequest) -> None:
    h = request.hyper
    if request.method not in ("sft", "dpo"):
        raise UserFacingError(f"Unknown training method {request.method!r}: use sft or dpo.")
    problems = [
        (h.max_steps is None and not h.epochs > 0, "the number of epochs must be above 0"),
        (h.max_steps is not None and h.max_steps < 1, "the maximum number of steps must be at least 1"),
        (h.learning_rate is not None and not 0 < h.learning_rate < 1, "the learning rate must be between 0 and 1"),
        (h.rank is not None and h.rank < 1, "the rank must be at least 1"),
        (h.alpha is not None and h.alpha <= 0, "alpha must be above 0"),
        (not 0 <= h.dropout < 1, "the dropout must be at least 0 and below 1"),
        (h.batch_size < 1 or h.grad_accum < 1, "the batch size and gradient accumulation must be at least 1"),
        (h.max_length < 16, "the maximum length must be at least 16 tokens"),
    ]
    for bad, why in problems:
        if bad:
            raise UserFacingError(f"Cannot train with these settings: {why}.")


def _weights_bytes(source: Any) -> int:
    if source.is_gguf:
        return source.path.stat().st_size
    return sum(p.stat().st_size for p in source.folder.iterdir()
               if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
