"""An AppContext for calling UI handlers directly: the fake engine loaded, a real database, the
repository's characters and presets, data in a temp dir. A test module's fixture::

    @pytest.fixture
    def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
        with ui_context(tmp_path / "data") as ctx:
            yield ctx
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from webui.config import Settings
from webui.context import AppContext, build_context
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams
from webui.ui.parameters_tab import from_params


def make_ui_context(data_dir: Path, tokens: list[str] | None = None, **settings: Any) -> AppContext:
    """The app's context as app.py builds it, with the fake model loaded (``tokens``: its reply)."""
    ctx = build_context(Settings(data_dir=data_dir, **settings), load_model=False)
    options: dict[str, Any] = {"tokens": tokens} if tokens is not None else {}
    ctx.engine.load(ModelSpec(path="fake", loader="fake", options=options, display_name="fake"))
    return ctx


@contextmanager
def ui_context(data_dir: Path, tokens: list[str] | None = None, **settings: Any) -> Iterator[AppContext]:
    """``make_ui_context``, its engine shut down afterwards. Needs conftest's ``fake_backend``."""
    ctx = make_ui_context(data_dir, tokens, **settings)
    try:
        yield ctx
    finally:
        ctx.engine.shutdown()


def user(name: str) -> Any:
    """A stand-in for the gr.Request of a logged-in account (what current_user_id and session_key read)."""
    return SimpleNamespace(username=name, session_hash=f"session-{name}")


def param_values(**changes: Any) -> tuple[Any, ...]:
    """The Parameters tab's values (no extension samplers) for GenerationParams(**changes)."""
    return tuple(from_params(GenerationParams(**changes)))
