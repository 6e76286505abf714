"""The hook table of docs/extensions.md, generated from the hook specs (``hookspecs.HOOKS``).

Every hook in the contract gets one row, in the contract's order, so the docs cannot drift from
the code: ``tests/unit/test_docs_hooks.py`` fails when the table in the docs differs from
:func:`hook_table`. After changing a hook spec, regenerate the table with::

    python -m webui.plugins.hook_docs --write docs/extensions.md

Only the text between the ``<!-- hooks:start -->`` and ``<!-- hooks:end -->`` lines is rewritten.
``--check FILE`` exits 1 when FILE's table is out of date; without options the table is printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from webui.plugins.hookspecs import HOOKS, HookSpec

START = "<!-- hooks:start -->"
END = "<!-- hooks:end -->"


def _cell(text: str) -> str:
    """One Markdown table cell: no line breaks, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def hook_table(hooks: Mapping[str, HookSpec] = HOOKS) -> str:
    """The Markdown table of every hook, in the order of the contract (the order of a chat turn)."""
    lines = [
        "| Hook | Kind | When it is called, what it returns |",
        "| --- | --- | --- |",
    ]
    for spec in hooks.values():
        lines.append(f"| `{_cell(spec.signature_text())}` | {spec.kind} | {_cell(spec.doc)} |")
    return "\n".join(lines) + "\n"


def _markers(text: str) -> tuple[int, int]:
    """Where the table starts (after the start marker) and ends (at the end marker)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"the file needs a line {START!r} followed later by a line {END!r}")
    return start + len(START), end


def replace_table(text: str, table: str | None = None) -> str:
    """``text`` with the lines between the markers replaced by the table (default: the generated
    one). Raises ValueError when the markers are missing or out of order."""
    start, end = _markers(text)
    return text[:start] + "\n" + (table if table is not None else hook_table()) + text[end:]


def current_table(text: str) -> str:
    """The text between the markers as it is (without the newline after the start marker)."""
    start, end = _markers(text)
    return text[start:end].removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui.plugins.hook_docs", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", type=Path, help="rewrite the table between the markers in FILE")
    group.add_argument("--check", metavar="FILE", type=Path,
                       help="exit 1 when FILE's table differs from the generated one")
    args = parser.parse_args(argv)
    if args.write is None and args.check is None:
        sys.stdout.write(hook_table())
        return 0
    path: Path = args.write or args.check
    text = path.read_text(encoding="utf-8")
    try:
        new = replace_table(text)
    except ValueError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    if args.check is not None:
        if new != text:
            print(f"{path}: the hook table is out of date; run python -m webui.plugins.hook_docs --write {path}",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
