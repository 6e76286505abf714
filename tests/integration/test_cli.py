"""`python app.py run / chat / list` as a user types them (subprocesses, real embedded model)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from webui.config import REPO_ROOT

pytestmark = pytest.mark.slow


def app_py(*args: str, data_dir: Path, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def test_list_shows_the_models_the_model_tab_lists(tmp_path: Path) -> None:
    r = app_py("list", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "LOADER", "SOURCE"]
    assert any("SmolLM2-135M-Instruct (embedded)" in line and "llama.cpp" in line for line in lines[1:])


def test_run_streams_a_reply_to_stdout(tmp_path: Path) -> None:
    r = app_py("run", "--max-tokens", "8", "What is the capital of France?", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and len(r.stdout.split()) <= 12
    # by name from `list`, prompt from stdin
    r2 = app_py(
        "run", "--model", "SmolLM2-135M-Instruct (embedded)", "--max-tokens", "5", data_dir=tmp_path, stdin="Hello!"
    )
    assert r2.returncode == 0 and r2.stdout.strip(), r2.stderr
    bad = app_py("run", "--model", "no-such-model", "hi", data_dir=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_chat_is_saved_to_the_same_database(tmp_path: Path) -> None:
    r = app_py(
        "chat", "--max-tokens", "6", data_dir=tmp_path, stdin="Remember the word kiwi\n/new\nSecond chat\n/bye\n"
    )
    assert r.returncode == 0, r.stderr
    assert "Hello! How can I help you today?" in r.stdout  # the character's greeting
    db = sqlite3.connect(tmp_path / "webui.db")
    try:
        rows = db.execute(
            "select c.title, m.role, v.content from conversations c join messages m on m.conversation_id = c.id "
            "join message_versions v on v.message_id = m.id order by c.id, m.position").fetchall()
    finally:
        db.close()
    titles = sorted({t for t, _, _ in rows})
    assert titles == ["Remember the word kiwi", "Second chat"]
    first = [(role, text) for t, role, text in rows if t == "Remember the word kiwi"]
    assert [role for role, _ in first] == ["assistant", "user", "assistant"]
    assert first[2][1].strip() and first[2][1].strip() in r.stdout
