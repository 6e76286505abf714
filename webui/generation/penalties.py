"""Repetition-type logit penalties, written once for both local backends.

What each parameter does (the same on llama.cpp and transformers):

* ``repetition_penalty`` (CTRL / Hugging Face rule): every distinct token among the last
  ``repetition_penalty_range`` tokens of the context -- prompt *and* reply -- has a positive logit
  divided by the penalty and a negative one multiplied by it (``range == 0``: the whole context,
  as transformers' own ``RepetitionPenaltyLogitsProcessor`` does).
* ``presence_penalty`` / ``frequency_penalty`` (OpenAI rule):
  ``logit -= presence * (count > 0) + frequency * count``, where ``count`` is how often the token
  occurs in the tokens generated *in this reply* -- the prompt does not count, as with OpenAI and
  llama.cpp.
* ``no_repeat_ngram_size = n``: a token that would complete an n-gram already present in the
  context (prompt and reply) gets ``-inf`` (transformers' ``NoRepeatNGramLogitsProcessor`` rule).
* ``ban_eos_token``: the end-of-sequence token(s) get ``-inf``, so the reply runs to
  ``max_new_tokens`` (or a stop string).

``SequencePenalties`` holds the per-generation state in plain Python and numpy. It is fed the whole
token sequence at every step and only reads the tokens it has not seen yet, so each step costs
O(new tokens) to update plus O(range) or O(distinct tokens penalised) to apply -- never O(context).
The score arithmetic uses only indexing and operators, so the same code updates a numpy vector
(llama.cpp's ``logits_processor``, see ``numpy_processor``) or a torch row (``TorchPenalties``, a
transformers logits processor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from webui.generation.params import GenerationParams

NEG_INF = float("-inf")


@dataclass(frozen=True)
class PenaltyConfig:
    """The penalties to apply in one generation; every field at its neutral value means 'none'."""

    repetition_penalty: float = 1.0
    repetition_range: int = 0  # last N tokens of the context; 0 = all of it
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    no_repeat_ngram_size: int = 0
    banned_ids: tuple[int, ...] = ()  # always -inf (ban EOS)

    @classmethod
    def from_params(cls, params: GenerationParams, eos_ids: Iterable[int] = ()) -> PenaltyConfig:
        return cls(
            repetition_penalty=params.repetition_penalty,
            repetition_range=params.repetition_penalty_range,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            no_repeat_ngram_size=params.no_repeat_ngram_size,
            banned_ids=tuple(sorted({int(i) for i in eos_ids if int(i) >= 0})) if params.ban_eos_token else (),
        )

    @property
    def active(self) -> bool:
        return bool(
            self.repetition_penalty != 1.0 or self.presence_penalty or self.frequency_penalty
            or self.no_repeat_ngram_size > 0 or self.banned_ids
        )


def repetition_rule(values: Any, penalty: float) -> Any:
    """CTRL rule on logits (numpy array or torch tensor): positive / penalty, negative * penalty."""
    out = values * penalty
    positive = values > 0
    out[positive] = values[positive] / penalty
    return out


class SequencePenalties:
    """Per-generation state for one token sequence (prompt + reply so far).

    Call ``update(ids)`` with the whole sequence before each sampling step (the first call's length
    is taken as the prompt length), then ``apply(scores)`` on the next-token logits.
    """

    def __init__(self, config: PenaltyConfig) -> None:
        self.config = config
        self.prompt_len: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._ids: list[int] = []
        # repetition penalty over the whole context: distinct tokens seen so far
        self._seen: dict[int, None] = {}
        self._seen_array: np.ndarray | None = None
        # presence / frequency: counts of the generated tokens
        self._counts: dict[int, int] = {}
        # no_repeat_ngram: (n-1)-token prefix -> tokens that followed it
        self._ngrams: dict[tuple[int, ...], set[int]] = {}

    # -- state ------------------------------------------------------------------------------
    def update(self, ids: Sequence[int] | np.ndarray) -> None:
        """Take in the tokens of ``ids`` not seen yet (``ids`` extends the previous sequence)."""
        n = len(self._ids)
        if len(ids) < n or (n and int(ids[n - 1]) != self._ids[-1]):  # not an extension: start over
            self._reset()
            n = 0
        if self.prompt_len is None:
            self.prompt_len = len(ids)
        new = ids[n:]
        new = new.tolist() if hasattr(new, "tolist") else list(new)
        cfg = self.config
        track_seen = cfg.repetition_penalty != 1.0 and cfg.repetition_range == 0
        track_counts = bool(cfg.presence_penalty or cfg.frequency_penalty)
        size = cfg.no_repeat_ngram_size
        for token in new:
            pos = len(self._ids)
            self._ids.append(token)
            if track_seen and token not in self._seen:
                self._seen[token] = None
                self._seen_array = None
            if track_counts and pos >= self.prompt_len:
                self._counts[token] = self._counts.get(token, 0) + 1
            if size > 0 and pos + 1 >= size:
                prefix = tuple(self._ids[pos + 1 - size : pos])
                self._ngrams.setdefault(prefix, set()).add(token)

    # -- what to change ---------------------------------------------------------------------
    def repetition_ids(self) -> np.ndarray:
        """Token ids the repetition penalty applies to (may repeat; the rule is idempotent per id)."""
        cfg = self.config
        if cfg.repetition_penalty == 1.0:
            return np.empty(0, dtype=np.int64)
        if cfg.repetition_range > 0:
            return np.asarray(self._ids[-cfg.repetition_range :], dtype=np.int64)
        if self._seen_array is None:
            self._seen_array = np.fromiter(self._seen, dtype=np.int64, count=len(self._seen))
        return self._seen_array

    def presence_frequency(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, amounts)`` to subtract: presence + frequency * count for each generated token."""
        cfg = self.config
        if not (cfg.presence_penalty or cfg.frequency_penalty) or not self._counts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ids = np.fromiter(self._counts, dtype=np.int64, count=len(self._counts))
        counts = np.fromiter(self._counts.values(), dtype=np.float32, count=len(self._counts))
        return ids, (cfg.presence_penalty + cfg.frequency_penalty * counts).astype(np.float32)

    def ngram_banned(self) -> list[int]:
        """Tokens that would complete an n-gram already in the sequence."""
        size = self.config.no_repeat_ngram_size
        if size <= 0 or len(self._ids) < size - 1:
            return []
        prefix = tuple(self._ids[len(self._ids) - size + 1 :]) if size > 1 else ()
        return sorted(self._ngrams.get(prefix, ()))

    # -- applying ---------------------------------------------------------------------------
    def apply(self, scores: Any, convert: Callable[[np.ndarray], Any] = lambda a: a) -> Any:
        """Apply every configured penalty to a 1-D logit vector in place and return it.

        ``convert`` turns numpy index/value arrays into what ``scores`` indexes with (identity for
        numpy; a tensor on the scores' device for torch).
        """
        cfg = self.config
        rep = self.repetition_ids()
        if rep.size:
            index = convert(rep)
            scores[index] = repetition_rule(scores[index], cfg.repetition_penalty)
        ids, amounts = self.presence_frequency()
        if ids.size:
            scores[convert(ids)] -= convert(amounts)
        banned = self.ngram_banned()
        if banned:
            scores[convert(np.asarray(banned, dtype=np.int64))] = NEG_INF
        if cfg.banned_ids:
            scores[convert(np.asarray(cfg.banned_ids, dtype=np.int64))] = NEG_INF
        return scores


def numpy_processor(config: PenaltyConfig) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """A llama-cpp-python logits processor ``(input_ids, scores) -> scores`` (None when neutral).

    ``input_ids`` are all the tokens so far (prompt + reply); ``scores`` the next token's logits.
    """
    if not config.active:
        return None
    state = SequencePenalties(config)

    def process(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        state.update(input_ids)
        return state.apply(scores)

    return process


class TorchPenalties:
    """A transformers logits processor applying a ``PenaltyConfig`` (one state per batch row)."""

    def __init__(self, config: PenaltyConfig) -> None:
        self.config = config
        self.states: list[SequencePenalties] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        while len(self.states) < input_ids.shape[0]:
            self.states.append(SequencePenalties(self.config))
        device = scores.device

        def convert(array: np.ndarray) -> Any:
            tensor = torch.from_numpy(array).to(device)
            return tensor.to(scores.dtype) if tensor.is_floating_point() else tensor

        for row, state in enumerate(self.states[: input_ids.shape[0]]):
            state.update(input_ids[row])
            state.apply(scores[row], convert)
        return scores
