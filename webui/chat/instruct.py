"""Custom instruction templates: Jinja chat templates kept in ``<data-dir>/instruction-templates``.

A template is a ``NAME.jinja`` file (a Hugging Face-style chat template: it receives
``messages``, ``add_generation_prompt``, ``bos_token``, ``eos_token``) or an Oobabooga
``NAME.yaml`` with an ``instruction_template:`` key holding the same. By default a chat uses the
model's own template; choosing one of these overrides it for that chat.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from webui.errors import UserFacingError

MODEL_TEMPLATE = ""  # the chat setting value meaning "the model's own chat template"


class TemplateProblem(UserFacingError):
    """An instruction template is missing or cannot be rendered."""


class InstructionTemplates:
    """Templates by name (file stem) from one directory, re-read on each use so edits apply at once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._env.globals["raise_exception"] = _raise

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            {p.stem for p in self.directory.iterdir() if p.suffix in (".jinja", ".yaml", ".yml")}, key=str.lower
        )

    def source(self, name: str) -> str:
        for suffix in (".jinja", ".yaml", ".yml"):
            path = self.directory / f"{name}{suffix}"
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                if suffix == ".jinja":
                    return text
                data = yaml.safe_load(text) or {}
                if not isinstance(data, dict) or not isinstance(data.get("instruction_template"), str):
                    raise TemplateProblem(f"{path} has no instruction_template: string.")
                return data["instruction_template"]
        raise TemplateProblem(f"No instruction template named {name!r} in {self.directory}.")

    def render(self, name: str, messages: list[dict[str, str]]) -> str:
        """``messages`` through template ``name``, ending with the generation prompt."""
        try:
            template = self._env.from_string(self.source(name))
            return template.render(messages=messages, add_generation_prompt=True, bos_token="", eos_token="")
        except TemplateError as exc:
            raise TemplateProblem(f"Instruction template {name!r} failed: {exc}") from exc


def _raise(message: str) -> None:
    raise TemplateError(message)
