"""transformers backend for Hugging Face model folders (and GGUF dequantized by transformers)."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from webui.engine.adapters import PeftAdapters
from webui.engine.hf_prompt_cache import PromptCache, cache_kwarg
from webui.engine.memory import model_bytes, rss_bytes
from webui.engine.options import cuda_available, normalize
from webui.engine.protocol import (
    Backend,
    BackendInfo,
    Emit,
    GenerationStats,
    LoadedModel,
    ModelInfo,
    ModelSpec,
    TokenLogprob,
    TokenProb,
    is_url,
    special_token_id,
)
from webui.engine.quantization import (
    build_quantization_config,
    check_prequantized,
    detect_prequantized,
    quantization_needs,
)
from webui.errors import ModelLoadError, UserFacingError
from webui.generation.decode import DecodeHooks, transformers_decode_kwargs
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE
from webui.generation.hf_samplers import LogprobRecorder, penalty_kwargs, sampling_kwargs, with_bos
from webui.generation.params import GUIDANCE_PARAMS, LOCAL_DECODING_PARAMS, GenerationParams
from webui.generation.penalties import PenaltyConfig, TorchPenalties

log = logging.getLogger(__name__)


def check_model_folder(path: Path) -> None:
    """Fail early with a clear message when a folder is not a loadable HF model."""
    if not path.is_dir():
        raise ModelLoadError(f"Model folder not found: {path}. Pass --model with an existing folder or .gguf file.")
    config = path / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"{path} has no config.json, so it is not a Hugging Face model folder.")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config} is not valid JSON ({exc}); the model folder may be corrupt.") from exc


class _EmitStreamer:
    """A transformers streamer that turns new token ids into text deltas for ``emit``.

    Decodes from the last newline on (as TextStreamer does) so each step stays cheap, and
    holds back a trailing partial UTF-8 character.
    """

    def __init__(self, tokenizer: Any, emit: Emit, recorder: LogprobRecorder | None = None,
                 skip_special: bool = True, eos_ids: frozenset[int] = frozenset()) -> None:
        self._tok = tokenizer
        self._emit = emit
        self._ids: list[int] = []
        self._printed = 0
        self._seen_prompt = False
        self.keep_going = True
        self.new_tokens = 0
        self._recorder = recorder  # the tokens' log-probabilities, when asked for
        self._skip_special = skip_special
        self._eos = eos_ids
        self._logprobs: list[TokenLogprob] = []

    def _send(self, text: str, n: int) -> bool:
        lps, self._logprobs = self._logprobs, []
        return self._emit(text, n, logprobs=lps) if lps else self._emit(text, n)

    def put(self, value: Any) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        ids = value.reshape(-1).tolist()
        self.new_tokens += len(ids)
        self._ids.extend(ids)
        if self._recorder is not None:
            recorded = [self._recorder.take(t) for t in ids if t not in self._eos]
            self._logprobs += [lp for lp in recorded if lp is not None]
        text = self._tok.decode(self._ids, skip_special_tokens=self._skip_special)
        if text.endswith("\ufffd"):
            return
        delta = text[self._printed :]
        if text.endswith("\n"):
            self._ids, self._printed = [], 0
        else:
            self._printed = len(text)
        if delta:
            self.keep_going = self._send(delta, len(ids)) and self.keep_going
        elif not self._send("", len(ids)):
            self.keep_going = False

    def end(self) -> None:
        text = self._tok.decode(self._ids, skip_special_tokens=self._skip_special)
        if text[self._printed :] or self._logprobs:
            self._send(text[self._printed :], 0)


class LogitBias:
    """A logits processor adding a fixed value to some tokens' logits (OpenAI ``logit_bias``)."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.ids = list(bias)
        self.values = [bias[i] for i in self.ids]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores[:, self.ids] += torch.tensor(self.values, dtype=scores.dtype, device=scores.device)
        return scores


class TransformersModel(LoadedModel):
    # encoding without truncation or padding changes nothing in the tokenizer (a fast tokenizer's Rust
    # object is only borrowed to read, by a generation's own encode too)
    counts_off_worker = True

    def __init__(self, model: Any, tokenizer: Any, name: str, rss_delta_bytes: int = 0) -> None:
        self._model = model
        self._tok = tokenizer
        cfg = model.config  # transformers' config and tokenizer lack some fields on some models
        self.info = ModelInfo(
            name=name,
            loader=TransformersBackend.info.name,
            context_length=int(getattr(cfg, "max_position_embeddings", 0) or 2048),
            footprint_bytes=model_bytes(model),
            rss_delta_bytes=rss_delta_bytes,
            vocab_size=int(getattr(cfg, "vocab_size", 0) or len(tokenizer)),  # logit_bias ids are checked against it
            has_own_template=bool(getattr(tokenizer, "chat_template", None)),
            eos_token_id=special_token_id(tokenizer.eos_token_id),
            bos_token_id=special_token_id(tokenizer.bos_token_id),
        )
        self._adapters = PeftAdapters()  # LoRA adapters peft injects into self._model in place
        self.prompt_cache = PromptCache()  # the last request's KV cache (webui/engine/hf_prompt_cache.py)
        self._cache_kwarg = cache_kwarg(model)

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self._tok.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=True,
            chat_template=None if self.info.has_own_template else FALLBACK_CHAT_TEMPLATE,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    # -- inspection (see LoadedModel) -------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return [int(i) for i in self._tok(text, add_special_tokens=False)["input_ids"]]

    def detokenize(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)

    def token_pieces(self, ids: list[int]) -> list[str]:
        return [self._tok.decode([i]) for i in ids]

    def next_token_probs(self, prompt: str, k: int, params: GenerationParams | None = None,
                         hooks: DecodeHooks | None = None) -> list[TokenProb]:
        """The prompt's ids are those generate() feeds (BOS as ``add_bos_token`` says; the defaults
        without ``params``). With ``params``: the scores transformers samples from when generate() runs
        with them (``output_scores`` of a one-token generate() with generate()'s own processors and
        warpers, extensions' and tokenizer_modifier included); at temperature 0, all the mass on the
        argmax. The seed does not matter."""
        import torch

        inputs, kwargs = self._generate_call(prompt, params or GenerationParams(), hooks if params else None)
        n = int(inputs["input_ids"].shape[1])
        if n == 0:
            raise UserFacingError("Write some text first: the next token is predicted from at least one.")
        if n >= self.info.context_length:
            raise UserFacingError(f"The text is {n} tokens, more than the model's context "
                                  f"({self.info.context_length}); shorten it.")
        with torch.inference_mode():
            if params is None:
                logits = self._model(**inputs).logits[0, -1].float()
            else:
                kwargs.update(max_new_tokens=1, output_scores=True, return_dict_in_generate=True, streamer=None)
                logits = self._model.generate(**inputs, **kwargs).scores[0][0].float()
            probs = torch.softmax(logits, dim=-1)
            if params is not None and params.greedy:
                probs = torch.nn.functional.one_hot(probs.argmax(), probs.shape[-1]).float()
            top = torch.topk(probs, min(k, int(probs.shape[-1])))
        ids = [int(i) for i in top.indices]
        return [TokenProb(i, piece, float(p)) for i, piece, p in zip(ids, self.token_pieces(ids), top.values)]

    def _generate_call(self, prompt: str, params: GenerationParams, hooks: DecodeHooks | None) -> tuple[dict, dict]:
        """(inputs, keyword arguments) that generate() passes to transformers' generate for ``prompt``,
        caught before anything is decoded: the inspection reuses them rather than rebuilding them."""
        model, seen = self._model, {}

        class Caught(Exception):
            pass

        def catch(**kwargs: Any) -> None:
            seen.update(kwargs)
            raise Caught

        if "logprobs" in GenerationParams.model_fields:
            params = params.model_copy(update={"logprobs": None})
        model.generate = catch  # this instance only, on the worker thread, for this one call
        try:  # without the prompt cache: an inspection leaves it as it was
            self._generate(prompt, params, lambda text, n_tokens=1: True, hooks, reuse_cache=False)
        except Caught:
            pass
        finally:
            del model.generate
        if "input_ids" not in seen:
            raise UserFacingError("This model's generation cannot be inspected.")
        inputs = {key: seen.pop(key) for key in ("input_ids", "attention_mask", "inputs_embeds") if key in seen}
        return inputs, seen

    def generate(
        self, prompt: str, params: GenerationParams, emit: Emit, hooks: DecodeHooks | None = None
    ) -> GenerationStats:
        return self._generate(prompt, params, emit, hooks, reuse_cache=True)

    def _generate(self, prompt: str, params: GenerationParams, emit: Emit, hooks: DecodeHooks | None,
                  reuse_cache: bool) -> GenerationStats:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, set_seed

        inputs = self._tok(prompt, return_tensors="pt", add_special_tokens=False).to(self._model.device)
        inputs = with_bos(self._tok, inputs, params.add_bos_token)
        inputs, hook_kwargs = transformers_decode_kwargs(hooks, self._tok, prompt, inputs, params.seed)
        prompt_len = int(inputs["input_ids"].shape[1])
        recorder = (LogprobRecorder(self._tok, params.logprobs, params.skip_special_tokens)
                    if params.logprobs is not None else None)
        streamer = _EmitStreamer(self._tok, emit, recorder, params.skip_special_tokens, frozenset(self.eos_ids()))

        class StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), not streamer.keep_going, dtype=torch.bool)

        if params.seed >= 0:
            set_seed(params.seed)
        # transformers' own processors where it has them, ours for the rest (webui.generation.hf_samplers)
        sampling, warpers = sampling_kwargs(params, params.seed if params.seed >= 0 else None)
        negative = None
        if params.guidance_scale != 1.0 and params.negative_prompt:
            negative = self._tok(params.negative_prompt, return_tensors="pt",
                                 add_special_tokens=False)["input_ids"].to(self._model.device)
        extra, extra_processors = penalty_kwargs(params, self._tok, negative)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            **self._penalty_kwargs(params),
            **sampling,
            **extra,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([StopWhenAsked()]),
            "pad_token_id": self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id,
        }
        # presence/frequency and the ranged repetition penalty (webui.generation.penalties): after
        # transformers' own processors, ahead of DRY and the extensions' (the llama.cpp backend's order too)
        ours = TorchPenalties(PenaltyConfig(
            repetition_penalty=params.repetition_penalty if params.repetition_penalty_range > 0 else 1.0,
            repetition_range=params.repetition_penalty_range,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
        ))
        processors = [*([ours] if ours.config.active else []), *extra_processors,
                      *hook_kwargs.pop("logits_processor", [])]
        if params.logit_bias:  # OpenAI logit_bias: added to the logits before sampling
            processors.append(LogitBias(params.logit_bias))
        processors += warpers
        kwargs.update(hook_kwargs)  # tokenizer_modifier's embeddings
        if processors:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(processors)
        # the last request's KV cache where this prompt starts the same way (not for a prompt given as
        # embeddings: the cache is keyed by token ids)
        reuse = (self.prompt_cache.take(self._model, inputs["input_ids"][0].tolist())
                 if reuse_cache and "inputs_embeds" not in inputs else None)
        if reuse is not None:
            kwargs[self._cache_kwarg] = reuse.cache
        with torch.inference_mode(), (recorder.attached(self._model) if recorder else nullcontext()):
            out = self._model.generate(**inputs, **kwargs)
        if reuse is not None:
            self.prompt_cache.keep(reuse.cache, out[0].tolist())
        n_new = int(out.shape[1]) - prompt_len
        reason = "length" if n_new >= params.max_new_tokens else "stop"
        return GenerationStats(prompt_tokens=prompt_len, completion_tokens=n_new, finish_reason=reason,
                               cached_tokens=reuse.reused if reuse is not None else 0)

    def eos_ids(self) -> list[int]:
        """The tokens generate() stops on: the generation config's eos ids and the tokenizer's."""
        ids = self._model.generation_config.eos_token_id
        ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
        if self._tok.eos_token_id is not None:
            ids.append(self._tok.eos_token_id)
        return sorted({int(i) for i in ids})

    def _penalty_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        """transformers' own processors for what they cover (always passed, so the model's
        generation_config defaults never apply behind the UI's back)."""
        out: dict[str, Any] = {
            # with a range, TorchPenalties applies it to the last N tokens instead
            "repetition_penalty": params.repetition_penalty if params.repetition_penalty_range == 0 else 1.0,
            "no_repeat_ngram_size": params.no_repeat_ngram_size,
        }
        if params.ban_eos_token or params.custom_token_bans:  # SuppressTokensLogitsProcessor: -inf
            own = list(self._model.generation_config.suppress_tokens or [])
            eos = self.eos_ids() if params.ban_eos_token else []  # then only max_new_tokens ends the reply
            out["suppress_tokens"] = sorted({*own, *eos, *params.custom_token_bans})
        return out

    def apply_adapters(self, adapters: list[tuple[Path, float]]) -> None:
        self.prompt_cache.clear()  # computed with other weights
        self._adapters.apply(self._model, adapters)

    def clear_adapters(self) -> None:
        self.prompt_cache.clear()
        self._adapters.clear()

    def unload(self) -> None:
        import gc

        self._adapters = PeftAdapters()
        self.prompt_cache.clear()
        self._model = None
        gc.collect()


class TransformersBackend(Backend):
    info = BackendInfo(
        name="transformers",
        params=LOCAL_DECODING_PARAMS | GUIDANCE_PARAMS,
        logprobs=True,  # from generate()'s scores when a request asks (webui.generation.hf_samplers)
        adapters=True,  # LoRA adapters through peft (webui/engine/adapters.py)
        extension_processors=True,
        token_hooks=True,
        prompt_cache=True,  # the last request's KV cache, reused for a common prefix (webui/engine/hf_prompt_cache.py)
    )

    def can_load(self, path: str) -> bool:
        """Any local path: a model folder, or a GGUF it dequantizes when llama.cpp is not chosen (a
        missing folder then fails preflight with a message that says so)."""
        return not is_url(path)

    def preflight(self, spec: ModelSpec) -> None:
        """Cheap checks that run before the current model is unloaded."""
        options = normalize("transformers", spec.options)
        path = Path(spec.path)
        if path.suffix.lower() == ".gguf":
            from webui.engine.llamacpp_backend import check_gguf_file

            check_gguf_file(path)
            if options["quantization"] != "none":
                raise ModelLoadError(
                    "transformers dequantizes a GGUF file as it loads it, so a quantization cannot be applied on "
                    "top: choose quantization none, or load the GGUF with llama.cpp."
                )
            return
        check_model_folder(path)
        pq = detect_prequantized(path)
        if pq is not None:
            if options["quantization"] != "none":
                raise ModelLoadError(
                    f"This checkpoint is already quantized ({pq.label}); set quantization to none to load it as it is."
                )
            check_prequantized(pq, cuda=cuda_available())
        quantization_needs(options)

    def load(self, spec: ModelSpec) -> TransformersModel:
        self.preflight(spec)
        options = normalize("transformers", spec.options)
        path = Path(spec.path)
        gguf_kwargs: dict[str, Any] = {}
        if path.suffix.lower() == ".gguf":
            gguf_kwargs = {"gguf_file": path.name}
            folder = path.parent
        else:
            folder = path
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover
            raise ModelLoadError("transformers/torch are not installed: pip install -r requirements.txt") from exc
        dtype_name = options["dtype"]
        dtype: Any = "auto" if dtype_name == "auto" else getattr(torch, dtype_name)
        if gguf_kwargs and dtype == "auto":
            dtype = torch.float32
        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": options["trust_remote_code"], **gguf_kwargs}
        kwargs.update(device_kwargs(options, cuda_available()))
        if options["attn_implementation"] != "auto":
            kwargs["attn_implementation"] = options["attn_implementation"]
        qconfig = build_quantization_config(options)
        if qconfig is not None:
            kwargs["quantization_config"] = qconfig
        rss_before = rss_bytes()
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=options["trust_remote_code"], **gguf_kwargs
            )
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        except ImportError as exc:
            raise ModelLoadError(f"A package this model needs is missing: {exc}") from exc
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, NotImplementedError) as exc:
            raise ModelLoadError(f"transformers could not load {path.name}: {_first_line(exc)}") from exc
        model.eval()
        if options["compile"]:
            # With a static KV cache, generate() compiles the decode step with torch.compile on CUDA.
            model.generation_config.cache_implementation = "static"
        rss_delta = max(0, rss_bytes() - rss_before)
        return TransformersModel(model, tokenizer, spec.display_name or path.stem, rss_delta)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def device_kwargs(options: dict[str, Any], cuda: bool) -> dict[str, Any]:
    """device_map / max_memory for from_pretrained (nothing on a CPU-only machine: plain CPU load)."""
    choice = options["device_map"]
    if not cuda or choice == "cpu":
        return {}
    if choice == "cuda":
        return {"device_map": {"": 0}}
    out: dict[str, Any] = {"device_map": "auto"}
    max_memory: dict[Any, str] = {}
    gpus = [m.strip() for m in str(options.get("max_memory_gpu") or "").split(",") if m.strip()]
    for index, amount in enumerate(gpus):
        max_memory[index] = amount
    if options.get("max_memory_cpu"):
        max_memory["cpu"] = str(options["max_memory_cpu"]).strip()
    if max_memory:
        out["max_memory"] = max_memory
    return out
