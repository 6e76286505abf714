"""A real model loaded on a real Engine, for module-scoped fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec


def loaded_engine(path: Path, loader: str, **options: object) -> Iterator[Engine]:
    """Body of a module-scoped real-model engine fixture:
    ``yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=2048)``."""
    engine = Engine()
    engine.load(ModelSpec(path=str(path), loader=loader, options=options))
    try:
        yield engine
    finally:
        engine.shutdown()
