"""The contract every backend implements (llama.cpp, transformers, remote...).

What a backend can do is declared as data (``BackendInfo``, a class attribute), and what a loaded
model is as data too (``ModelInfo``): callers read those fields and never probe a backend or a
model with getattr/hasattr. docs/adding-a-backend.md walks through a new backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Protocol

from webui.errors import UserFacingError
from webui.generation.params import GenerationParams

if TYPE_CHECKING:  # decode.py pulls in the extension sampler types; only annotations need it here
    from pathlib import Path

    from webui.generation.decode import DecodeHooks

FinishReason = Literal["stop", "length", "cancelled", "error"]


class Emit(Protocol):
    """Called by a backend for each piece of decoded text; returns False to ask it to stop.
    ``logprobs``: the tokens behind ``text`` with their log-probabilities, when the request asked
    for them (``GenerationParams.logprobs``) and the backend declares ``BackendInfo.logprobs``."""

    def __call__(self, text: str, n_tokens: int = 1, logprobs: list[TokenLogprob] | None = None) -> bool: ...


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, raw bytes, its log-probability under the model (before any
    sampler), and the most likely alternatives at that step as (text, bytes, logprob), best first."""

    token: str
    logprob: float
    bytes: tuple[int, ...] = ()
    top: tuple[tuple[str, tuple[int, ...], float], ...] = ()


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused rather than evaluated
    # the reused KV cache holds tokens a context shift moved (this turn's or an earlier one's), so the
    # reply may differ slightly from a fresh read of its prompt (webui/engine/llama_context.py)
    context_shifted: bool = False


@dataclass
class ModelSpec:
    """What to load: a path (model folder or .gguf file) plus loader options."""

    path: str
    loader: str | None = None  # None: pick from the path
    options: dict[str, Any] = field(default_factory=dict)
    display_name: str | None = None


def is_url(path: str) -> bool:
    """Whether a spec's path is a server URL rather than a local file or folder."""
    return path.startswith(("http://", "https://"))


@dataclass(frozen=True)
class BackendInfo:
    """What a backend can do. Every flag a backend does not implement stays False, so a feature
    built later has one declared place to look (and the UI/API can say "not with this loader")."""

    name: str  # the loader name, as registered in webui/engine/registry.py
    # GenerationParams fields its generate() applies, besides the ones every backend gets from the
    # engine (webui.generation.support.ENGINE_PARAMS); the Parameters tab lists the rest as ignored
    params: frozenset[str]
    # Renders chat messages itself (a server applying the model's template): format_chat's text is
    # then only an estimate for token budgets, and generate() sends the messages it was made from.
    applies_chat_template: bool = False
    extension_processors: bool = False  # runs extensions' logits processors (DecodeHooks.processors)
    token_hooks: bool = False  # applies tokenizer_modifier (DecodeHooks.modify_tokens)
    logprobs: bool = False  # can report token log-probabilities
    adapters: bool = False  # can apply LoRA adapters
    native_samplers: bool = False  # exposes its own sampler chain (order, mirostat, ...) as settings
    prompt_cache: bool = False  # keeps a prompt's KV cache for the next request that shares its prefix


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is, fixed once it has loaded."""

    name: str
    loader: str
    context_length: int
    footprint_bytes: int = 0  # weights + caches this process holds (0: held elsewhere, e.g. a server)
    rss_delta_bytes: int = 0  # how much this process's resident memory grew while it loaded
    vocab_size: int | None = None  # None: token ids cannot be checked, so logit_bias is refused
    has_own_template: bool = False  # ships a chat template (otherwise the ChatML fallback renders chats)
    eos_token_id: int | None = None  # the tokenizer's end-of-sequence id (None: it has none)
    bos_token_id: int | None = None  # the tokenizer's beginning-of-sequence id (None: it has none)


def special_token_id(value: Any) -> int | None:
    """A special token's id as ModelInfo declares it (None when the tokenizer has none: None or -1)."""
    return int(value) if isinstance(value, int) and value >= 0 else None


class LoadedModel(ABC):
    """A model in memory. All methods are called on the inference worker thread, except
    ``count_tokens`` where ``counts_off_worker`` says it may run beside a generation."""

    info: ModelInfo
    # True: count_tokens only reads the tokenizer (no decoding state), so Engine.count_tokens_now may
    # call it from another thread while the worker generates (the chat's token counter, as one types)
    counts_off_worker: ClassVar[bool] = False

    @abstractmethod
    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """Render messages with the model's own chat template, ready for generation."""

    @abstractmethod
    def generate(self, prompt: str, params: GenerationParams, emit: Emit,
                 hooks: DecodeHooks | None = None) -> GenerationStats:
        """Decode a reply to ``prompt``, calling ``emit`` with each text delta. ``hooks``: the
        extensions' work for this reply; a backend applies what its ``BackendInfo`` declares."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    def apply_adapters(self, adapters: list[tuple[Path, float]]) -> None:
        """Apply these LoRA adapters (folder, weight), replacing any applied, without reloading
        (webui/engine/adapters.py). Backends whose ``BackendInfo.adapters`` is True override it."""
        raise UserFacingError(f"The {self.info.loader} loader cannot apply LoRA adapters; load the model with "
                              "transformers or llama.cpp.")

    def clear_adapters(self) -> None:
        """Remove every applied adapter: the base model again."""
        raise UserFacingError(f"The {self.info.loader} loader cannot apply LoRA adapters.")

    @abstractmethod
    def unload(self) -> None: ...

    # -- inspection: the Notebook's Tokens and Logits views, /v1/internal/encode|decode|logits.
    # A backend that cannot inspect keeps these defaults, which say so in one line.

    def tokenize(self, text: str) -> list[int]:
        """The token ids generate() feeds the model for ``text`` (no BOS added, special tokens parsed)."""
        raise UserFacingError(f"The {self.info.loader} loader cannot show token ids.")

    def detokenize(self, ids: list[int]) -> str:
        """The text of ``ids`` (special tokens left out, as a reply shows them)."""
        raise UserFacingError(f"The {self.info.loader} loader cannot decode token ids.")

    def token_pieces(self, ids: list[int]) -> list[str]:
        """Each id's own text (special tokens by name); pieces of a split character may not be valid UTF-8
        alone and show U+FFFD."""
        raise UserFacingError(f"The {self.info.loader} loader cannot show token pieces.")

    def next_token_probs(self, prompt: str, k: int, params: GenerationParams | None = None,
                         hooks: DecodeHooks | None = None) -> list[TokenProb]:
        """The ``k`` most likely next tokens after ``prompt``, most likely first. ``params`` None: the
        softmax of the raw logits; otherwise the distribution the sampler draws from once the
        backend's processors and samplers have run (each backend documents its chain)."""
        raise UserFacingError(f"The {self.info.loader} loader cannot show next-token probabilities.")


class TokenProb(NamedTuple):
    """One candidate next token: its id, its text (special tokens by name) and its probability."""

    id: int
    text: str
    prob: float


class Backend(ABC):
    """A loader: turns a ModelSpec into a LoadedModel. Instantiated per use; keeps no state."""

    info: ClassVar[BackendInfo]

    @abstractmethod
    def can_load(self, path: str) -> bool:
        """Whether this backend takes ``path`` when no loader is named. The registry asks each
        backend in its order and the first that says yes opens the path."""

    def preflight(self, spec: ModelSpec) -> None:
        """Cheap checks (bad options, a missing file) run before the current model is unloaded,
        so a refused load leaves it in place. Nothing to check by default."""
        return None

    @abstractmethod
    def load(self, spec: ModelSpec) -> LoadedModel: ...
