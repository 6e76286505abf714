"""transformers backend for Hugging Face model folders (and GGUF dequantized by transformers)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from webui.engine.memory import model_bytes, rss_bytes
from webui.engine.options import cuda_available, normalize
from webui.engine.protocol import Backend, BackendInfo, Emit, GenerationStats, LoadedModel, ModelInfo, ModelSpec, is_url
from webui.engine.quantization import (
    build_quantization_config,
    check_prequantized,
    detect_prequantized,
    quantization_needs,
)
from webui.errors import ModelLoadError
from webui.generation.decode import DecodeHooks, transformers_decode_kwargs
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE
from webui.generation.params import LOCAL_DECODING_PARAMS, GenerationParams
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

    def __init__(self, tokenizer: Any, emit: Emit) -> None:
        self._tok = tokenizer
        self._emit = emit
        self._ids: list[int] = []
        self._printed = 0
        self._seen_prompt = False
        self.keep_going = True
        self.new_tokens = 0

    def put(self, value: Any) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        ids = value.reshape(-1).tolist()
        self.new_tokens += len(ids)
        self._ids.extend(ids)
        text = self._tok.decode(self._ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return
        delta = text[self._printed :]
        if text.endswith("\n"):
            self._ids, self._printed = [], 0
        else:
            self._printed = len(text)
        if delta:
            self.keep_going = self._emit(delta, len(ids)) and self.keep_going
        elif not self._emit("", len(ids)):
            self.keep_going = False

    def end(self) -> None:
        text = self._tok.decode(self._ids, skip_special_tokens=True)
        if text[self._printed :]:
            self._emit(text[self._printed :], 0)


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
        )

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return self._tok.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=True,
            chat_template=None if self.info.has_own_template else FALLBACK_CHAT_TEMPLATE,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, prompt: str, params: GenerationParams, emit: Emit, hooks: DecodeHooks | None = None
    ) -> GenerationStats:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, set_seed

        inputs = self._tok(prompt, return_tensors="pt", add_special_tokens=False).to(self._model.device)
        inputs, hook_kwargs = transformers_decode_kwargs(hooks, self._tok, prompt, inputs, params.seed)
        prompt_len = int(inputs["input_ids"].shape[1])
        streamer = _EmitStreamer(self._tok, emit)

        class StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), not streamer.keep_going, dtype=torch.bool)

        if params.seed >= 0:
            set_seed(params.seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": not params.greedy,
            **self._penalty_kwargs(params),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([StopWhenAsked()]),
            "pad_token_id": self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id,
        }
        if not params.greedy:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
            if params.min_p > 0:
                kwargs["min_p"] = params.min_p
            if params.typical_p < 1:
                kwargs["typical_p"] = params.typical_p
        # presence/frequency and the ranged repetition penalty (webui.generation.penalties): after
        # transformers' own processors, ahead of the extensions' (the llama.cpp backend's order too)
        ours = TorchPenalties(PenaltyConfig(
            repetition_penalty=params.repetition_penalty if params.repetition_penalty_range > 0 else 1.0,
            repetition_range=params.repetition_penalty_range,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
        ))
        if ours.config.active:
            from transformers import LogitsProcessorList

            hook_kwargs["logits_processor"] = LogitsProcessorList([ours, *hook_kwargs.get("logits_processor", [])])
        kwargs.update(hook_kwargs)  # extension samplers / logits processors
        if params.logit_bias:  # OpenAI logit_bias: added to the logits before sampling
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [*kwargs.get("logits_processor", []), LogitBias(params.logit_bias)]
            )
        with torch.inference_mode():
            out = self._model.generate(**inputs, **kwargs)
        n_new = int(out.shape[1]) - prompt_len
        reason = "length" if n_new >= params.max_new_tokens else "stop"
        return GenerationStats(prompt_tokens=prompt_len, completion_tokens=n_new, finish_reason=reason)

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
        if params.ban_eos_token:  # SuppressTokensLogitsProcessor: -inf, so only max_new_tokens ends the reply
            own = list(self._model.generation_config.suppress_tokens or [])
            out["suppress_tokens"] = sorted({*own, *self.eos_ids()})
        return out

    def unload(self) -> None:
        import gc

        self._model = None
        gc.collect()


class TransformersBackend(Backend):
    info = BackendInfo(
        name="transformers",
        params=LOCAL_DECODING_PARAMS,
        extension_processors=True,
        token_hooks=True,
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
