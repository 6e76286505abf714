"""The one object through which the ``modules`` compatibility package reads the app.

Each :class:`~webui.plugins.manager.ExtensionManager` owns a ``CompatBridge`` (``manager.compat``);
``build_context`` attaches the engine, settings and chat service to it, the UI fills ``gradio`` as
it builds components. Before the manager imports or calls an extension it makes its bridge the
current one (``SLOT.bridge``): one app per process reads through it. ``modules`` keeps nothing of
its own (module ``__getattr__`` reads the bridge on every access), so two managers in one process
(tests) never mix each other's extensions' state.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webui.chat.service import ChatService
    from webui.config import Settings
    from webui.engine.engine import Engine

# Renders a prompt for (user_input, state, kwargs) the way the current turn does.
PromptRenderer = Callable[[str, dict[str, Any], dict[str, Any]], str]

# Upstream's UI element names that a chat turn's ``state`` also carries (ui.gather_interface_values).
INPUT_ELEMENTS: tuple[str, ...] = (
    "max_new_tokens", "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty",
    "presence_penalty", "frequency_penalty", "seed", "name1", "name2", "mode", "character_menu", "context",
    "custom_stopping_strings",
)


class CompatError(RuntimeError):
    """``modules`` was used outside an extension the app loaded (there is no app to read)."""


class CompatBridge:
    """What text-generation-webui's ``modules`` shows an extension: the engine (model, tokenizer),
    the settings, the chat service and the named UI components."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.settings: Settings | None = None
        self.chat: ChatService | None = None
        self.enabled: Callable[[], list[str]] = list
        # Upstream's component names -> this app's components, filled while the UI is built;
        # extensions may add their own (shared.gradio['x'] = component), as upstream.
        self.gradio: dict[str, Any] = {}
        # upstream's shared.settings: a dict extensions read and write, filled on attach
        self.shared_settings: dict[str, Any] = {}
        self._local = threading.local()

    def attach(self, *, settings: Settings | None = None, engine: Engine | None = None,
               chat: ChatService | None = None) -> None:
        """Connect the app (``build_context``: the settings first, so extensions enabled at start-up
        can read them while they import; the engine and chat service once they exist)."""
        if settings is not None:
            self.settings = settings
            self.shared_settings.update(default_shared_settings(settings))
        self.engine = engine or self.engine
        self.chat = chat or self.chat

    # ------------------------------------------------------------------ model

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise CompatError("modules: no app is attached (the extension was not loaded by the app)")
        return self.engine

    def model_loaded(self) -> bool:
        return self.engine is not None and self.engine.model is not None

    def tokenize(self, text: str) -> list[int]:
        """The loaded model's token ids for ``text``, on the inference worker (inline when a hook
        already runs there, e.g. a logits processor's constructor)."""
        return self.require_engine().tokenize(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.require_engine().detokenize(list(ids))

    def count_tokens(self, text: str) -> int:
        return self.require_engine().count_tokens(text)

    def special_token_id(self, kind: str) -> int | None:
        """The loaded model's ``eos``/``bos`` token id, as its ModelInfo declares it (None: it has
        none, or no model is loaded)."""
        info = self.require_engine().model_info
        if info is None:
            return None
        return info.eos_token_id if kind == "eos" else info.bos_token_id if kind == "bos" else None

    # ------------------------------------------------------------------ prompt rendering

    @contextlib.contextmanager
    def rendering(self, render: PromptRenderer) -> Iterator[None]:
        """While a turn's custom_generate_chat_prompt runs on this thread, chat.generate_chat_prompt
        renders with ``render`` (exactly as the turn would)."""
        previous = getattr(self._local, "render", None)
        self._local.render = render
        try:
            yield
        finally:
            self._local.render = previous

    def current_renderer(self) -> PromptRenderer | None:
        return getattr(self._local, "render", None)

    # ------------------------------------------------------------------ settings

    def args(self) -> argparse.Namespace:
        """upstream's ``shared.args`` (the command line), from this app's settings."""
        s = self.settings
        enabled = self.enabled()
        if s is None:
            return argparse.Namespace(extensions=enabled, verbose=False, listen=False, chat_buttons=False,
                                      multi_user=False)
        return argparse.Namespace(
            model=s.model, loader=s.loader, model_dir=str(s.models_path), lora_dir=str(s.data_dir / "loras"),
            extensions=enabled, listen=s.listen, listen_host=s.host, listen_port=s.port, api=True,
            api_port=s.port, public_api=False, api_key="", multi_user=s.has_accounts, verbose=False,
            character=None, cpu=False, chat_buttons=False, share=False, nowebui=False,
        )


def default_shared_settings(settings: Settings) -> dict[str, Any]:
    """upstream's ``shared.settings`` keys that have a meaning here."""
    from webui.generation.params import GenerationParams

    params = GenerationParams().model_dump()
    return {**{k: v for k, v in params.items() if not isinstance(v, (dict, list))},
            "name1": settings.user_name, "mode": "chat", "character": "Assistant",
            "custom_stopping_strings": "", "truncation_length": params.get("truncation_length") or 2048,
            "user_data_dir": str(settings.data_dir),
            # upstream's defaults for its own gallery extension (which reads them with settings[...])
            "gallery-items_per_page": 50, "gallery-open": False}


class LiveMapping(MutableMapping[str, Any]):
    """A dict-like view of one of the current bridge's dicts, so ``from modules.shared import
    gradio`` at import time still sees components the UI adds later."""

    def __init__(self, pick: Callable[[CompatBridge], dict[str, Any]]) -> None:
        self._pick = pick

    def _data(self) -> dict[str, Any]:
        return self._pick(current())

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


class _Slot:
    """Holds the bridge of the manager that last imported or called an extension."""

    bridge: CompatBridge | None = None


SLOT = _Slot()


def current() -> CompatBridge:
    bridge = SLOT.bridge
    if bridge is None:
        raise CompatError("text-generation-webui's `modules` is only available to extensions the app loads")
    return bridge

