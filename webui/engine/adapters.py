"""LoRA adapters on a loaded model, for each local backend, without reloading it.

- transformers: peft injects each adapter's LoRA layers into the loaded model in place (one PEFT
  adapter per file, all active at once, each scaled by its weight with ``LoraLayer.set_scale``, so
  the output is the base plus the weighted sum of the adapters' deltas, as peft's ``cat``
  combination computes it); removing them (``unload``) puts the base layers back. The backend's
  own model object stays the same, so every path that runs it (generate, logits) sees the adapters.
- llama.cpp: each adapter's GGUF LoRA (``adapter.gguf`` in its folder, exported from the PEFT files
  on demand, see webui/training/gguf_lora.py) is loaded with ``llama_adapter_lora_init`` and set on
  the context with ``llama_set_adapters_lora`` and the weights as scales. The KV cache of the last
  prompt is dropped whenever the adapters change: a prefix computed with other adapters is not
  reused.

``merge_and_save`` writes base + adapters as a new transformers model folder. All of this runs on
the inference worker (the backends' methods are called there).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import UserFacingError
from webui.training.types import GGUF_ADAPTER_FILE

log = logging.getLogger(__name__)

Adapters = list[tuple[Path, float]]  # (adapter folder, weight)
PEFT_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class AppliedLora:
    """An adapter applied (or to apply) to the loaded model: its name in the library, its folder, its weight."""

    name: str
    path: Path
    weight: float = 1.0


class AdapterError(UserFacingError):
    """An adapter cannot be applied to the loaded model."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- transformers (peft) ----------------------------------------------------------------------------


class PeftAdapters:
    """The adapters peft has injected into one transformers model."""

    def __init__(self) -> None:
        self._peft: Any = None  # the PeftModel wrapping the backend's model while adapters are on

    @property
    def active(self) -> bool:
        return self._peft is not None

    def apply(self, model: Any, adapters: Adapters) -> None:
        """Replace whatever is applied with ``adapters``; on failure the model is left without any."""
        self.clear()
        if adapters:
            self._peft = inject(model, adapters)

    def clear(self) -> None:
        if self._peft is not None:
            peft, self._peft = self._peft, None
            peft.unload()  # the base layers back in place, nothing merged


def inject(model: Any, adapters: Adapters) -> Any:
    """Wrap ``model`` in a PeftModel with every adapter active at its weight; returns the PeftModel.
    On failure the model is restored to its base layers and AdapterError is raised."""
    from peft import PeftConfig, PeftModel
    from peft.tuners.lora import LoraLayer

    names = [f"adapter_{i}" for i in range(len(adapters))]
    peft = None
    current = adapters[0][0]
    try:
        first = PeftConfig.from_pretrained(str(current))
        if first.peft_type != "LORA":
            raise AdapterError(f"{current.name} is not a LoRA adapter ({first.peft_type}).")
        first.inference_mode = True
        peft = PeftModel(model, first, adapter_name=names[0])
        for name, (path, _weight) in zip(names, adapters):
            current = path
            peft.load_adapter(str(path), adapter_name=name, is_trainable=False)
        peft.base_model.set_adapter(names, inference_mode=True)
        for module in model.modules():
            if isinstance(module, LoraLayer):
                for name, (_path, weight) in zip(names, adapters):
                    module.set_scale(name, float(weight))
    except AdapterError:
        _restore(peft)
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        _restore(peft)
        why = ("its matrices do not have this model's shapes (was it trained on another base model?)"
               if "size mismatch" in str(exc) else _first_line(exc))
        raise AdapterError(f"The adapter {current.name} could not be applied to this model: {why}") from exc
    model.eval()
    return peft


def _restore(peft: Any) -> None:
    if peft is not None:
        try:
            peft.unload()
        except (RuntimeError, ValueError, AttributeError):  # pragma: no cover - best effort after a failure
            log.exception("could not remove a half-applied adapter")


# -- llama.cpp --------------------------------------------------------------------------------------


def gguf_adapter(adapter_dir: Path, base_gguf: Path) -> Path:
    """The adapter's GGUF LoRA for ``base_gguf``, exported now when it is missing or older than the
    PEFT weights (a retrained adapter)."""
    from webui.training.gguf_lora import export_gguf_lora

    out = adapter_dir / GGUF_ADAPTER_FILE
    weights = adapter_dir / PEFT_WEIGHTS
    fresh = out.is_file() and (not weights.is_file() or out.stat().st_mtime >= weights.stat().st_mtime)
    if fresh:
        return out
    if not weights.is_file():
        raise AdapterError(f"{adapter_dir.name} has neither {GGUF_ADAPTER_FILE} nor {PEFT_WEIGHTS}.")
    log.info("exporting %s as a GGUF LoRA for %s", adapter_dir.name, base_gguf.name)
    return export_gguf_lora(adapter_dir, base_gguf, out)


def reset_prompt_cache(llm: Any) -> None:
    """Forget every cached prompt state, so the next prompt is evaluated with the current adapters."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    if llm.cache is not None:
        from llama_cpp.llama_cache import LlamaDiskCache, LlamaRAMCache

        if isinstance(llm.cache, LlamaRAMCache):
            llm.cache.cache_state.clear()
        elif isinstance(llm.cache, LlamaDiskCache):
            llm.cache.cache.clear()
        else:
            llm.set_cache(None)


class LlamaAdapters:
    """The GGUF LoRA adapters set on one llama.cpp context."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def apply(self, llm: Any, base_gguf: Path, adapters: Adapters) -> None:
        """Set ``adapters`` (replacing the ones set); on failure the ones set before stay."""
        import llama_cpp

        if not adapters:
            self.clear(llm)
            return
        files = [gguf_adapter(path, base_gguf) for path, _ in adapters]
        handles: list[Any] = []
        try:
            for (path, _), file in zip(adapters, files):
                handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(file).encode("utf-8"))
                if not handle:
                    raise AdapterError(f"llama.cpp refused the adapter {path.name} ({file.name}): it does not fit "
                                       f"{base_gguf.name}. Was it trained on another base model?")
                handles.append(handle)
            array = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles)
            scales = (ctypes.c_float * len(handles))(*[float(w) for _, w in adapters])
            if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, array, len(handles), scales) != 0:
                raise AdapterError("llama.cpp could not set the adapters on the loaded model.")
        except BaseException:
            for handle in handles:
                llama_cpp.llama_adapter_lora_free(handle)
            raise
        self._free(self._handles)
        self._handles = handles
        reset_prompt_cache(llm)

    def clear(self, llm: Any) -> None:
        import llama_cpp

        if not self._handles:
            return
        llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, None, 0, None)
        self._free(self._handles)
        self._handles = []
        reset_prompt_cache(llm)

    @staticmethod
    def _free(handles: list[Any]) -> None:
        import llama_cpp

        for handle in handles:
            llama_cpp.llama_adapter_lora_free(handle)


# -- merge and save ---------------------------------------------------------------------------------


def merge_and_save(base_path: Path, adapters: Adapters, out_dir: Path) -> Path:
    """Load ``base_path`` (a model folder, or a GGUF transformers dequantizes) again with
    transformers, merge ``adapters`` into its weights and save it, with its tokenizer, as a model
    folder at ``out_dir`` (written to a temp folder beside it, renamed at the end)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if out_dir.exists():
        raise UserFacingError(f"{out_dir} already exists; choose another name.")
    if not adapters:
        raise UserFacingError("Choose at least one adapter to merge.")
    kwargs: dict[str, Any] = {}
    folder = base_path
    if base_path.suffix.lower() == ".gguf":
        kwargs = {"gguf_file": base_path.name}
        folder = base_path.parent
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32 if kwargs else "auto", **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise UserFacingError(f"transformers could not load {base_path.name} to merge into: "
                              f"{_first_line(exc)}") from exc
    peft = inject(model, adapters)
    merged = peft.merge_and_unload()
    if getattr(merged, "hf_quantizer", None) is not None:  # a GGUF-loaded model refuses save_pretrained otherwise
        merged.hf_quantizer.remove_quantization_config(merged)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-merge-", dir=out_dir.parent))
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, out_dir)
    except OSError as exc:
        raise UserFacingError(f"Cannot write the merged model to {out_dir}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
