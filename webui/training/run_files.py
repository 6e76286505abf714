"""The files of one training run, ``<data-dir>/training/runs/<run id>/``, shared by the server
(RunManager) and the training process (worker): written atomically, read back into the types.

    request.json   the TrainRequest (hyperparameters as given)
    dataset.json   what the data is: kind, format, source, sha256, row counts
    train.jsonl    the training rows, frozen at start (a Resume trains on the very same rows)
    val.jsonl      the validation rows (may be empty: no validation)
    status.json    the RunStatus, rewritten by the worker as it goes
    pid            the worker's process id (written by the server)
    stop           present: the worker saves a checkpoint and ends as "stopped"
    log.txt        the worker's stdout and stderr
    checkpoints/   the Trainer's checkpoints (checkpoint-<step>/)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from webui.atomic_file import write_json_atomic, write_text_atomic
from webui.training.types import ChatSelection, Dataset, Hyperparams, RunStatus, TrainRequest

REQUEST, DATASET, TRAIN_ROWS, VAL_ROWS = "request.json", "dataset.json", "train.jsonl", "val.jsonl"
STATUS, PID, STOP, LOG, CHECKPOINTS = "status.json", "pid", "stop", "log.txt", "checkpoints"


def write_request(run_dir: Path, request: TrainRequest) -> None:
    write_json_atomic(run_dir / REQUEST, asdict(request))


def read_request(run_dir: Path) -> TrainRequest:
    data = json.loads((run_dir / REQUEST).read_text(encoding="utf-8"))
    chats = data.pop("chats", None)
    hyper = data.pop("hyper", None) or {}
    return TrainRequest(**data, chats=ChatSelection(**chats) if chats else None, hyper=Hyperparams(**hyper))


def write_status(run_dir: Path, status: RunStatus) -> None:
    write_json_atomic(run_dir / STATUS, asdict(status))


def read_status(run_dir: Path) -> RunStatus:
    data = json.loads((run_dir / STATUS).read_text(encoding="utf-8"))
    for key in ("train_loss", "val_loss"):
        data[key] = [(int(step), float(loss)) for step, loss in data.get(key) or []]
    known = RunStatus.__dataclass_fields__
    return RunStatus(**{k: v for k, v in data.items() if k in known})


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_dataset(run_dir: Path, train: Dataset, val: Dataset | None) -> None:
    """Freeze the data of a run: the rows, and what they are (for the adapter's metadata)."""
    write_rows(run_dir / TRAIN_ROWS, train.rows)
    write_rows(run_dir / VAL_ROWS, val.rows if val else [])
    info = {"kind": train.kind, "format": train.format, "source": train.source, "sha256": train.sha256,
            "train_rows": len(train.rows), "val_rows": len(val.rows) if val else 0}
    write_json_atomic(run_dir / DATASET, info)


def read_dataset_info(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / DATASET).read_text(encoding="utf-8"))


_PROGRESS_BARS = ("it/s]", "s/it]", "examples/s]")  # tqdm's lines, as transformers and datasets print them


def log_tail(run_dir: Path, lines: int = 5) -> str:
    """The last meaningful lines of the worker's log (progress bars dropped), joined on " | "."""
    try:
        text = (run_dir / LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.replace("\r", "\n").splitlines()
            if line.strip() and not any(bar in line for bar in _PROGRESS_BARS)]
    return " | ".join(kept[-lines:])
