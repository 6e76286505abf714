"""Generation presets: YAML files holding only the parameters that differ from neutral.

Shipped presets live in ``presets/`` in the repository; the user's in ``<data-dir>/presets``
(a user preset with a shipped name overrides it). The UI and the API resolve parameters the
same way, through ``resolve_params``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from webui.atomic_file import write_text_atomic
from webui.bounded_parse import load_yaml
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams

# Every parameter at the value where it has no effect (plain sampling from the model).
NEUTRAL: dict[str, Any] = {**GenerationParams().model_dump(), "temperature": 1.0, "top_p": 1.0}
# Names the API may use for our parameters (OpenAI / llama.cpp spellings).
ALIASES = {
    "max_tokens": "max_new_tokens",
    "max_completion_tokens": "max_new_tokens",
    "repeat_penalty": "repetition_penalty",
    # text-generation-webui / llama.cpp / Ollama spellings that SillyTavern sends beside ours
    "n_predict": "max_new_tokens",
    "num_predict": "max_new_tokens",
    "stopping_strings": "stop",
    "rep_pen": "repetition_penalty",
    "rep_pen_range": "repetition_penalty_range",
    "repeat_last_n": "repetition_penalty_range",
    "ignore_eos": "ban_eos_token",
    "min_length": "min_tokens",
    "nsigma": "top_n_sigma",
    "typical": "typical_p",
    "sampler_seed": "seed",
    "mirostat": "mirostat_mode",
}
_NAME = re.compile(r"^[\w][\w .()+-]{0,63}$")


class PresetError(UserFacingError):
    """A preset is missing, malformed or holds unknown/invalid parameters."""


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def diff_from_neutral(params: GenerationParams) -> dict[str, Any]:
    """The values of ``params`` that differ from neutral: what a preset file stores."""
    return {k: v for k, v in params.model_dump().items() if NEUTRAL.get(k) != v}


def params_from_values(values: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> GenerationParams:
    """``values`` over ``base`` (default: neutral), validated. Raises PresetError."""
    try:
        return GenerationParams(**{**(NEUTRAL if base is None else base), **values})
    except ValidationError as exc:
        raise PresetError(f"Invalid parameters: {_validation_message(exc)}") from exc


class PresetLibrary:
    """Presets by name from the shipped and user directories (the last directory is writable)."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories

    @property
    def user_dir(self) -> Path:
        return self.directories[-1]

    def files(self) -> dict[str, Path]:
        """Each preset's file, by name (a later directory wins)."""
        return self._files()

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for d in self.directories:
            if d.is_dir():
                for path in sorted(d.glob("*.yaml")):
                    found[path.stem] = path
        return found

    def names(self) -> list[str]:
        return sorted(self._files(), key=str.lower)

    def values(self, name: str) -> dict[str, Any]:
        """The preset's stored values (only those that differ from neutral). Raises PresetError."""
        path = self._files().get(name)
        if path is None:
            raise PresetError(f"No preset named {name!r}. Available: {', '.join(self.names()) or 'none'}.")
        try:
            data = load_yaml(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise PresetError(f"Preset {name!r} ({path}) cannot be read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            where = f"{exc.reason} at byte {exc.start}"
            raise PresetError(f"Preset {name!r} ({path}) is not UTF-8 text ({where}).") from exc
        except yaml.YAMLError as exc:
            raise PresetError(f"Preset {name!r} ({path}) is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise PresetError(f"Preset {name!r} ({path}) must be a mapping of parameter names to values.")
        odd = [key for key in data if not isinstance(key, str)]
        if odd:
            raise PresetError(f"Preset {name!r} ({path}): {odd[0]!r} is not a parameter name.")
        try:
            params_from_values(data)  # validate: unknown names and bad values are errors
        except PresetError as exc:
            raise PresetError(f"Preset {name!r} ({path}): {exc}") from None
        return data

    def load(self, name: str) -> GenerationParams:
        return params_from_values(self.values(name))

    def save(self, name: str, params: GenerationParams) -> Path:
        """Write ``params`` as a preset in the user directory, keeping only non-neutral values."""
        name = name.strip()
        if not _NAME.match(name):
            raise PresetError("A preset name is 1-64 letters, digits, spaces or . ( ) + - _ characters.")
        self.user_dir.mkdir(parents=True, exist_ok=True)
        path = self.user_dir / f"{name}.yaml"
        write_text_atomic(path, yaml.safe_dump(diff_from_neutral(params), sort_keys=True, allow_unicode=True))
        return path

    def delete(self, name: str) -> None:
        path = self.user_dir / f"{name}.yaml"
        if not path.is_file():
            if name in self._files():
                raise PresetError(
                    f"{name!r} is a shipped preset and cannot be deleted (save a copy under another name)."
                )
            raise PresetError(f"No preset named {name!r} in {self.user_dir}.")
        path.unlink()


def resolve_params(
    body: Mapping[str, Any], presets: PresetLibrary | None = None, *, base: GenerationParams | None = None
) -> GenerationParams:
    """Generation parameters for an API body or UI state: ``base`` < ``preset`` < explicit names.

    Keys that are not parameters (``messages``, ``model``, ``stream``...) are ignored; known
    aliases (``max_tokens``, ``repeat_penalty``) are mapped; a ``stop`` string becomes a list;
    None values mean "not given". Raises PresetError with a readable message.
    """
    values: dict[str, Any] = dict(base.model_dump()) if base is not None else GenerationParams().model_dump()
    preset = body.get("preset")
    if preset:
        if presets is None:
            raise PresetError("Presets are not available here.")
        values = {**NEUTRAL, **presets.values(str(preset))}
    # aliases first, so that a parameter sent under its own name as well (SillyTavern sends both) wins
    for key, value in sorted(body.items(), key=lambda item: item[0] not in ALIASES):
        name = ALIASES.get(key, key)
        if value is None or name not in GenerationParams.model_fields:
            continue
        if name == "stop" and isinstance(value, str):
            value = [value]
        values[name] = value
    return params_from_values(values, base={})
