"""The metadata a ``Settings`` field carries: its help, and how it is spelt on the command line.

A setting is declared once, as a field of ``webui.config.Settings`` annotated with a ``Setting``;
its command-line flag (``webui.cli_args``), its environment variables and settings.yaml key
(``webui.config.load_settings``) and its row in docs/configuration.md (``webui.settings_docs``)
are all generated from that one declaration. The model-loading settings are generated from the
load-option table in ``webui/engine/options.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["store", "store_true", "store_false", "append"]
ENV_PREFIX = "WEBUI_"


@dataclass(frozen=True)
class Setting:
    """How one setting is documented and spelt on the command line.

    ``flag`` is the option string (default ``--`` + the field name with dashes); ``None`` means the
    setting has no flag and comes only from the environment or settings.yaml. ``choices`` may be a
    callable so that a list owned elsewhere (the loader registry) is read when the parser is built.
    """

    help: str
    flag: str | None = ""
    action: Action = "store"
    metavar: str | None = None
    nargs: str | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] = ()
    group: str = ""  # argparse group title; "" is the general options
    env_aliases: tuple[str, ...] = ()  # read when WEBUI_<NAME> is not set
    in_file: bool = True  # False: settings.yaml cannot set it (the data dir, where the file lives)
    doc_default: str | None = None  # the default as docs/configuration.md shows it

    def flag_for(self, name: str) -> str | None:
        """The command-line spelling of the setting called ``name`` (None: no flag)."""
        if self.flag is None:
            return None
        return self.flag or "--" + name.replace("_", "-")

    def choice_list(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices)


def env_names(name: str, setting: Setting) -> tuple[str, ...]:
    """The environment variables that set ``name``, the first one winning."""
    return (ENV_PREFIX + name.upper(), *setting.env_aliases)


def format_default(value: object) -> str:
    """A default as the docs show it: YAML spelling (true, false), "none" for an empty list."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if value == "":
        return "empty"
    return str(value)
