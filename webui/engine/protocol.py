"""The contract every backend implements (llama.cpp, transformers, remote...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from webui.generation.params import GenerationParams

FinishReason = Literal["stop", "length", "cancelled", "error"]


class Emit(Protocol):
    """Called by a backend for each piece of decoded text; returns False to ask it to stop."""

    def __call__(self, text: str, n_tokens: int = 1) -> bool: ...


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"


@dataclass
class ModelSpec:
    """What to load: a path (model folder or .gguf file) plus loader options."""

    path: str
    loader: str | None = None  # None: pick from the path
    options: dict[str, Any] = field(default_factory=dict)
    display_name: str | None = None


class LoadedModel(Protocol):
    """A model in memory. All methods are called on the inference worker thread."""

    name: str
    loader: str
    context_length: int

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """Render messages with the model's own chat template, ready for generation."""
        ...

    def generate(self, prompt: str, params: GenerationParams, emit: Emit) -> GenerationStats:
        """Decode a reply to ``prompt``, calling ``emit`` with each text delta."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def unload(self) -> None: ...


class Backend(Protocol):
    """A loader: turns a ModelSpec into a LoadedModel."""

    name: str

    def can_load(self, path: str) -> bool: ...

    def load(self, spec: ModelSpec) -> LoadedModel: ...
