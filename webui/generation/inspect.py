"""What the internal API and the Notebook show about a text: its tokens, and the next token's odds.

Both callers go through these functions, so ``/v1/internal/encode`` and the Notebook's Tokens view
show the same ids, and ``/v1/internal/logits`` and its Logits view the same probabilities. The model
work runs on the inference worker (``Engine.tokenize`` ... ``Engine.next_token_probs``), behind any
reply being generated. Token ids are checked against the model's vocabulary before they reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from webui.engine.protocol import TokenProb
from webui.errors import UserFacingError
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams

if TYPE_CHECKING:  # the engine and the chat layer's hooks are only passed in
    from webui.chat.hooks import TurnHooks
    from webui.engine.engine import Engine

MAX_TOP = 1000  # the most candidates one request may ask for
MAX_IDS = 1_000_000  # the most ids one decode may take (a JSON body is bounded before that anyway)


@dataclass(frozen=True)
class TokenView:
    """A text's tokens as the model reads it: each id with its own piece of text."""

    ids: list[int]
    pieces: list[str]

    def rows(self) -> list[list[object]]:
        """One row per token: position, id, piece (quoted: its whitespace shows)."""
        return [[i, tid, visible(piece)] for i, (tid, piece) in enumerate(zip(self.ids, self.pieces))]


def visible(piece: str) -> str:
    """A token's text quoted as Python writes it, so its spaces, newlines and tabs show (``' Paris'``)."""
    return repr(piece)


def encode(engine: Engine, text: str) -> list[int]:
    """The text's own token ids, as the context budget counts them (no BOS added; a reply's prompt
    may start with one, as ``add_bos_token`` says)."""
    return engine.tokenize(text)


def tokens_view(engine: Engine, text: str) -> TokenView:
    ids = engine.tokenize(text)
    return TokenView(ids, engine.token_pieces(ids) if ids else [])


def decode(engine: Engine, ids: list[int]) -> str:
    """The text of ``ids``; an id outside the vocabulary is refused (it never reaches the model)."""
    check_ids(engine, ids)
    return engine.detokenize(ids) if ids else ""


def check_ids(engine: Engine, ids: list[int]) -> None:
    info = engine.model_info
    if len(ids) > MAX_IDS:
        raise UserFacingError(f"At most {MAX_IDS} token ids can be decoded at once.")
    vocab = info.vocab_size if info is not None else None
    bad = [i for i in ids if i < 0 or (vocab is not None and i >= vocab)]
    if bad:
        top = f"0..{vocab - 1}" if vocab is not None else "0 and up"
        raise UserFacingError(f"Token ids must be in {top} for this model; got {bad[:5]}.")


def next_tokens(engine: Engine, prompt: str, k: int, params: GenerationParams | None = None,
                hooks: DecodeHooks | None = None) -> list[TokenProb]:
    """The ``k`` most likely next tokens after ``prompt``, most likely first, with their probabilities.

    ``params`` None: the softmax of the model's raw logits. Otherwise the distribution the sampler
    draws from after the backend's processors and samplers (``hooks``: the extensions' samplers);
    candidates the samplers removed (probability 0) are left out, so fewer than ``k`` may come back.
    """
    if not 1 <= k <= MAX_TOP:
        raise UserFacingError(f"Ask for between 1 and {MAX_TOP} candidates (got {k}).")
    probs = engine.next_token_probs(prompt, k, params, hooks)
    return [p for p in probs if p.prob > 0.0]


def as_dict(probs: list[TokenProb]) -> dict[str, float]:
    """text-generation-webui's ``/v1/internal/logits`` answer: token text -> probability, most likely
    first (two tokens with the same text keep the likelier one)."""
    out: dict[str, float] = {}
    for p in probs:
        out.setdefault(p.text, p.prob)
    return out


def logits_rows(probs: list[TokenProb]) -> list[list[object]]:
    """One row per candidate: rank, probability (rounded), id, text."""
    return [[rank, round(p.prob, 5), p.id, visible(p.text)] for rank, p in enumerate(probs, start=1)]


def extension_hooks(hooks: TurnHooks, prompt: str, params: GenerationParams) -> DecodeHooks | None:
    """The enabled extensions' samplers and logits processors for a completion of ``prompt`` (as
    ``TurnHooks.complete`` gives the model), so "with samplers" includes them. Raises the extensions'
    parameter errors (user-facing)."""
    from webui.chat.hooks import Turn

    state = hooks.make_state(params, mode="instruct")
    return hooks.decode_hooks(Turn(params, state, prompt, prompt, is_chat=False))
