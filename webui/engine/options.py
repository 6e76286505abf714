"""Which load option applies to which loader and quantizer, declared as data.

The Model tab renders its controls from ``OPTIONS`` and shows only those that apply to the
chosen loader (and quantization); the model-loading settings (flags, WEBUI_* variables,
settings.yaml keys) are generated from the same table, and the backends validate a spec against it
before anything is unloaded. A new option is one entry here plus the line in its backend that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from webui.engine.registry import loader_names
from webui.errors import ModelLoadError
from webui.setting_meta import Setting, format_default

Kind = Literal["choice", "bool", "int", "float", "text", "secret"]

QUANTIZATIONS = ("none", "bnb-8bit", "bnb-4bit", "torchao-int8", "quanto-int8")
BNB = ("bnb-8bit", "bnb-4bit")


@dataclass(frozen=True)
class Option:
    name: str
    label: str
    kind: Kind
    default: Any
    loaders: tuple[str, ...]
    help: str = ""
    choices: tuple[str, ...] = ()
    quantizations: tuple[str, ...] | None = None  # None: whatever the quantization
    minimum: float | None = None
    cuda_only: bool = False  # refused on a machine without CUDA when set to a non-default value

    def applies(self, loader: str, quantization: str = "none") -> bool:
        if loader not in self.loaders:
            return False
        return self.quantizations is None or quantization in self.quantizations


TF = ("transformers",)
LCPP = ("llama.cpp",)
REMOTE = ("remote",)

OPTIONS: tuple[Option, ...] = (
    # -- transformers -------------------------------------------------------------------------
    Option("dtype", "dtype", "choice", "auto", TF, "Weight dtype; auto keeps the checkpoint's (fp32 for GGUF).",
           choices=("auto", "float32", "float16", "bfloat16")),
    Option("quantization", "Quantization", "choice", "none", TF,
           "Quantize on load. bitsandbytes, torchao int8 and quanto int8 all run on CPU.", choices=QUANTIZATIONS),
    Option("fp32_cpu_offload", "fp32 CPU offload (8-bit)", "bool", False, TF,
           "Keep layers that do not fit the GPU on the CPU in fp32 (needs a CUDA GPU and a device map).",
           quantizations=("bnb-8bit",), cuda_only=True),
    Option("quant_type", "4-bit type", "choice", "nf4", TF, "NormalFloat4 (nf4) or FP4.", choices=("nf4", "fp4"),
           quantizations=("bnb-4bit",)),
    Option("use_double_quant", "Double quantization", "bool", False, TF,
           "Quantize the quantization constants too (saves ~0.4 bit per weight).", quantizations=("bnb-4bit",)),
    Option("compute_dtype", "Compute dtype", "choice", "float32", TF, "dtype of the 4-bit matmuls.",
           choices=("float32", "float16", "bfloat16"), quantizations=("bnb-4bit",)),
    Option("device_map", "Device map", "choice", "auto", TF,
           "Where weights go: auto (GPUs first, then CPU, within the memory limits; CPU when there is no GPU), "
           "cpu, or cuda (all on the first GPU).", choices=("auto", "cpu", "cuda"), cuda_only=True),
    Option("max_memory_gpu", "Max memory per GPU", "text", "", TF,
           "With device map auto: e.g. '20GiB' or '20GiB,20GiB' (one per GPU); the rest is offloaded.", cuda_only=True),
    Option("max_memory_cpu", "Max CPU memory", "text", "", TF, "With device map auto: e.g. '48GiB'.", cuda_only=True),
    Option("attn_implementation", "Attention", "choice", "auto", TF,
           "auto, eager, sdpa, or flash_attention_2 (CUDA and the flash-attn package).",
           choices=("auto", "eager", "sdpa", "flash_attention_2")),
    Option("compile", "Static cache + torch.compile", "bool", False, TF,
           "Faster decoding on a GPU after a slow first reply (cache_implementation='static' + torch.compile).",
           cuda_only=True),
    Option("trust_remote_code", "Trust remote code", "bool", False, TF,
           "Run Python code shipped with the model. Only for models whose authors you trust."),
    # -- llama.cpp ----------------------------------------------------------------------------
    Option("n_ctx", "Context size", "int", 4096, LCPP, "Tokens of context (0: the model's own).", minimum=0),
    Option("n_gpu_layers", "GPU layers", "int", 0, LCPP, "Layers offloaded to the GPU (-1: all). Needs a GPU build.",
           minimum=-1, cuda_only=True),
    Option("threads", "Threads", "int", 0, LCPP, "CPU threads (0: automatic).", minimum=0),
    Option("n_batch", "Batch size", "int", 512, LCPP, "Prompt tokens processed per step.", minimum=1),
    Option("flash_attn", "Flash attention", "bool", False, LCPP,
           "llama.cpp's flash attention. Off by default: on CPU (bench/prefill.py) it read prompts ~10% faster but "
           "decoded ~2x slower; on a GPU it usually helps."),
    Option("cache_type", "KV cache type", "choice", "f16", LCPP,
           "Quantize the KV cache to save memory; q8_0/q4_0 need flash attention.", choices=("f16", "q8_0", "q4_0")),
    Option("use_mmap", "mmap", "bool", True, LCPP, "Map the file instead of reading it into memory."),
    Option("prompt_cache_mb", "Prompt cache (MiB)", "int", 1024, LCPP,
           "RAM for each chat's saved KV state, so switching chats (or API clients) does not read them again; "
           "least recently used first out (0: off).", minimum=0),
    Option("context_shift", "Context shift", "bool", True, LCPP,
           "When a chat outgrows the context, drop its oldest turns from the KV cache and move the rest back "
           "instead of reading it all again (close to, not exactly, a fresh read)."),
    Option("use_mlock", "mlock", "bool", False, LCPP, "Lock the model in RAM so it is never swapped out."),
    Option("tensor_split", "Tensor split", "text", "", LCPP, "Share of the model per GPU, e.g. '3,1'.", cuda_only=True),
    # -- remote (OpenAI-compatible server) ----------------------------------------------------
    Option("remote_api_key", "API key", "secret", "", REMOTE, "Sent as a Bearer token; not saved to disk."),
    Option("remote_model", "Model name", "text", "", REMOTE, "The server's model id (empty: its first model)."),
    Option("context_length", "Context length", "int", 8192, REMOTE, "The remote model's context window.", minimum=256),
    Option("timeout", "Timeout (s)", "float", 120.0, REMOTE, "Seconds to wait for the server.", minimum=1),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
NOT_SAVED = frozenset({"remote_api_key"})


def options_for(loader: str, quantization: str = "none") -> list[Option]:
    """The options that apply to ``loader`` (and, for transformers, the chosen quantization)."""
    return [o for o in OPTIONS if o.applies(loader, quantization)]


def cuda_available() -> bool:
    """True when torch sees a CUDA device (False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _coerce(option: Option, value: Any) -> Any:
    try:
        if option.kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if option.kind == "int":
            number: int | float = int(value)
        elif option.kind == "float":
            number = float(value)
        else:
            text = "" if value is None else str(value).strip()
            if option.kind == "choice" and text not in option.choices:
                raise ModelLoadError(f"Unknown {option.label} {text!r}; choose one of {', '.join(option.choices)}.")
            return text
    except (TypeError, ValueError):
        raise ModelLoadError(f"{option.label}: {value!r} is not a {option.kind} number.") from None
    if option.minimum is not None and number < option.minimum:
        raise ModelLoadError(f"{option.label} must be at least {option.minimum:g} (got {number}).")
    return number


def _is_gpu_value(option: Option, value: Any) -> bool:
    if option.name == "device_map":
        return value == "cuda"
    if option.name == "n_gpu_layers":
        return value != 0
    return bool(value) and value != option.default


def normalize(loader: str, options: Mapping[str, Any], *, gpu: bool | None = None) -> dict[str, Any]:
    """Validate ``options`` for ``loader``: coerce types, fill defaults, refuse what cannot work here.

    Options that belong to another loader are dropped (a saved set may hold both kinds). ``gpu``
    says whether CUDA-only values are possible (None: ask torch / llama.cpp).
    """
    if loader not in loader_names():
        raise ModelLoadError(f"Unknown loader {loader!r}; choose one of: {', '.join(loader_names())}.")
    unknown = sorted(set(options) - set(BY_NAME))
    if unknown:
        raise ModelLoadError(f"Unknown model option(s): {', '.join(unknown)}.")
    quant = str(options.get("quantization") or "none")
    out: dict[str, Any] = {}
    for option in OPTIONS:
        if loader not in option.loaders:
            continue
        value = options.get(option.name)
        value = option.default if value is None or (value == "" and option.kind not in ("text", "secret")) else value
        value = _coerce(option, value)
        if not option.applies(loader, quant):
            continue
        if option.cuda_only and _is_gpu_value(option, value):
            has_gpu = gpu if gpu is not None else _gpu_for(loader)
            if not has_gpu:
                raise ModelLoadError(_cuda_message(option, loader))
        out[option.name] = value
    if loader == "transformers":
        _check_transformers(out, gpu)
    if loader == "llama.cpp" and out["cache_type"] != "f16" and not out["flash_attn"]:
        raise ModelLoadError("A quantized KV cache (q8_0/q4_0) needs flash attention: tick Flash attention.")
    return out


def _gpu_for(loader: str) -> bool:
    if loader == "llama.cpp":
        try:
            import llama_cpp
        except ImportError:
            return False
        return bool(llama_cpp.llama_supports_gpu_offload())
    return cuda_available()


def _cuda_message(option: Option, loader: str) -> str:
    if loader == "llama.cpp":
        return (
            f"{option.label} needs a GPU build of llama-cpp-python, and this one is CPU-only. "
            "Set it back to its default, or reinstall llama-cpp-python with CUDA (CMAKE_ARGS=-DGGML_CUDA=on)."
        )
    return f"{option.label} needs a CUDA GPU, and none is available on this machine. Leave it at its default on CPU."


def _check_transformers(out: dict[str, Any], gpu: bool | None) -> None:
    if out.get("attn_implementation") == "flash_attention_2":
        if not (gpu if gpu is not None else cuda_available()):
            raise ModelLoadError("flash_attention_2 needs a CUDA GPU; on CPU choose sdpa or eager.")
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise ModelLoadError("flash_attention_2 needs the flash-attn package: pip install flash-attn")
    if out.get("trust_remote_code"):
        import logging

        logging.getLogger(__name__).warning("trust_remote_code is on: the model's own Python code will run")


def defaults(loader: str) -> dict[str, Any]:
    return {o.name: o.default for o in OPTIONS if loader in o.loaders}


def saved_view(options: Mapping[str, Any]) -> dict[str, Any]:
    """What is written to the per-model settings file (secrets left out)."""
    return {k: v for k, v in options.items() if k not in NOT_SAVED}


# -- settings and command-line flags -------------------------------------------------------------
# Options that are also settings: webui/config.py makes each a Settings field, hence a flag
# (--n-ctx), an environment variable (WEBUI_N_CTX) and a settings.yaml key (n_ctx). Their value
# None means "not given", so the model's saved value (then the option's default) applies.
FLAG_OPTIONS = (
    "dtype", "quant_type", "compute_dtype", "use_double_quant", "device_map", "attn_implementation",
    "trust_remote_code", "compile", "n_gpu_layers", "n_ctx", "threads", "n_batch", "flash_attn", "cache_type",
    "use_mlock", "prompt_cache_mb", "tensor_split", "remote_api_key", "remote_model",
)
QUANTIZATION_ALIASES = {"torchao": "torchao-int8", "quanto": "quanto-int8", "none": "none"}
QUANTIZATION_FLAG_CHOICES = ("none", "torchao", "quanto", "torchao-int8", "quanto-int8", "bnb-8bit", "bnb-4bit")
MODEL_FLAG_GROUP = "model loading (see docs/models.md)"
_KIND_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float}


def _option_setting(option: Option) -> tuple[Any, Setting]:
    """A load option as a setting: same help (prefixed with its loaders), choices and shown default."""
    kind = _KIND_TYPES.get(option.kind, str)
    setting = Setting(
        f"{'/'.join(option.loaders)}: {option.help}",
        action="store_true" if option.kind == "bool" else "store",
        choices=option.choices,
        group=MODEL_FLAG_GROUP,
        doc_default=format_default(option.default),
    )
    return kind | None, setting


def model_settings() -> dict[str, tuple[Any, Setting]]:
    """The model-loading settings, in flag order: ``{name: (type, Setting)}``.

    Besides ``FLAG_OPTIONS`` there are the shorthand flags: ``--load-in-8bit``/``--load-in-4bit``
    (quantization bnb-8bit/bnb-4bit), ``--quantization`` with its short aliases, ``--no-mmap`` and
    ``--no-context-shift``.
    """
    quant, mmap, shift = BY_NAME["quantization"], BY_NAME["use_mmap"], BY_NAME["context_shift"]
    return {
        "load_in_8bit": (bool | None, Setting("bitsandbytes 8-bit (transformers)", action="store_true",
                                              group=MODEL_FLAG_GROUP, doc_default=format_default(False))),
        "load_in_4bit": (bool | None, Setting("bitsandbytes 4-bit (transformers)", action="store_true",
                                              group=MODEL_FLAG_GROUP, doc_default=format_default(False))),
        "quantization": (str | None, Setting("torchao or quanto int8 (transformers)", choices=QUANTIZATION_FLAG_CHOICES,
                                             group=MODEL_FLAG_GROUP, doc_default=format_default(quant.default))),
        "use_mmap": (bool | None, Setting("llama.cpp: read, not map", flag="--no-mmap", action="store_false",
                                          group=MODEL_FLAG_GROUP, doc_default=format_default(mmap.default))),
        "context_shift": (bool | None, Setting("llama.cpp: read a chat that outgrew the context again instead of "
                                               "shifting its KV cache (exact, slower)", flag="--no-context-shift",
                                               action="store_false", group=MODEL_FLAG_GROUP,
                                               doc_default=format_default(shift.default))),
        **{name: _option_setting(BY_NAME[name]) for name in FLAG_OPTIONS},
    }


def flag_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The model-flag values from parsed args or Settings (None = not given), as ModelSpec options."""
    out = {name: values[name] for name in (*FLAG_OPTIONS, "use_mmap", "context_shift") if values.get(name) is not None}
    quant = values.get("quantization")
    if values.get("load_in_4bit"):
        out["quantization"] = "bnb-4bit"
    elif values.get("load_in_8bit"):
        out["quantization"] = "bnb-8bit"
    elif quant:
        out["quantization"] = QUANTIZATION_ALIASES.get(quant, quant)
    return out
