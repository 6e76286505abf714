"""The engine: the loaded model plus the one inference worker. Every caller goes through here."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from webui.engine.protocol import LoadedModel, ModelInfo, ModelSpec
from webui.engine.registry import get_backend, pick_loader
from webui.engine.worker import GenerationHandle, InferenceWorker
from webui.errors import ModelLoadError
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams

log = logging.getLogger(__name__)


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
        if self.model is not None:
            self.model.unload()
        self.model = self.spec = self.load_info = None

    def _require_model(self) -> LoadedModel:
        if self.model is None:
            raise ModelLoadError("No model is loaded. Load one in the Model tab or start with --model.")
        return self.model

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self.worker.call(lambda: self._require_model().format_chat(messages))

    def count_tokens(self, text: str) -> int:
        return self.worker.call(lambda: self._require_model().count_tokens(text))

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
