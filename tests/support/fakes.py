"""A scripted backend for fast tests of the engine and chat logic (no model, no torch)."""

from __future__ import annotations

import threading
import time

from webui.engine.protocol import Backend, BackendInfo, Emit, GenerationStats, LoadedModel, ModelInfo, ModelSpec
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.generation.support import ALL_PARAMS, ENGINE_PARAMS


class FakeModel(LoadedModel):
    def __init__(self, spec: ModelSpec) -> None:
        self.info = ModelInfo(name=spec.display_name or "fake", loader=FakeBackend.info.name,
                              context_length=int(spec.options.get("context_length", 4096)), footprint_bytes=1)
        self.tokens: list[str] = list(spec.options.get("tokens", ["Hello", " there", "!"]))
        self.delay = float(spec.options.get("delay", 0.0))
        self.prompts: list[str] = []
        self.calls: list[tuple[GenerationParams, object]] = []
        self.threads: set[str] = set()

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        self.threads.add(threading.current_thread().name)
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompt: str, params: GenerationParams, emit: Emit,
                 hooks: DecodeHooks | None = None) -> GenerationStats:
        self.threads.add(threading.current_thread().name)
        self.prompts.append(prompt)
        self.calls.append((params, hooks))  # what extension hooks handed the model (webui.generation.decode)
        stats = GenerationStats(prompt_tokens=self.count_tokens(prompt), finish_reason="length")
        for i, tok in enumerate(self.tokens):
            if i >= params.max_new_tokens:
                return stats
            if self.delay:
                time.sleep(self.delay)
            if not emit(tok):
                stats.finish_reason = "stop"
                return stats
        stats.finish_reason = "stop"
        return stats

    def unload(self) -> None:
        self.tokens = []


class FakeBackend(Backend):
    """Registered as "fake" by the ``fake_backend`` fixture (tests/conftest.py); takes any path,
    but after the real backends in the registry's order, so it never takes theirs."""

    info = BackendInfo(name="fake", params=ALL_PARAMS - ENGINE_PARAMS)

    def can_load(self, path: str) -> bool:
        return True

    def load(self, spec: ModelSpec) -> FakeModel:
        return FakeModel(spec)
