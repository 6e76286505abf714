"""The base model a LoRA is trained on: checked, loaded for training, and cached.

A base is a Hugging Face model folder or a ``.gguf`` file. transformers dequantizes a GGUF as it
loads it (``from_pretrained(folder, gguf_file=...)``), which takes ~10 s even for a small model, so
the first run saves the dequantized model under ``<data-dir>/training/base-cache/`` and later runs
load that copy (well under a second for SmolLM2-135M). A GGUF-loaded model refuses
``save_pretrained`` until its quantizer's ``remove_quantization_config`` has run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.errors import UserFacingError
from webui.training.types import TRAINING_DIR, Hyperparams

CACHE_DIR = "base-cache"


@dataclass(frozen=True)
class BaseSource:
    """A checked base model: where transformers reads it from."""

    path: Path  # the folder or the .gguf file the user named
    folder: Path  # what from_pretrained is given
    gguf_file: str | None  # the GGUF's file name inside ``folder``

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_base(base_model: str) -> BaseSource:
    """Check that ``base_model`` names something transformers can train; one message if not.
    A folder's config is read; a GGUF's architecture is read from its header (cheap)."""
    if not base_model:
        raise UserFacingError("No base model: load a model first or pass --model (a model folder or a .gguf file).")
    if base_model.startswith(("http://", "https://")):
        raise UserFacingError(
            f"{base_model} is a remote model server: a LoRA can only be trained on a local model folder or .gguf file."
        )
    path = Path(base_model).expanduser()
    if not path.exists():
        raise UserFacingError(f"Base model not found: {path}. Choose a model folder or a .gguf file.")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UserFacingError(f"{path.name} is neither a model folder nor a .gguf file, so it cannot be trained.")
        source = BaseSource(path=path.resolve(), folder=path.resolve().parent, gguf_file=path.name)
    else:
        if not (path / "config.json").is_file():
            raise UserFacingError(f"{path} has no config.json, so it is not a Hugging Face model folder.")
        source = BaseSource(path=path.resolve(), folder=path.resolve(), gguf_file=None)
    if source.is_gguf:
        _check_gguf_architecture(source.path)
    else:
        load_config(source)  # refuses an architecture transformers does not know
    return source


def load_config(source: BaseSource, data_dir: Path | None = None) -> Any:
    """The transformers config of ``source`` (a GGUF's from its cached copy when there is one, in
    ``data_dir``); UserFacingError when transformers cannot train it."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    folder, kwargs = source.folder, source.from_pretrained_kwargs()
    if source.is_gguf:
        _check_gguf_architecture(source.path)
        cached = cache_folder(source, data_dir) if data_dir is not None else None
        if cached is not None and (cached / "config.json").is_file():
            folder, kwargs = cached, {}
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise UserFacingError(f"transformers does not know this model's architecture, so it cannot be trained "
                              f"({_first_line(exc)}).") from exc
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise UserFacingError(f"{source.path.name} is a {config.model_type!r} model, which transformers cannot "
                              "load as a text generator, so it cannot be trained.")
    return config


def _check_gguf_architecture(path: Path) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    arch = gguf_architecture(path)
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise UserFacingError(f"{path.name} is a {arch!r} GGUF, an architecture transformers cannot load, so it "
                              "cannot be trained (llama.cpp can still chat with it).")


_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # type id -> bytes
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF, read from the metadata ahead of it (it comes first in
    practice); gguf's full reader, which parses the whole vocabulary, only as a fallback."""
    import struct

    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError("no GGUF magic number")
            _version, _tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
            for _ in range(min(n_kv, 64)):
                key = fh.read(struct.unpack("<Q", fh.read(8))[0]).decode("utf-8")
                kind = struct.unpack("<I", fh.read(4))[0]
                if kind == _GGUF_STRING:
                    value = fh.read(struct.unpack("<Q", fh.read(8))[0])
                    if key == "general.architecture":
                        return value.decode("utf-8")
                elif kind in _GGUF_SCALARS:
                    fh.seek(_GGUF_SCALARS[kind], 1)
                else:
                    break
        from gguf import GGUFReader

        field = GGUFReader(path).fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (KeyError, ValueError, OSError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise UserFacingError(f"{path.name} is not a readable GGUF file ({_first_line(exc)}).") from exc


def cache_root(data_dir: Path) -> Path:
    return data_dir / TRAINING_DIR / CACHE_DIR


def cache_folder(source: BaseSource, data_dir: Path) -> Path:
    """Where the dequantized copy of a GGUF lives: named by the file and its size and mtime."""
    stat = source.path.stat()
    key = hashlib.sha256(f"{source.path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root(data_dir) / f"{source.path.stem}-{key}"


def trainable_folder(source: BaseSource, data_dir: Path) -> Path:
    """A model folder transformers loads quickly: the folder itself, or a GGUF's cached copy (made
    on first use: loaded dequantized in fp32, saved to a temp dir, renamed into place)."""
    if not source.is_gguf:
        return source.folder
    target = cache_folder(source, data_dir)
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = source.from_pretrained_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=torch.float32, **kwargs)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "webui-source.json").write_text(json.dumps({"gguf": str(source.path)}), encoding="utf-8")
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():  # not another run that made it first
            raise
    return target


def load_for_training(source: BaseSource, data_dir: Path, hyper: Hyperparams, *, cuda: bool) -> tuple[Any, Any]:
    """(model, tokenizer) ready for peft: dtype and quantization as ``hyper`` and the machine say."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = trainable_folder(source, data_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch_dtype(hyper, cuda=cuda)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if hyper.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype,
        )
    if cuda:
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if hyper.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=uses_checkpointing(hyper))
    return model, tokenizer


def torch_dtype(hyper: Hyperparams, *, cuda: bool) -> Any:
    """The weights' dtype: as asked, or bf16 on a GPU that has it and fp32 elsewhere."""
    import torch

    if hyper.dtype == "float32":
        return torch.float32
    if hyper.dtype == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32


def uses_checkpointing(hyper: Hyperparams) -> bool:
    """QLoRA always trades compute for memory with gradient checkpointing; otherwise when asked."""
    return hyper.gradient_checkpointing or hyper.quantization == "4bit"


def check_machine(hyper: Hyperparams, *, cuda: bool) -> None:
    """Refuse, up front, options this machine cannot run."""
    if hyper.quantization == "4bit":
        if not cuda:
            raise UserFacingError("4-bit training (QLoRA) needs a CUDA GPU, and this machine has none: "
                                  "choose quantization none.")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise UserFacingError("4-bit training (QLoRA) needs bitsandbytes: pip install bitsandbytes.") from exc
    if hyper.dtype == "bfloat16" and cuda:
        import torch

        if not torch.cuda.is_bf16_supported():
            raise UserFacingError("This GPU does not support bfloat16: choose dtype float32 (or auto).")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
