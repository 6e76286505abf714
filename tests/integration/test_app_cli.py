"""`python app.py` as a user runs it: clear messages and exit codes on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server_utils import start_app
from webui.config import REPO_ROOT


def run_app(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py"), *args], capture_output=True, text=True, timeout=timeout
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in result.stderr


def test_missing_model(tmp_path: Path) -> None:
    r = run_app("--model", str(tmp_path / "nope.gguf"), "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "Model not found", "nope.gguf", "--model")


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"\x00" * 1000)
    r = run_app("--model", str(bad), "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "not a GGUF model file", "corrupt")


def test_model_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    r = run_app("--model", str(tmp_path / "m"), "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "no config.json")


def test_unusable_data_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = run_app("--data-dir", str(tmp_path / "file" / "data"))
    assert_clean_failure(r, "Cannot create the data dir", "--data-dir")


def test_corrupt_database(tmp_path: Path) -> None:
    (tmp_path / "webui.db").write_bytes(b"garbage" * 500)
    r = run_app("--data-dir", str(tmp_path))
    assert_clean_failure(r, "Cannot open the database", "corrupt")


def test_port_in_use(tmp_path: Path) -> None:
    app = start_app(tmp_path / "a")
    try:
        r = run_app("--data-dir", str(tmp_path / "b"), "--port", str(app.port))
        assert_clean_failure(r, f"Port {app.port} is already in use", "--port")
    finally:
        app.stop()


@pytest.mark.slow
def test_serves_page_api_and_health_on_one_port(tmp_path: Path) -> None:
    app = start_app(tmp_path / "data")
    try:
        health = httpx.get(f"{app.url}/healthz").json()
        assert health["model"] == "SmolLM2-135M-Instruct (embedded)"
        page = httpx.get(app.url + "/")
        assert page.status_code == 200
        assert httpx.get(app.url + "/config").json()["title"] == "WebUI"
        assert (tmp_path / "data" / "webui.db").is_file()
    finally:
        app.stop()
