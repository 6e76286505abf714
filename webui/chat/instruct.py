"""Custom instruction templates: Jinja chat templates kept in ``<data-dir>/instruction-templates``.

A template is a ``NAME.jinja`` file (a Hugging Face-style chat template: it receives
``messages``, ``add_generation_prompt``, ``bos_token``, ``eos_token``) or an Oobabooga
``NAME.yaml`` with an ``instruction_template:`` key holding the same. By default a chat uses the
model's own template; choosing one of these overrides it for that chat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from webui.bounded_parse import load_yaml
from webui.errors import UserFacingError

MODEL_TEMPLATE = ""  # the chat setting value meaning "the model's own chat template"
MAX_TEMPLATE_OUTPUT = 10_000_000  # characters a ``*`` or ``**`` in a template may produce


class TemplateProblem(UserFacingError):
    """An instruction template is missing or cannot be rendered."""


class InstructionTemplates:
    """Templates by name (file stem) from one directory, re-read on each use so edits apply at once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._env = _BoundedEnvironment(trim_blocks=True, lstrip_blocks=True)
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
                try:
                    text = path.read_text(encoding="utf-8")
                    if suffix == ".jinja":
                        return text
                    data = load_yaml(text) or {}
                except OSError as exc:
                    raise TemplateProblem(f"Cannot read {path}: {exc.strerror or exc}") from exc
                except UnicodeDecodeError as exc:
                    raise TemplateProblem(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
                except yaml.YAMLError as exc:
                    raise TemplateProblem(f"{path} is not valid YAML: {exc}") from exc
                if not isinstance(data, dict) or not isinstance(data.get("instruction_template"), str):
                    raise TemplateProblem(f"{path} has no instruction_template: string.")
                return data["instruction_template"]
        raise TemplateProblem(f"No instruction template named {name!r} in {self.directory}.")

    def render(self, name: str, messages: list[dict[str, str]]) -> str:
        """``messages`` through template ``name``, ending with the generation prompt."""
        source = self.source(name)
        try:
            template = self._env.from_string(source)
            return template.render(messages=messages, add_generation_prompt=True, bos_token="", eos_token="")
        except TemplateError as exc:
            raise TemplateProblem(f"Instruction template {name!r} failed: {exc}") from exc
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
            # A template is code its author wrote: {{ 1 / 0 }}, {{ messages + 1 }}, a macro that calls itself.
            raise TemplateProblem(f"Instruction template {name!r} failed: {type(exc).__name__}: {exc}") from exc


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus a bound on ``*`` and ``**``: ``{{ 'x' * 10**10 }}`` would otherwise take
    all memory before anything could stop it."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
            if abs(right) > 1000 and abs(left) > 1:
                raise SecurityError(f"{left!r} ** {right!r} is too large")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                if sized and len(seq) * times > MAX_TEMPLATE_OUTPUT:
                    raise SecurityError(f"repeating a sequence of {len(seq)} items {times} times is too large")
        return super().call_binop(context, operator, left, right)


def _raise(message: str) -> None:
    raise TemplateError(message)
