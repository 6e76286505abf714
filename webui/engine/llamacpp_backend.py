"""llama.cpp backend (llama-cpp-python) for .gguf files."""

from __future__ import annotations

import logging
import os
import random
import struct
from pathlib import Path
from typing import Any

from webui.engine.memory import rss_bytes
from webui.engine.options import normalize
from webui.engine.protocol import Backend, BackendInfo, Emit, GenerationStats, LoadedModel, ModelInfo, ModelSpec, is_url
from webui.errors import ModelLoadError
from webui.generation.decode import DecodeHooks, llama_cpp_logits_processor
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE, FALLBACK_STOP
from webui.generation.params import LOCAL_DECODING_PARAMS, GenerationParams
from webui.generation.penalties import PenaltyConfig, numpy_processor

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

    def __init__(self, llm: Any, name: str, path: Path, cache_type: str = "f16", rss_delta_bytes: int = 0) -> None:
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

    def generate(
        self, prompt: str, params: GenerationParams, emit: Emit, hooks: DecodeHooks | None = None
    ) -> GenerationStats:
        seed = params.seed if params.seed >= 0 else random.randrange(2**31)
        stats = GenerationStats(prompt_tokens=self.count_tokens(prompt))
        # repetition / presence / frequency penalties, no_repeat_ngram_size and ban EOS run in our
        # own processor (webui.generation.penalties), so they mean the same as on transformers;
        # llama.cpp's own penalties are turned off (they would only see the last 64 reply tokens).
        penalties = numpy_processor(PenaltyConfig.from_params(params, self.eog_ids if params.ban_eos_token else ()))
        extensions = llama_cpp_logits_processor(hooks, self._llm, prompt, seed)
        processors = with_processors([penalties] if penalties else [], extensions)
        stream = self._llm.create_completion(
            prompt,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            typical_p=params.typical_p,
            repeat_penalty=1.0,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            seed=seed,
            stop=self.template_stops or None,
            stream=True,
            logits_processor=with_logit_bias(processors, params.logit_bias),
        )
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                if choice.get("finish_reason"):
                    stats.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
                if choice["text"] and not emit(choice["text"]):
                    break
        finally:
            stream.close()
        return stats

    def unload(self) -> None:
        self._llm.close()
        self._llm = None


CACHE_TYPES = {"f16": "GGML_TYPE_F16", "q8_0": "GGML_TYPE_Q8_0", "q4_0": "GGML_TYPE_Q4_0"}


def llama_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """Normalized options -> keyword arguments of llama_cpp.Llama."""
    import llama_cpp

    kwargs: dict[str, Any] = {
        "n_ctx": int(options["n_ctx"]),
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
        params=LOCAL_DECODING_PARAMS,
        extension_processors=True,
        prompt_cache=True,  # llama-cpp-python reuses the KV cache of the previous prompt's common prefix
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
        return LlamaCppModel(llm, spec.display_name or path.stem, path, options["cache_type"], rss_delta)
