"""Which backends exist: the one list of loaders. A new backend is one module plus one line here.

Everything that names loaders derives from ``BACKENDS``: the ``--loader`` choices, the load
options' validation (webui/engine/options.py), the parameter support table
(webui/generation/support.py), the Model tab and the loader picked for a path. Tests add their
fake backend to this dict (tests/conftest.py). Backends are imported lazily, and their modules
import nothing heavy at import time, so that starting the app on a GGUF never imports torch.
"""

from __future__ import annotations

import importlib

from webui.engine.protocol import Backend, BackendInfo, ModelSpec
from webui.errors import ModelLoadError

# name -> "module:Class". The order is the order pick_loader asks in (and the order loaders are listed).
BACKENDS: dict[str, str] = {
    "llama.cpp": "webui.engine.llamacpp_backend:LlamaCppBackend",
    "transformers": "webui.engine.transformers_backend:TransformersBackend",
    "remote": "webui.engine.remote_backend:RemoteBackend",
}


def loader_names() -> tuple[str, ...]:
    """Every loader name, in the registry's order (flags, options and the Model tab list these)."""
    return tuple(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The registered class (importing its module), or a clear error for an unknown name."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ModelLoadError(f"Unknown loader {name!r}; choose one of: {', '.join(BACKENDS)}.") from None
    module_name, _, cls_name = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), cls_name)
    return cls


def get_backend(name: str) -> Backend:
    return backend_class(name)()


def backend_info(name: str) -> BackendInfo:
    """What the backend registered as ``name`` declares it can do."""
    return backend_class(name).info


def default_loader(path: str) -> str:
    """The first registered backend that takes ``path``: remote for an http(s) URL, llama.cpp for
    a .gguf file, transformers for anything else local (its checks then say what is missing)."""
    for name in BACKENDS:
        if get_backend(name).can_load(path):
            return name
    raise ModelLoadError(f"No loader can open {path!r}; choose one of: {', '.join(BACKENDS)}.")


def pick_loader(spec: ModelSpec) -> str:
    """The loader named in the spec, else the default loader for its path."""
    return spec.loader or default_loader(spec.path)
