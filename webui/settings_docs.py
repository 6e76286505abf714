"""The flag table of docs/configuration.md, generated from the settings' declarations.

``python -m webui.settings_docs --write docs/configuration.md`` rewrites the text between the
``<!-- flags:start -->`` and ``<!-- flags:end -->`` markers (appending them when missing) and
leaves the rest of the file alone; ``--check`` exits 1 when the file is out of date; with neither,
the section is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webui.cli_args import COMMANDS, build_parser
from webui.config import declared_settings
from webui.setting_meta import env_names, format_default

START = "<!-- flags:start -->"
END = "<!-- flags:end -->"
REGENERATE = "python -m webui.settings_docs --write docs/configuration.md"


def _cell(text: str) -> str:
    """Markdown-table-safe text: no pipes, no raw angle brackets (they read as HTML tags)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;") or "—"


def _code(items: list[str]) -> str:
    return ", ".join(f"`{item}`" for item in items) or "—"


def _flag_cell(flag: str, action: argparse.Action) -> str:
    metavar = action.metavar if isinstance(action.metavar, str) else None
    suffix = f" {metavar}" if metavar else ""
    if action.nargs == "*":
        suffix += "..."
    return f"`{flag}{suffix}`"


def _help_cell(help_text: str, choices: tuple[str, ...]) -> str:
    if choices:
        help_text += ("" if help_text.endswith(".") else ".") + f" One of: {', '.join(choices)}."
    return _cell(help_text)


def _command_defaults(dest: str) -> str:
    """A command-line-only flag's default, per command where the commands differ (--log-level)."""
    by_command: dict[str, list[str]] = {}
    for command in COMMANDS:
        value = build_parser(command).get_default(dest)
        by_command.setdefault(format_default(value), []).append(command)
    if len(by_command) == 1:
        return _cell(next(iter(by_command)))
    return "; ".join(f"{_cell(value)} ({', '.join(commands)})" for value, commands in by_command.items())


def flag_table() -> str:
    """The Markdown section: a sentence on how it is made, then one row per setting and global flag."""
    parser = build_parser("serve")
    actions = {action.dest: action for action in parser._actions}
    rows = ["| flag | environment | settings.yaml | default | help |", "| --- | --- | --- | --- | --- |"]
    setting_names = set()
    for name, field, setting in declared_settings():
        setting_names.add(name)
        flag = setting.flag_for(name)
        rows.append("| " + " | ".join((
            _flag_cell(flag, actions[name]) if flag else "—",
            _code(list(env_names(name, setting))),
            _code([name] if setting.in_file else []),
            _cell(setting.doc_default if setting.doc_default is not None else format_default(field.default)),
            _help_cell(setting.help, setting.choice_list()),
        )) + " |")
    for action in parser._actions:
        if action.dest in setting_names or not action.option_strings or action.dest == "help":
            continue
        rows.append(f"| {_flag_cell(action.option_strings[0], action)} | — | — | {_command_defaults(action.dest)} | "
                    f"{_help_cell(action.help or '', tuple(action.choices or ()))} |")
    intro = (
        "Generated from the settings' declarations (`webui/config.py`, `webui/engine/options.py`) by\n"
        f"`{REGENERATE}`: edit those, not this table.\n"
        "A model-loading setting (`--load-in-8bit` and below) left unset takes the model's saved value,\n"
        "then the default shown."
    )
    return intro + "\n\n" + "\n".join(rows)


def rewrite_section(text: str, section: str) -> str:
    """``text`` with the marked section replaced by ``section`` (markers appended when missing)."""
    block = f"{START}\n{section}\n{END}"
    start, end = text.find(START), text.find(END)
    if start == -1 or end < start:
        return text.rstrip("\n") + "\n\n" + block + "\n" if text.strip() else block + "\n"
    return text[:start] + block + text[end + len(END):]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui.settings_docs", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", metavar="FILE", help="rewrite the marked section of FILE")
    mode.add_argument("--check", metavar="FILE", help="exit 1 when FILE's marked section is out of date")
    args = parser.parse_args(argv)
    section = flag_table()
    if not (args.write or args.check):
        print(section)
        return 0
    path = Path(args.write or args.check)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = rewrite_section(text, section)
    if args.check:
        if updated != text:
            print(f"{path}: the flag table is out of date; run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
