"""docs/extensions.md documents every hook: its table is the one generated from the hook specs.

datasette's habit: every hook has a test (tests/unit/test_plugins.py) and a docs entry (here).
After changing webui/plugins/hookspecs.py, regenerate the table with
``python -m webui.plugins.hook_docs --write docs/extensions.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webui.config import REPO_ROOT
from webui.plugins import hook_docs
from webui.plugins.hookspecs import HOOKS, HookSpec

DOCS = REPO_ROOT / "docs" / "extensions.md"
REGENERATE = "python -m webui.plugins.hook_docs --write docs/extensions.md"


def docs_table() -> str:
    text = DOCS.read_text(encoding="utf-8")
    assert text.count(hook_docs.START) == 1 and text.count(hook_docs.END) == 1, (
        f"{DOCS} needs exactly one {hook_docs.START!r} ... {hook_docs.END!r} pair around the hook table")
    return hook_docs.current_table(text)


def test_docs_table_is_the_generated_one() -> None:
    assert docs_table() == hook_docs.hook_table(), f"the hook table in {DOCS} is out of date: run {REGENERATE}"


@pytest.mark.parametrize("hook", list(HOOKS))
def test_every_hook_has_a_row(hook: str) -> None:
    rows = [line for line in docs_table().splitlines() if line.startswith("| `")]
    names = [re.match(r"\| `([A-Za-z_]\w*)", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert names.count(hook) == 1, f"hook {hook!r} has no row (or several) in the table of {DOCS}: run {REGENERATE}"


def test_every_hook_spec_has_a_description() -> None:
    missing = [name for name, spec in HOOKS.items() if not spec.doc.strip()]
    assert missing == [], f"hook specs without a doc (their docs row would be empty): {missing}"


def test_table_has_one_row_per_hook_in_contract_order() -> None:
    rows = hook_docs.hook_table().splitlines()[2:]
    assert len(rows) == len(HOOKS)
    for row, spec in zip(rows, HOOKS.values()):
        assert row.startswith(f"| `{spec.signature_text()}` | {spec.kind} |")


def test_cells_never_break_the_table() -> None:
    spec = HookSpec("odd_modifier", "pipe", ("string",), returns=("string",), doc="a | b\n  c")
    table = hook_docs.hook_table({"odd_modifier": spec})
    assert table.splitlines()[2] == r"| `odd_modifier(string)` | pipe | a \| b c |"


def test_write_replaces_only_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    stale = f"# Title\n\nbefore\n\n{hook_docs.START}\nstale table\n{hook_docs.END}\n\nafter\n"
    page.write_text(stale, encoding="utf-8")
    assert hook_docs.main(["--check", str(page)]) == 1
    assert hook_docs.main(["--write", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text == f"# Title\n\nbefore\n\n{hook_docs.START}\n{hook_docs.hook_table()}{hook_docs.END}\n\nafter\n"
    assert hook_docs.main(["--check", str(page)]) == 0
    assert hook_docs.main(["--write", str(page)]) == 0 and page.read_text(encoding="utf-8") == text  # idempotent


def test_missing_markers_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page.md"
    page.write_text("no markers here\n", encoding="utf-8")
    assert hook_docs.main(["--write", str(page)]) == 1
    assert "hooks:start" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8") == "no markers here\n"
