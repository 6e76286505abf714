"""The engine: the loaded model plus the one inference worker. Every caller goes through here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from webui.engine.adapters import AppliedLora
from webui.engine.protocol import LoadedModel, ModelInfo, ModelSpec, TokenProb
from webui.engine.registry import get_backend, pick_loader
from webui.engine.worker import GenerationHandle, InferenceWorker
from webui.errors import ModelLoadError
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams

if TYPE_CHECKING:
    from webui.training.lora_library import LoraLibrary

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class LoadInfo:
    """One load: what loaded, with which loader, how long it took and the memory it holds."""

    name: str
    loader: str
    load_seconds: float
    footprint_bytes: int


class Engine:
    """Owns the worker thread and at most one loaded model."""

    def __init__(self, worker: InferenceWorker | None = None) -> None:
        self.worker = worker or InferenceWorker()
        self.model: LoadedModel | None = None
        self.spec: ModelSpec | None = None
        self.load_info: LoadInfo | None = None
        self._counting = threading.Lock()  # held while counting off the worker: an unload waits for it
        self.loras: list[AppliedLora] = []  # the LoRA adapters applied to the loaded model, in order

    @property
    def model_info(self) -> ModelInfo | None:
        """What the loaded model is (None when none is loaded)."""
        return self.model.info if self.model else None

    @property
    def model_name(self) -> str:
        return self.model.info.name if self.model else "(no model loaded)"

    def load(self, spec: ModelSpec) -> LoadInfo:
        """Load ``spec`` on the worker (after unloading the current model)."""
        loader = pick_loader(spec)
        backend = get_backend(loader)
        backend.preflight(spec)  # bad options or a missing file: refused while the current model stays loaded

        def do_load() -> LoadInfo:
            self._unload_now()
            start = time.perf_counter()
            model = backend.load(spec)
            info = LoadInfo(model.info.name, loader, time.perf_counter() - start, model.info.footprint_bytes)
            self.model, self.spec, self.load_info = model, spec, info
            log.info("loaded %s with %s in %.2fs", info.name, loader, info.load_seconds)
            return info

        return self.worker.call(do_load)

    def unload(self) -> None:
        self.worker.call(self._unload_now)

    def _unload_now(self) -> None:
        with self._counting:
            if self.model is not None:
                self.model.unload()
            self.model = self.spec = self.load_info = None
            self.loras = []  # a (re)load starts from the base model

    def _require_model(self) -> LoadedModel:
        if self.model is None:
            raise ModelLoadError("No model is loaded. Load one in the Model tab or start with --model.")
        return self.model

    def apply_loras(self, names: list[str], weights: list[float] | None = None, *,
                    library: LoraLibrary) -> list[AppliedLora]:
        """Apply the adapters ``names`` from ``library`` (each at its weight, 1.0 by default) to the
        loaded model without reloading it, replacing those applied; an empty list removes them. A
        failure (an adapter that does not fit) leaves the base model, and says why."""
        loras = library.resolve(names, weights)  # unknown names and bad weights: refused before any work

        def do_apply() -> list[AppliedLora]:
            model = self._require_model()
            try:
                if loras:
                    model.apply_adapters([(lora.path, lora.weight) for lora in loras])
                elif self.loras:
                    model.clear_adapters()
            except BaseException:
                if self.loras or loras:
                    self._clear_quietly(model)
                self.loras = []
                raise
            self.loras = list(loras)
            log.info("LoRA adapters applied: %s", ", ".join(f"{x.name} ({x.weight:g})" for x in loras) or "none")
            return list(loras)

        return self.worker.call(do_apply)

    def remove_loras(self) -> None:
        """Remove every applied adapter (the base model again, without reloading)."""

        def do_remove() -> None:
            if self.model is not None and self.loras:
                self.model.clear_adapters()
            self.loras = []

        self.worker.call(do_remove)

    @staticmethod
    def _clear_quietly(model: LoadedModel) -> None:
        try:
            model.clear_adapters()
        except Exception:  # noqa: BLE001 - the apply's own error is the one to report
            log.exception("could not remove the adapters after a failed apply")

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self.worker.call(lambda: self._require_model().format_chat(messages))

    def count_tokens(self, text: str) -> int:
        return self.worker.call(lambda: self._require_model().count_tokens(text))

    # -- inspection on the worker (LoadedModel.tokenize ... next_token_probs; webui/generation/inspect.py)

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer_call(lambda model: model.tokenize(text))

    def detokenize(self, ids: list[int]) -> str:
        return self._tokenizer_call(lambda model: model.detokenize(ids))

    def token_pieces(self, ids: list[int]) -> list[str]:
        return self._tokenizer_call(lambda model: model.token_pieces(ids))

    def _tokenizer_call(self, fn: Callable[[LoadedModel], T]) -> T:
        """Tokenizer-only work: on the caller's thread where the model allows it (as ``count_tokens_now``:
        SillyTavern's token counts need not wait for a reply), otherwise queued on the worker."""
        with self._counting:
            model = self.model
            if model is not None and model.counts_off_worker:
                return fn(model)
        return self.worker.call(lambda: fn(self._require_model()))

    def next_token_probs(self, prompt: str, k: int, params: GenerationParams | None = None,
                         hooks: DecodeHooks | None = None) -> list[TokenProb]:
        """Queued behind any running generation, like a reply (it evaluates the prompt)."""
        return self.worker.call(lambda: self._require_model().next_token_probs(prompt, k, params, hooks))

    def count_tokens_now(self, text: str) -> int | None:
        """``count_tokens`` without queueing behind a generation: counted on the caller's thread
        where the model says its tokenizer allows it (``LoadedModel.counts_off_worker``); None when
        no model is loaded or it does not (a UI then shows no count rather than wait)."""
        with self._counting:
            model = self.model
            if model is None or not model.counts_off_worker:
                return None
            try:
                return model.count_tokens(text)
            except RuntimeError:  # a fast tokenizer busy being reconfigured ("Already borrowed"): skip this count
                return None

    def generate(self, prompt: str, params: GenerationParams, hooks: DecodeHooks | None = None) -> GenerationHandle:
        """Queue a completion of ``prompt``; the handle streams text deltas. ``hooks``: extension
        logits processors etc. (see webui/generation/decode.py).

        A chat reply is ``generate(format_chat(messages), ...)``: the one path for every backend
        (a remote one recognises the prompt it rendered and sends the messages instead)."""
        return self.worker.stream(lambda emit: self._require_model().generate(prompt, params, emit, hooks), params.stop)

    def shutdown(self) -> None:
        try:
            self.unload()
        finally:
            self.worker.shutdown()
