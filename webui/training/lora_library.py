"""The adapters in ``<data-dir>/loras/``: one folder each (PEFT files + ``webui-lora.json``).

Listing never fails on a user's folder: one that cannot be read is listed with its problem, so the
Model tab and the API show it instead of hiding it or crashing.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webui.engine.adapters import AppliedLora
from webui.errors import UserFacingError
from webui.training.types import GGUF_ADAPTER_FILE, METADATA_FILE, loras_dir

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
MAX_WEIGHT = 10.0  # a weight outside [-10, 10] is a typo, not a strength anyone means


class LoraNotFound(UserFacingError):
    """No adapter of that name in the library."""


@dataclass(frozen=True)
class LoraEntry:
    """One adapter folder as the Model tab and ``GET /v1/internal/lora/list`` show it."""

    name: str
    path: Path
    base_model: str = ""
    method: str = ""
    created_at: str = ""
    has_gguf: bool = False
    size_bytes: int = 0
    problem: str | None = None  # why it cannot be applied (None: it looks usable)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def read_entry(folder: Path) -> LoraEntry:
    """What ``folder`` holds; a malformed one comes back with its ``problem`` set."""
    name = folder.name
    try:
        size = _size(folder)
    except OSError as exc:
        return LoraEntry(name, folder, problem=f"cannot be read: {exc.strerror or exc}")
    has_gguf = (folder / GGUF_ADAPTER_FILE).is_file()
    base = dict(name=name, path=folder, has_gguf=has_gguf, size_bytes=size)
    if not (folder / PEFT_CONFIG).is_file():
        return LoraEntry(**base, problem=f"no {PEFT_CONFIG}: not a PEFT adapter folder")
    if not any((folder / w).is_file() for w in PEFT_WEIGHTS):
        return LoraEntry(**base, problem=f"no adapter weights ({PEFT_WEIGHTS[0]})")
    try:
        config = json.loads((folder / PEFT_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return LoraEntry(**base, problem=f"{PEFT_CONFIG} is not valid JSON ({exc})")
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        peft_type = config.get("peft_type") if isinstance(config, dict) else None
        return LoraEntry(**base, problem=f"not a LoRA adapter (peft_type {peft_type!r})")
    meta_path = folder / METADATA_FILE
    base_model = str(config.get("base_model_name_or_path") or "")
    method = created = ""
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return LoraEntry(**base, base_model=base_model, problem=f"{METADATA_FILE} is not valid JSON ({exc})")
        if isinstance(meta, dict):
            base_model = str(meta.get("base_model") or base_model)
            method = str(meta.get("method") or "")
            created = str(meta.get("created_at") or "")
    return LoraEntry(**base, base_model=base_model, method=method, created_at=created)


class LoraLibrary:
    """``<data_dir>/loras``: list, find, resolve for applying, and delete adapters."""

    def __init__(self, data_dir: Path) -> None:
        self.root = loras_dir(data_dir)

    def list(self) -> list[LoraEntry]:
        """Every adapter folder, by name (hidden and temporary folders are skipped)."""
        if not self.root.is_dir():
            return []
        try:
            folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return []
        return [read_entry(folder) for folder in folders]

    def names(self) -> list[str]:
        """The adapters that can be applied (those without a problem)."""
        return [e.name for e in self.list() if e.problem is None]

    def path(self, name: str) -> Path:
        """The folder of the adapter ``name``; a name that would leave the loras folder is refused."""
        clean = (name or "").strip()
        if not clean or clean in (".", "..") or "/" in clean or "\\" in clean or "\x00" in clean \
                or clean.startswith("."):
            raise UserFacingError(f"{name!r} is not an adapter name (a folder name inside {self.root}).")
        folder = self.root / clean
        if folder.resolve().parent != self.root.resolve():
            raise UserFacingError(f"{name!r} is not an adapter name (a folder name inside {self.root}).")
        return folder

    def get(self, name: str) -> LoraEntry:
        """The adapter ``name``; unknown or unusable ones raise UserFacingError saying why."""
        folder = self.path(name)
        if not folder.is_dir():
            known = ", ".join(self.names()) or "none yet"
            raise LoraNotFound(f"No LoRA adapter named {name!r} in {self.root} (available: {known}).")
        entry = read_entry(folder)
        if entry.problem:
            raise UserFacingError(f"The adapter {name!r} cannot be used: {entry.problem}.")
        return entry

    def resolve(self, names: Sequence[str], weights: Sequence[float] | None = None) -> list[AppliedLora]:
        """``names`` with their weights (1.0 when none are given), checked, in order."""
        if isinstance(names, str):
            names = [names]
        if weights is not None and len(weights) != len(names):
            raise UserFacingError(f"{len(names)} adapter(s) but {len(weights)} weight(s): give one weight per "
                                  "adapter, or none.")
        if len(set(names)) != len(names):
            raise UserFacingError("An adapter is named twice; give each once (with its weight).")
        out = []
        for i, name in enumerate(names):
            weight = 1.0 if weights is None else weights[i]
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or abs(weight) > MAX_WEIGHT:
                raise UserFacingError(f"The weight of {name!r} must be a number between -{MAX_WEIGHT:g} and "
                                      f"{MAX_WEIGHT:g} (got {weight!r}).")
            out.append(AppliedLora(self.get(name).name, self.path(name), float(weight)))
        return out

    def delete(self, name: str) -> None:
        """Remove the adapter folder ``name``."""
        folder = self.path(name)
        if not folder.is_dir():
            raise LoraNotFound(f"No LoRA adapter named {name!r}.")
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise UserFacingError(f"Cannot delete {folder}: {exc.strerror or exc}") from exc
