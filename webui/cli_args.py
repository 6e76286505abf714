"""The command line, ``python app.py [COMMAND] [flags]``, built from the settings' declarations.

Every settings flag comes from a ``Settings`` field (``webui.config``); only the per-command
arguments (``run``'s prompt, ``--character``, ``--max-tokens``, ``--user``, the FILE of ``export``
and ``import`` and their options) and ``--log-level``, which are not settings, are written here.
Only app.py calls ``parse_args``, with ``sys.argv[1:]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, get_args

from pydantic.fields import FieldInfo

from webui.config import declared_settings
from webui.setting_meta import Setting

COMMANDS = ("serve", "run", "chat", "list", "export", "import", "train")
COMMANDS_HELP = """commands (the first argument; default serve):
  serve              serve the web UI and the OpenAI/Ollama-compatible API (the default)
  run [PROMPT...]    print a reply to PROMPT (or stdin), streamed, then exit
  chat               an interactive chat in the terminal, saved to the same history
  list               list the models the Model tab lists
  export FILE        write one .zip of the chats, characters, personas, presets, templates and settings
  import FILE        add an archive made by export to this data dir (nothing already there is overwritten)
  train DATA --name N  train a LoRA adapter on DATA (a data file) into <data-dir>/loras/N (docs/training.md)
Run `python app.py COMMAND --help` for a command's options."""


def _arg_type(annotation: Any) -> type | None:
    """int or float for a numeric setting; None (argparse's str) for the rest."""
    kinds = get_args(annotation) or (annotation,)
    for kind in (int, float):
        if kind in kinds:
            return kind
    return None


def _add_setting(target: Any, name: str, field: FieldInfo, setting: Setting) -> None:
    flag = setting.flag_for(name)
    kwargs: dict[str, Any] = {"dest": name, "default": None, "help": setting.help}
    if setting.action == "store":
        kwargs["type"] = _arg_type(field.annotation)
        kwargs["choices"] = setting.choice_list() or None
    else:
        kwargs["action"] = setting.action
    if setting.metavar:
        kwargs["metavar"] = setting.metavar
    if setting.nargs:
        kwargs["nargs"] = setting.nargs
    target.add_argument(flag, **kwargs)


def _add_settings(parser: argparse.ArgumentParser, settings: Iterable[tuple[str, FieldInfo, Setting]]) -> None:
    groups: dict[str, Any] = {}
    for name, field, setting in settings:
        if setting.flag_for(name) is None:
            continue
        if setting.group and setting.group not in groups:
            groups[setting.group] = parser.add_argument_group(setting.group)
        _add_setting(groups.get(setting.group, parser), name, field, setting)


def _add_command_args(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "run":
        parser.add_argument("prompt", nargs="*", help="the prompt (default: read from stdin)")
    if command in ("run", "chat"):
        parser.add_argument("--character", help="answer as this character (default: the model's plain assistant)")
        parser.add_argument("--max-tokens", type=int, help="reply length limit in tokens")
    if command == "chat":
        parser.add_argument("--user", help="save the chat in this account's history (see --auth)")
    if command == "export":
        parser.add_argument("file", help="the .zip to write (a new file)")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="only this account's chats and personas (default: --all-users)")
        who.add_argument("--all-users", action="store_true",
                         help="every account's chats and personas and the history made without accounts (the default)")
        parser.add_argument("--include-models", action="store_true",
                            help="also copy the files of the models dir (default: only list the models)")
    if command == "train":
        _add_train_args(parser)
    if command == "import":
        parser.add_argument("file", help="a .zip written by `python app.py export`")
        parser.add_argument("--user", help="put every imported chat and persona in this account "
                                           "(default: the accounts they were exported from)")


def _add_train_args(parser: argparse.ArgumentParser) -> None:
    """``train``'s own arguments (the base is --model; --dtype and --load-in-4bit apply too)."""
    parser.add_argument("data", help="the training data: .jsonl, .json, .csv, .parquet or .txt (docs/training.md)")
    parser.add_argument("--name", required=True, help="the adapter's name: it is saved in <data-dir>/loras/NAME")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="passes over the data (default 3)")
    length.add_argument("--max-steps", type=int, help="optimizer steps to train (instead of --epochs)")
    parser.add_argument("--lr", type=float, help="learning rate (default: by model size)")
    parser.add_argument("--rank", type=int, help="LoRA rank (default: by model size; alpha is twice the rank)")
    parser.add_argument("--method", choices=("sft", "dpo"), default="sft",
                        help="sft: learn the responses; dpo: preference tuning on prompt/chosen/rejected rows")
    parser.add_argument("--validation", metavar="FILE", help="validation rows (default: 10%% of DATA held out)")
    parser.add_argument("--batch-size", type=int, help="examples per step (default 4)")
    parser.add_argument("--max-length", type=int, help="tokens per example; longer ones are truncated (default 512)")


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser for ``command``: its own arguments, then every setting with a flag, grouped."""
    parser = argparse.ArgumentParser(
        prog="app.py" if command == "serve" else f"app.py {command}",
        description="Chat with local language models in your browser.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_command_args(parser, command)
    declared = declared_settings()
    _add_settings(parser, [item for item in declared if not item[2].group])
    # The terminal commands print only the reply, so they log warnings and errors only.
    log_level = "INFO" if command == "serve" else "WARNING"
    parser.add_argument("--log-level", default=log_level, help="DEBUG, INFO, WARNING...")
    _add_settings(parser, [item for item in declared if item[2].group])
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``[COMMAND] [flags]`` (COMMAND defaults to serve); ``args.command`` names the command."""
    command = "serve"
    if argv and argv[0] in COMMANDS:
        command, argv = argv[0], argv[1:]
    args = build_parser(command).parse_args(argv)
    args.command = command
    return args


def settings_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, for ``load_settings`` (None: not given)."""
    return {name: getattr(args, name) for name, _field, setting in declared_settings() if setting.flag_for(name)}
