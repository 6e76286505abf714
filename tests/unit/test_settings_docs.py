"""docs/configuration.md's flag table is generated from the settings' declarations and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from webui.config import REPO_ROOT, declared_settings
from webui.settings_docs import END, REGENERATE, START, flag_table, main, rewrite_section

DOC = REPO_ROOT / "docs" / "configuration.md"


def test_docs_flag_table_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} lacks the flag-table markers; run {REGENERATE}"
    shown = text[text.index(START) + len(START):text.index(END)].strip("\n")
    assert shown == flag_table(), f"the flag table in docs/configuration.md is out of date; run {REGENERATE}"


def test_table_has_a_row_per_setting_and_flag() -> None:
    table = flag_table()
    for name, _, setting in declared_settings():
        assert f"`WEBUI_{name.upper()}`" in table
        flag = setting.flag_for(name)
        assert flag is None or f"| `{flag}" in table
    assert "| `--api-key [USER:]KEY` | `WEBUI_API_KEYS` | `api_keys` |" in table
    assert "| `--no-mmap` | `WEBUI_USE_MMAP` | `use_mmap` | true |" in table
    assert "| — | `WEBUI_HOST`, `GRADIO_SERVER_NAME` | `host` | 127.0.0.1 |" in table
    assert "| `--log-level` | — | — | INFO (serve); WARNING (run, chat, list, export, import, train) |" in table


def test_rewrite_touches_only_the_marked_section() -> None:
    text = f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\n## After\nkept\n"
    assert rewrite_section(text, "new") == f"# Title\n\nintro\n\n{START}\nnew\n{END}\n\n## After\nkept\n"
    assert rewrite_section("# Title\n", "new") == f"# Title\n\n{START}\nnew\n{END}\n"


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(f"# Configuration\n\n{START}\nstale\n{END}\n\nrest\n", encoding="utf-8")
    assert main(["--check", str(doc)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--write", str(doc)]) == 0
    assert main(["--check", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Configuration\n\n") and text.endswith(f"{END}\n\nrest\n") and "stale" not in text
