"""The llama.cpp decode loop: the prompt (reusing the cached prefix), then one token at a time drawn
by llama.cpp's own sampler chain (``webui.engine.llama_samplers``).

Written here rather than through ``Llama.create_completion`` so that the chain is ours (every native
sampler, Python stages only where needed), ``banned_strings`` can rewind, and log-probabilities are
read from the step's logits only when a request asks (``llama_get_logits_ith``; no ``logits_all``,
so ordinary requests pay nothing).

``banned_strings``: text that could still become a banned string is held back; when one appears, the
reply rewinds to the token where it starts (the KV cache and the sampler chain too), bans that token
at that position and draws again, as text-generation-webui does.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from webui.engine.llama_context import PromptStates, load_prompt
from webui.engine.llama_samplers import ChainInputs, SamplerChain, build_chain
from webui.engine.protocol import Emit, GenerationStats, TokenLogprob
from webui.generation import logit_rules
from webui.generation.params import GenerationParams
from webui.generation.penalties import PenaltyConfig, SequencePenalties

NumpyProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]
MAX_REWINDS_PER_TOKEN = 4


@dataclass
class DecodeRequest:
    prompt_ids: list[int]
    params: GenerationParams
    seed: int
    eog_ids: Sequence[int] = ()
    stop_strings: Sequence[str] = ()  # the template's own stops (the worker applies params.stop)
    processors: Sequence[NumpyProcessor] = ()  # the extensions' logits processors (llama-cpp-python form)
    prompt_states: PromptStates | None = None  # saved KV states to restore from and save to (per model)
    context_shift: bool = True  # a chat that outgrew the context moves its kept tokens (webui.engine.llama_context)


def token_bytes(llm: Any, token: int, special: bool) -> bytes:
    """A token's text as bytes (special tokens by name when ``special``), any length."""
    import ctypes

    import llama_cpp

    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


@dataclass
class _Reply:
    """The reply so far: tokens, their text ends, their log-probabilities."""

    ids: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # len(text) after each token
    logprobs: list[TokenLogprob | None] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # characters sent
    counted: int = 0  # tokens sent

    def truncate(self, k: int) -> None:
        self.text = self.text[: self.ends[k - 1] if k else 0]
        del self.ids[k:], self.ends[k:], self.logprobs[k:]


class LlamaDecoder:
    """One generation on a loaded ``llama_cpp.Llama`` (used on the inference thread only)."""

    def __init__(self, llm: Any, request: DecodeRequest, emit: Emit) -> None:
        self.llm = llm
        self.req = request
        self.params = request.params
        self.emit = emit
        self.n_vocab = int(llm.n_vocab())
        self.reply = _Reply()
        self.bans: dict[int, set[int]] = {}  # position in the reply -> tokens banned there (banned_strings)
        self.rewinds = 0
        self.holdback = [s for s in (*self.params.banned_strings, *request.stop_strings) if s]
        self._pieces: dict[tuple[int, bool], bytes] = {}
        self._ngrams = (SequencePenalties(PenaltyConfig(no_repeat_ngram_size=self.params.no_repeat_ngram_size))
                        if self.params.no_repeat_ngram_size > 0 else None)
        self._prompt_set = np.unique(np.asarray(request.prompt_ids, dtype=np.int64))
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    # -- the chain ----------------------------------------------------------------------------
    def _needs_prep(self) -> bool:
        p = self.params
        return bool(self._ngrams or p.encoder_repetition_penalty != 1.0 or p.min_tokens > 0 or p.banned_strings
                    or self.req.processors)

    def _prep(self, logits: np.ndarray, ids: np.ndarray) -> None:
        """The full-vocabulary Python stage (candidates in id order, right after the penalties)."""
        p, reply = self.params, self.reply
        if ids.size != self.n_vocab:  # not the whole vocabulary: nothing safe to do by id
            return
        everything: np.ndarray | None = None
        if self._ngrams is not None or self.req.processors:
            everything = np.asarray([*self.req.prompt_ids, *reply.ids], dtype=np.intc)
        if self._ngrams is not None and everything is not None:
            self._ngrams.update(everything)
            banned = self._ngrams.ngram_banned()
            if banned:
                logits[np.asarray(banned, dtype=np.int64)] = logit_rules.NEG_INF
        if p.encoder_repetition_penalty != 1.0:
            logit_rules.encoder_repetition(logits, self._prompt_set, p.encoder_repetition_penalty)
        if len(reply.ids) < p.min_tokens and self.req.eog_ids:
            logits[np.asarray(self.req.eog_ids, dtype=np.int64)] = logit_rules.NEG_INF
        banned_here = self.bans.get(len(reply.ids))
        if banned_here:
            logits[np.fromiter(banned_here, dtype=np.int64)] = logit_rules.NEG_INF
        if self.req.processors and everything is not None:
            scores = np.array(logits, dtype=np.single)
            for processor in self.req.processors:
                scores = processor(everything, scores)
            logits[:] = scores

    def _chain(self) -> SamplerChain:
        llm = self.llm
        inputs = ChainInputs(
            n_vocab=self.n_vocab, n_ctx=int(llm.n_ctx()), vocab=llm._model.vocab,
            seed=(self.req.seed + self.rewinds) % 2**32, prompt_ids=[*self.req.prompt_ids, *self.reply.ids],
            reply_ids=list(self.reply.ids), eog_ids=self.req.eog_ids,
            prep=self._prep if self._needs_prep() else None)
        return build_chain(self.params, inputs)

    # -- text -----------------------------------------------------------------------------------
    def _piece(self, token: int, special: bool) -> bytes:
        key = (token, special)
        if key not in self._pieces:
            self._pieces[key] = token_bytes(self.llm, token, special)
        return self._pieces[key]

    def _logprob(self, logprobs: np.ndarray, token: int) -> TokenLogprob:
        n = self.params.logprobs or 0
        top: list[tuple[str, tuple[int, ...], float]] = []
        if n:
            best = np.argpartition(-logprobs, n)[:n]
            for i in best[np.argsort(-logprobs[best])]:
                piece = self._piece(int(i), True)
                top.append((piece.decode("utf-8", errors="replace"), tuple(piece), float(logprobs[i])))
        piece = self._piece(token, not self.params.skip_special_tokens)
        return TokenLogprob(piece.decode("utf-8", errors="replace"), float(logprobs[token]), tuple(piece), tuple(top))

    def _held(self, text: str) -> int:
        """How many characters at the end of ``text`` could begin a banned or stop string."""
        best = 0
        for s in self.holdback:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best

    def _send(self, upto: int) -> bool:
        """Emit the text up to ``upto`` with the tokens that end inside it; False: asked to stop."""
        reply = self.reply
        done = reply.counted
        while done < len(reply.ends) and reply.ends[done] <= upto:
            done += 1
        lps = [lp for lp in reply.logprobs[reply.counted:done] if lp is not None]
        delta = reply.text[reply.emitted:upto] if upto > reply.emitted else ""
        n_new = done - reply.counted
        reply.emitted, reply.counted = max(reply.emitted, upto), done
        return self.emit(delta, n_new, logprobs=lps) if lps else self.emit(delta, n_new)

    def _safe_end(self) -> int:
        """Where the text may be sent up to now: before anything that could begin a banned or stop
        string, and with banned strings on a token boundary (a rewind never takes back sent text)."""
        reply = self.reply
        upto = len(reply.text) - self._held(reply.text[reply.emitted:])
        if self.params.banned_strings:
            upto = max([reply.emitted, *(e for e in reply.ends if e <= upto)])
        return upto

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> GenerationStats:
        llm, params, reply = self.llm, self.params, self.reply
        prompt = self.req.prompt_ids
        n_ctx = int(llm.n_ctx())
        if len(prompt) >= n_ctx:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
        max_tokens = min(params.max_new_tokens, n_ctx - len(prompt))
        stats = GenerationStats(prompt_tokens=len(prompt))
        eog = set(self.req.eog_ids)
        loaded = load_prompt(llm, prompt, self.req.prompt_states, shift=self.req.context_shift)
        stats.cached_tokens, stats.context_shifted = loaded.reused, loaded.approximate
        chain = self._chain()
        try:
            while True:
                logprobs = self._step_logprobs() if params.logprobs is not None else None
                token = chain.sample(llm._ctx.ctx)
                if token in eog:
                    stats.finish_reason = "stop"
                    break
                reply.ids.append(token)
                reply.text += self._decoder.decode(self._piece(token, not params.skip_special_tokens))
                reply.ends.append(len(reply.text))
                reply.logprobs.append(self._logprob(logprobs, token) if logprobs is not None else None)
                if self._banned_match():
                    chain.free()
                    if self.rewinds > MAX_REWINDS_PER_TOKEN * max(max_tokens, 1):
                        stats.finish_reason = "stop"
                        break
                    chain = self._chain()
                    continue
                cut = self._stop_match()
                if cut is not None:
                    reply.text = reply.text[:cut]
                    self._send(cut)
                    stats.finish_reason = "stop"
                    break
                if not self._send(self._safe_end()):
                    break
                if len(reply.ids) >= max_tokens:
                    stats.finish_reason = "length"
                    break
                llm.eval([token])
        finally:
            chain.free()
        reply.text += self._decoder.decode(b"", final=True)
        reply.ends = [min(e, len(reply.text)) for e in reply.ends]
        if reply.emitted < len(reply.text) or reply.counted < len(reply.ids):
            self._send(len(reply.text))
        stats.completion_tokens = len(reply.ids)
        if self.req.prompt_states is not None:
            self.req.prompt_states.save(llm)  # this chat's next turn (or its return after another) starts here
        return stats

    def _step_logprobs(self) -> np.ndarray:
        import llama_cpp

        raw = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1), shape=(self.n_vocab,))
        values = raw.astype(np.float64)
        top = values.max()
        return values - top - np.log(np.exp(values - top).sum())

    def _stop_match(self) -> int | None:
        text, start = self.reply.text, self.reply.emitted
        found = [i for i in (text.find(s, start) for s in self.req.stop_strings if s) if i >= 0]
        return min(found) if found else None

    def _banned_match(self) -> bool:
        """If a banned string appeared, rewind to the token where it starts and ban that token there."""
        reply = self.reply
        found = [i for i in (reply.text.find(s, reply.emitted) for s in self.params.banned_strings if s) if i >= 0]
        if not found:
            return False
        start = min(found)
        k = next(i for i, end in enumerate(reply.ends) if end > start)
        self.bans.setdefault(k, set()).add(reply.ids[k])
        reply.truncate(k)
        reply.counted = min(reply.counted, k)
        self._decoder.reset()
        self.rewinds += 1
        # the KV cache back to the token before k, which is evaluated again for its logits
        llm = self.llm
        keep = len(self.req.prompt_ids) + k - 1
        llm.n_tokens = keep
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.eval([reply.ids[k - 1] if k else self.req.prompt_ids[-1]])
        return True
