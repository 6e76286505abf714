"""llama.cpp backend (llama-cpp-python) for .gguf files."""

from __future__ import annotations

import logging
import os
import random
import struct
from pathlib import Path
from typing import Any

from webui.engine.adapters import LlamaAdapters
from webui.engine.llama_context import PromptStates, load_prompt
from webui.engine.llama_decode import DecodeRequest, LlamaDecoder
from webui.engine.memory import rss_bytes
from webui.engine.options import normalize
from webui.engine.protocol import (
    Backend,
    BackendInfo,
    Emit,
    GenerationStats,
    LoadedModel,
    ModelInfo,
    ModelSpec,
    TokenProb,
    is_url,
    special_token_id,
)
from webui.errors import ModelLoadError, UserFacingError
from webui.generation.decode import DecodeHooks, llama_cpp_logits_processor
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE, FALLBACK_STOP
from webui.generation.params import LOCAL_DECODING_PARAMS, REWIND_PARAMS, GenerationParams

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def default_threads() -> int:
    """All cores on small machines; physical-ish half on big ones (llama.cpp's sweet spot)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return n if n <= 4 else n // 2


def check_gguf_file(path: Path) -> None:
    """Fail early, with a clear message, on a missing, unreadable or non-GGUF file.

    Reads only the fixed header (magic, version, tensor and metadata counts): a file that passes
    may still be refused by llama.cpp, but one that fails never reaches native code.
    """
    if not path.is_file():
        raise ModelLoadError(f"Model file not found: {path}. Pass --model with an existing .gguf file or model folder.")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            header = fh.read(GGUF_HEADER_BYTES)
    except OSError as exc:
        raise ModelLoadError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from exc
    problem = gguf_header_problem(header, size)
    if problem:
        raise ModelLoadError(
            f"{path} is not a GGUF model file this app can load ({problem}); "
            "it may be corrupt or incomplete. Download it again or choose another model."
        )


GGUF_HEADER_BYTES = 24  # magic, uint32 version, uint64 tensor count, uint64 metadata count
GGUF_VERSIONS = (2, 3)  # what llama.cpp reads (version 1 was dropped in 2023)


def gguf_header_problem(header: bytes, file_size: int) -> str | None:
    """What is wrong with a GGUF file's first bytes, or None. ``file_size`` bounds the counts: each
    tensor and metadata entry takes more than a byte, so larger counts mean a corrupt header."""
    if header[:4] != GGUF_MAGIC:
        return "it does not start with the GGUF header"
    if len(header) < GGUF_HEADER_BYTES:
        return "it ends inside its header"
    version, tensors, entries = struct.unpack("<IQQ", header[4:GGUF_HEADER_BYTES])
    if version not in GGUF_VERSIONS:
        if struct.unpack(">I", header[4:8])[0] in GGUF_VERSIONS:
            return "it is a big-endian GGUF, which this machine cannot load"
        return f"unsupported GGUF version {version}; expected {' or '.join(map(str, GGUF_VERSIONS))}"
    if tensors > file_size or entries > file_size:
        return f"its header claims {tensors} tensors and {entries} metadata entries, more than the file can hold"
    return None


KV_BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def gguf_weights_bytes(llm: Any, path: Path) -> int:
    """Bytes of the model's tensors as llama.cpp holds them (the file size if it cannot say)."""
    try:
        import llama_cpp

        return int(llama_cpp.llama_model_size(llm._model.model))
    except (AttributeError, ImportError, TypeError):
        return path.stat().st_size


def kv_cache_bytes(metadata: dict[str, str], n_ctx: int, cache_type: str) -> int:
    """Size of the K and V caches llama.cpp allocates for ``n_ctx`` tokens (0 if metadata lacks it)."""
    arch = metadata.get("general.architecture", "")
    try:
        layers = int(metadata[f"{arch}.block_count"])
        embd = int(metadata[f"{arch}.embedding_length"])
        heads = int(metadata[f"{arch}.attention.head_count"])
        kv_heads = int(metadata.get(f"{arch}.attention.head_count_kv", heads))
    except (KeyError, ValueError):
        return 0
    kv_width = embd * kv_heads // heads
    return int(2 * layers * n_ctx * kv_width * KV_BYTES_PER_VALUE.get(cache_type, 2.0))


def with_processors(first: list[Any], processors: Any) -> Any:
    """``first`` (our own parameter processors) ahead of the extensions' ``processors``."""
    if not first:
        return processors
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([*first, *(processors or [])])


def eog_token_ids(llm: Any) -> list[int]:
    """Every token that ends generation in llama.cpp (EOS, EOT, <|endoftext|>, ...), not only
    ``token_eos()``: banning EOS must ban them all, or the reply still ends early."""
    eos = int(llm.token_eos())
    try:
        import llama_cpp

        vocab = llm._model.vocab
        ids = [i for i in range(int(llm.n_vocab())) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    except (AttributeError, ImportError, TypeError):  # an older/newer llama-cpp-python
        ids = []
    return sorted({*ids, eos} - {-1})


def with_logit_bias(processors: Any, bias: dict[int, float]) -> Any:
    """Add OpenAI-style ``logit_bias`` to llama.cpp's processor list (llama-cpp-python's own
    ``logit_bias=`` drops other processors when both are given: ``list.extend`` returns None)."""
    if not bias:
        return processors
    from llama_cpp import LogitsProcessorList

    ids = list(bias)
    values = [bias[i] for i in ids]

    def add_bias(input_ids: Any, scores: Any) -> Any:
        scores[ids] += values
        return scores

    return LogitsProcessorList([*(processors or []), add_bias])


class LlamaCppModel(LoadedModel):
    """A GGUF model loaded by llama.cpp."""

    # llama_tokenize reads only the vocabulary, never the context's decoding state (llama.cpp's own
    # server tokenizes in its HTTP threads while the main loop decodes)
    counts_off_worker = True

    def __init__(self, llm: Any, name: str, path: Path, cache_type: str = "f16", rss_delta_bytes: int = 0, *,
                 prompt_cache_mb: int = 0, context_shift: bool = True) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = llm
        self.path = path
        n_ctx = int(llm.n_ctx())
        template = llm.metadata.get("tokenizer.chat_template")
        self.info = ModelInfo(
            name=name,
            loader=LlamaCppBackend.info.name,
            context_length=n_ctx,
            footprint_bytes=gguf_weights_bytes(llm, path) + kv_cache_bytes(llm.metadata, n_ctx, cache_type),
            rss_delta_bytes=rss_delta_bytes,
            vocab_size=int(llm.n_vocab()),  # logit_bias token ids are checked against it
            eos_token_id=special_token_id(int(llm.token_eos())),
            bos_token_id=special_token_id(int(llm.token_bos())),
            has_own_template=bool(template),
        )
        if not template:
            log.warning("%s has no chat template in its metadata; using ChatML", name)
        self._formatter = Jinja2ChatFormatter(
            template=template or FALLBACK_CHAT_TEMPLATE,
            eos_token=self._token_text(llm.token_eos()),
            bos_token=self._token_text(llm.token_bos()),
            add_generation_prompt=True,
        )
        self.template_stops: list[str] = [] if template else list(FALLBACK_STOP)
        self._eog_ids: list[int] | None = None  # computed on the first ban_eos_token reply
        self._adapters = LlamaAdapters()  # GGUF LoRA adapters set on the context
        # each chat's KV state, so returning to a chat does not read it again (webui.engine.llama_context)
        self._states = PromptStates(prompt_cache_mb << 20)
        self._context_shift = context_shift

    @property
    def eog_ids(self) -> list[int]:
        if self._eog_ids is None:
            self._eog_ids = eog_token_ids(self._llm)
        return self._eog_ids

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self._llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore")

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self._formatter(messages=messages).prompt

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # -- inspection (see LoadedModel) -------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return [int(i) for i in self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)]

    def detokenize(self, ids: list[int]) -> str:
        return self._llm.detokenize(ids).decode("utf-8", errors="replace")

    def token_pieces(self, ids: list[int]) -> list[str]:
        return [self._llm.detokenize([i], special=True).decode("utf-8", errors="replace") for i in ids]

    def next_token_probs(self, prompt: str, k: int, params: GenerationParams | None = None,
                         hooks: DecodeHooks | None = None) -> list[TokenProb]:
        """The prompt's ids are those generate() feeds (BOS as ``add_bos_token`` says; the defaults
        without ``params``). With ``params``: generate()'s own sampler chain (``build_chain``, its
        Python stage and the extensions' processors included) applied to the logits without its final
        draw; the probabilities are the softmax over the tokens it keeps; at temperature 0, all the
        mass on the argmax. The seed does not matter (nothing is drawn)."""
        import numpy as np

        add_bos = (params or GenerationParams()).add_bos_token
        tokens = [int(i) for i in self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)]
        if not tokens:
            raise UserFacingError("Write some text first: the next token is predicted from at least one.")
        if len(tokens) >= self.info.context_length:
            raise UserFacingError(f"The text is {len(tokens)} tokens, more than the model's context "
                                  f"({self.info.context_length}); shorten it.")
        scores = self._last_logits(tokens)
        if params is not None:
            scores = self._sample_chain(prompt, tokens, scores, params, hooks)
        ids = np.flatnonzero(np.isfinite(scores))
        probs = np.exp(scores[ids] - scores[ids].max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")[:k]
        top = [int(ids[i]) for i in order]
        return [TokenProb(i, piece, float(probs[j])) for i, piece, j in zip(top, self.token_pieces(top), order)]

    def _last_logits(self, tokens: list[int]) -> Any:
        """The logits after ``tokens``, through ``load_prompt`` (the cached prefix reused, as generate()
        does); the cache is then left as a reply leaves it, the last token to decode again."""
        import llama_cpp
        import numpy as np

        load_prompt(self._llm, tokens, self._states, shift=self._context_shift)
        logits = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        scores = np.array(np.ctypeslib.as_array(logits, shape=(int(self._llm.n_vocab()),)), dtype=np.float32)
        self._llm.n_tokens -= 1  # the next load_prompt() re-decodes it (at least the last token always is)
        return scores

    def _sample_chain(self, prompt: str, tokens: list[int], scores: Any, params: GenerationParams,
                      hooks: DecodeHooks | None) -> Any:
        """``scores`` through generate()'s chain without its final draw (-inf: dropped)."""
        import ctypes

        import llama_cpp
        import numpy as np
        from llama_cpp._internals import LlamaTokenDataArray

        from webui.engine.llama_samplers import ChainInputs, build_chain

        seed = params.seed if params.seed >= 0 else 0
        extensions = llama_cpp_logits_processor(hooks, self._llm, prompt, seed)
        request = DecodeRequest(prompt_ids=tokens, params=params, seed=seed, eog_ids=self.eog_ids,
                                stop_strings=self.template_stops, processors=list(extensions or []))
        decoder = LlamaDecoder(self._llm, request, lambda text, n_tokens=1: True)
        inputs = ChainInputs(n_vocab=len(scores), n_ctx=int(self._llm.n_ctx()), vocab=self._llm._model.vocab,
                             seed=seed, prompt_ids=tokens, eog_ids=self.eog_ids,
                             prep=decoder._prep if decoder._needs_prep() else None)  # as LlamaDecoder._chain
        chain = build_chain(params, inputs, terminal=False)
        try:
            array = LlamaTokenDataArray(n_vocab=len(scores))
            array.copy_logits(np.asarray(scores, dtype=np.single))
            llama_cpp.llama_sampler_apply(chain.chain, ctypes.byref(array.candidates))
            kept = np.ctypeslib.as_array(array.candidates.data, shape=(array.candidates.size,))
            out = np.full_like(scores, -np.inf)
            out[kept["id"]] = kept["logit"]
        finally:
            chain.free()
        if params.greedy:
            best = int(np.argmax(out))
            out = np.full_like(scores, -np.inf)
            out[best] = 0.0
        return out

    def generate(
        self, prompt: str, params: GenerationParams, emit: Emit, hooks: DecodeHooks | None = None
    ) -> GenerationStats:
        seed = params.seed if params.seed >= 0 else random.randrange(2**31)
        # llama.cpp's own sampler chain for every parameter it has a sampler for; Python stages only for
        # the rest and the extensions' processors (webui.engine.llama_samplers, webui.engine.llama_decode)
        ids = list(self._llm.tokenize(prompt.encode("utf-8"), add_bos=params.add_bos_token, special=True))
        extensions = llama_cpp_logits_processor(hooks, self._llm, prompt, seed)
        request = DecodeRequest(
            prompt_ids=ids or [int(self._llm.token_bos())], params=params, seed=seed, eog_ids=self.eog_ids,
            stop_strings=self.template_stops, processors=list(extensions or []), prompt_states=self._states,
            context_shift=self._context_shift)
        stats = LlamaDecoder(self._llm, request, emit).run()
        stats.prompt_tokens = self.count_tokens(prompt)
        return stats

    def apply_adapters(self, adapters: list[tuple[Path, float]]) -> None:
        self._states.clear()  # states computed without these adapters
        self._adapters.apply(self._llm, self.path, adapters)

    def clear_adapters(self) -> None:
        self._states.clear()
        self._adapters.clear(self._llm)

    def unload(self) -> None:
        self._adapters.clear(self._llm)  # freed before the model they belong to
        self._llm.close()
        self._llm = None


LLAMA_CTX_PAD = 256  # llama.cpp rounds the context up to a multiple of this
CACHE_TYPES = {"f16": "GGML_TYPE_F16", "q8_0": "GGML_TYPE_Q8_0", "q4_0": "GGML_TYPE_Q4_0"}


def padded_n_ctx(n_ctx: int) -> int:
    """``n_ctx`` rounded up to llama.cpp's padding of the context (256). llama.cpp pads it anyway and
    reports the padded size, while llama-cpp-python sizes its token buffer to the size asked: with
    384 asked, a prompt of 384-511 tokens passed the length check against 512 and crashed in ``eval``."""
    return -(-n_ctx // LLAMA_CTX_PAD) * LLAMA_CTX_PAD if n_ctx > 0 else n_ctx


def llama_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """Normalized options -> keyword arguments of llama_cpp.Llama."""
    import llama_cpp

    kwargs: dict[str, Any] = {
        "n_ctx": padded_n_ctx(int(options["n_ctx"])),
        "n_threads": int(options["threads"]) or default_threads(),
        "n_gpu_layers": int(options["n_gpu_layers"]),
        "n_batch": int(options["n_batch"]),
        "flash_attn": bool(options["flash_attn"]),
        "use_mmap": bool(options["use_mmap"]),
        "use_mlock": bool(options["use_mlock"]),
    }
    if options["cache_type"] != "f16":
        kv_type = int(getattr(llama_cpp, CACHE_TYPES[options["cache_type"]]))
        kwargs.update(type_k=kv_type, type_v=kv_type)
    if options["tensor_split"]:
        try:
            kwargs["tensor_split"] = [float(x) for x in str(options["tensor_split"]).split(",") if x.strip()]
        except ValueError:
            raise ModelLoadError(
                f"Tensor split must be numbers separated by commas, e.g. 3,1 (got {options['tensor_split']!r})."
            ) from None
    return kwargs


class LlamaCppBackend(Backend):
    info = BackendInfo(
        name="llama.cpp",
        params=LOCAL_DECODING_PARAMS | REWIND_PARAMS,
        extension_processors=True,
        logprobs=True,  # read from the step's logits when a request asks (webui.engine.llama_decode)
        native_samplers=True,  # llama.cpp's own sampler chain (webui.engine.llama_samplers)
        prompt_cache=True,  # llama-cpp-python reuses the KV cache of the previous prompt's common prefix
        adapters=True,  # GGUF LoRA adapters (webui/engine/adapters.py), exported from PEFT on demand
    )

    def can_load(self, path: str) -> bool:
        return not is_url(path) and Path(path).suffix.lower() == ".gguf"

    def preflight(self, spec: ModelSpec) -> None:
        """Cheap checks that run before the current model is unloaded."""
        check_gguf_file(Path(spec.path))
        normalize("llama.cpp", spec.options)

    def load(self, spec: ModelSpec) -> LlamaCppModel:
        path = Path(spec.path)
        check_gguf_file(path)
        options = normalize("llama.cpp", spec.options)
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelLoadError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
        kwargs = llama_kwargs(options)
        rss_before = rss_bytes()
        try:
            llm = Llama(model_path=str(path), verbose=False, **kwargs)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {path.name}: {exc}. The file may be corrupt, or use an "
                "architecture this llama-cpp-python version does not know."
            ) from exc
        rss_delta = max(0, rss_bytes() - rss_before)
        return LlamaCppModel(llm, spec.display_name or path.stem, path, options["cache_type"], rss_delta,
                             prompt_cache_mb=int(options["prompt_cache_mb"]),
                             context_shift=bool(options["context_shift"]))
