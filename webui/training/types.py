"""The types the training modules share: what to train on, how, and what a run reports.

Rows travel in TRL's standard dataset shapes, so the trainers take them as they are:
- ``sft``: ``{"messages": [{"role": ..., "content": ...}, ...]}`` (a prompt/response pair is a
  two-message conversation; a system message may come first);
- ``text``: ``{"text": ...}`` (plain next-token training, a raw .txt file);
- ``preference``: ``{"prompt": [messages...], "chosen": str, "rejected": str}`` (DPO).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

DataKind = Literal["sft", "text", "preference"]
Method = Literal["sft", "dpo"]
TrainOn = Literal["assistant", "all"]  # which tokens the loss covers in chat data
RunState = Literal["queued", "running", "done", "failed", "stopped"]

LORAS_DIR = "loras"  # <data-dir>/loras/<name>/: one adapter per folder (PEFT files + METADATA_FILE)
TRAINING_DIR = "training"  # <data-dir>/training/runs/<run id>/: one folder per run
METADATA_FILE = "webui-lora.json"  # what an adapter was trained from (LoraMetadata)
GGUF_ADAPTER_FILE = "adapter.gguf"  # the same adapter as a GGUF LoRA, for llama.cpp


@dataclass
class Dataset:
    """Training rows read from one source, all of one kind."""

    kind: DataKind
    format: str  # the detected format's name, shown to the user ("Alpaca", "ShareGPT", ...)
    rows: list[dict[str, Any]]
    source: str  # what it was read from: a file name, or a description of a chat selection
    sha256: str  # of the rows as read (stable across runs), recorded in the adapter's metadata


@dataclass
class ChatSelection:
    """Which chats from the history become training data (every filter is optional)."""

    user_id: int | None = None  # whose history (None: the history made without accounts)
    character: str | None = None
    search: str | None = None  # text any message of the chat contains
    since: str | None = None  # ISO date, inclusive
    until: str | None = None  # ISO date, inclusive
    conversation_ids: list[int] | None = None  # whole chats (None: every chat the filters match)
    message_ids: list[int] | None = None  # only these assistant messages, each with the chat before it


@dataclass
class Hyperparams:
    """LoRA and trainer settings. ``None`` means "the default for this model" (see defaults.py)."""

    epochs: float = 3.0
    max_steps: int | None = None  # when set, wins over epochs
    learning_rate: float | None = None
    rank: int | None = None
    alpha: int | None = None
    dropout: float = 0.05
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512  # tokens per example; longer ones are truncated (and counted as such)
    target_modules: list[str] | None = None  # None: found from the architecture
    val_fraction: float = 0.1  # used when no validation file is given
    train_on: TrainOn = "assistant"
    beta: float = 0.1  # DPO
    quantization: Literal["none", "4bit"] = "none"  # 4bit: QLoRA through bitsandbytes (CUDA only)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    eval_steps: int | None = None  # None: about 10 evaluations over the run
    n_samples: int = 3  # held-out prompts answered by the base and the adapter when the run ends
    sample_max_tokens: int = 48  # the length of each of those answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainRequest:
    """One run: the adapter's name, the base model, the data and the settings."""

    name: str
    base_model: str  # a model folder or a .gguf file, as the Model tab and --model name them
    method: Method = "sft"
    data_file: str | None = None  # a file (any supported format) ...
    chats: ChatSelection | None = None  # ... or chats from the history (preferences for dpo)
    validation_file: str | None = None
    hyper: Hyperparams = field(default_factory=Hyperparams)


@dataclass
class RunStatus:
    """What a run reports; the child process rewrites it (atomically) as it goes."""

    id: str
    name: str
    method: Method
    state: RunState
    step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    tokens_per_second: float = 0.0
    eta_seconds: float | None = None
    train_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    message: str = ""  # why it failed or stopped, in one line
    checkpoint: str | None = None  # the last checkpoint folder (Resume continues from it)
    adapter_dir: str | None = None  # set when done: <data-dir>/loras/<name>
    perplexity_before: float | None = None
    perplexity_after: float | None = None
    samples: list[dict[str, str]] = field(default_factory=list)  # {"prompt", "base", "adapter"}
    started_at: str = ""
    finished_at: str | None = None
    pid: int | None = None
    peak_rss_bytes: int | None = None  # the training process's peak resident memory
    peak_vram_bytes: int | None = None  # its peak CUDA memory (None on CPU)


@dataclass
class LoraMetadata:
    """``<data-dir>/loras/<name>/webui-lora.json``."""

    name: str
    base_model: str
    method: Method
    data_source: str
    data_sha256: str
    data_format: str
    hyperparams: dict[str, Any]
    train_loss: list[tuple[int, float]]
    val_loss: list[tuple[int, float]]
    perplexity_before: float | None
    perplexity_after: float | None
    created_at: str
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loras_dir(data_dir: Path) -> Path:
    return data_dir / LORAS_DIR


def runs_dir(data_dir: Path) -> Path:
    return data_dir / TRAINING_DIR / "runs"
