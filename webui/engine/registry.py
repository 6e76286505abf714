"""Which backends exist. A new backend is one module plus one line here.

Backends are imported lazily so that starting the app on a GGUF never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from webui.engine.protocol import Backend, ModelSpec
from webui.errors import ModelLoadError

BACKENDS: dict[str, str] = {
    "llama.cpp": "webui.engine.llamacpp_backend:LlamaCppBackend",
    "transformers": "webui.engine.transformers_backend:TransformersBackend",
    "remote": "webui.engine.remote_backend:RemoteBackend",
}


def get_backend(name: str) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ModelLoadError(f"Unknown loader {name!r}; choose one of: {', '.join(BACKENDS)}.") from None
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)()


def pick_loader(spec: ModelSpec) -> str:
    """The loader named in the spec, else remote for URLs, llama.cpp for .gguf files, transformers for folders."""
    if spec.loader:
        return spec.loader
    if spec.path.startswith(("http://", "https://")):
        return "remote"
    return "llama.cpp" if Path(spec.path).suffix.lower() == ".gguf" else "transformers"
