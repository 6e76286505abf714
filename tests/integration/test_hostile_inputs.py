"""Hostile inputs against the real server (`python app.py` on the embedded model): a 50 MB body,
JSON nested 100,000 levels deep, a million-character message, YAML alias bombs in the data dir.
Each gets a clear 4xx (or a clear message), memory stays bounded, and the server keeps serving."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.fuzz_inputs import billion_laughs
from tests.support.server_utils import RunningApp, start_app
from webui.config import REPO_ROOT

pytestmark = pytest.mark.slow
CHAT = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2, "temperature": 0}
MB = 2**20


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    for folder, name in (("characters", "Bomb.yaml"), ("presets", "bomb.yaml"), ("instruction-templates", "bomb.yaml")):
        (data / folder).mkdir(parents=True)
        (data / folder / name).write_text(billion_laughs())
    running = start_app(data)
    try:
        yield running
    finally:
        running.stop()


def still_serving(app: RunningApp) -> None:
    """After a hostile request: health and a real (2-token) chat completion still answer."""
    assert httpx.get(f"{app.url}/healthz", timeout=30).status_code == 200
    r = httpx.post(f"{app.url}/v1/chat/completions", json=CHAT, timeout=120)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"], r.text


def error_of(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text[:500]
    error = r.json()["error"]
    if r.url.path.startswith("/api/"):  # Ollama's shape: {"error": "message"}
        assert isinstance(error, str) and error
        return {"message": error}
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


class PeakRSS:
    """Samples a process's resident memory every 20 ms on a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_50_mb_body_is_413_without_holding_it(app: RunningApp) -> None:
    still_serving(app)
    body = b'{"messages": [{"role": "user", "content": "' + b"a" * (50 * MB) + b'"}]}'
    rss = psutil.Process(app.proc.pid).memory_info().rss
    # With Content-Length: refused from the header; the body is read and discarded, never held.
    with PeakRSS(app.proc.pid) as peak:
        r = httpx.post(f"{app.url}/v1/chat/completions", content=body, timeout=120,
                       headers={"content-type": "application/json"})
    assert "20 MB" in error_of(r, 413)["message"]
    print(f"\n50 MB body with Content-Length: {r.status_code}; server RSS before {rss / MB:.0f} MB, "
          f"peak {peak.peak / MB:.0f} MB")
    assert peak.peak - rss < 10 * MB, "the server held the refused body in memory"
    still_serving(app)
    # Chunked (no Content-Length): the API buffers a body to check its nesting, so at most the
    # limit (20 MB) is held before the 413.
    rss = psutil.Process(app.proc.pid).memory_info().rss
    with PeakRSS(app.proc.pid) as peak:
        r = httpx.post(f"{app.url}/api/chat", content=iter([body[i:i + MB] for i in range(0, len(body), MB)]),
                       timeout=120)
    after = psutil.Process(app.proc.pid).memory_info().rss
    assert "larger than the server's limit" in error_of(r, 413)["message"]
    print(f"50 MB chunked body: {r.status_code}; server RSS before {rss / MB:.0f} MB, peak {peak.peak / MB:.0f} MB, "
          f"after {after / MB:.0f} MB")
    assert peak.peak - rss < 20 * MB + 16 * MB, "the server held more than the limit"
    still_serving(app)


def test_json_nested_100000_levels_is_400(app: RunningApp) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/v1/chat/completions", "/api/chat", "/v1/internal/chat-prompt"):
        r = httpx.post(f"{app.url}{path}", content=deep, headers={"content-type": "application/json"}, timeout=60)
        print(f"\n100,000 levels to {path}: {r.status_code} {r.text[:200]}")
        assert "nested deeper" in error_of(r, 400)["message"]
    still_serving(app)


def test_a_million_character_message_is_answered(app: RunningApp) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": "word " * 200_000}]}
    start = time.perf_counter()
    r = httpx.post(f"{app.url}/v1/chat/completions", json=body, timeout=300)
    seconds = time.perf_counter() - start
    print(f"\nmillion-character message: {r.status_code} in {seconds:.1f} s: {r.text[:200]}")
    assert r.status_code == 200 or 400 <= r.status_code < 500, r.text[:500]
    if r.status_code != 200:
        error_of(r, r.status_code)
    still_serving(app)


def test_yaml_bombs_in_the_data_dir_are_clear_errors(app: RunningApp) -> None:
    r = httpx.post(f"{app.url}/v1/chat/completions", json={**CHAT, "preset": "bomb"}, timeout=60)
    print(f"\npreset bomb: {r.status_code} {r.text[:300]}")
    assert "aliases" in error_of(r, 400)["message"]
    r = httpx.post(f"{app.url}/v1/internal/chat-prompt", timeout=60,
                   json={"messages": CHAT["messages"], "mode": "instruct", "instruction_template": "bomb"})
    print(f"template bomb: {r.status_code} {r.text[:300]}")
    assert "aliases" in error_of(r, r.status_code)["message"] and 400 <= r.status_code < 500
    r = httpx.post(f"{app.url}/v1/chat/completions", json={**CHAT, "character": "Bomb"}, timeout=60)
    print(f"character bomb: {r.status_code} {r.text[:300]}")
    assert 400 <= r.status_code < 500 and error_of(r, r.status_code)
    still_serving(app)


def test_a_settings_file_alias_bomb_stops_start_up_with_a_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.yaml").write_text(billion_laughs())
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "--data-dir", str(data)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    print(f"\nsettings.yaml bomb: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    assert "settings.yaml" in result.stderr and "aliases" in result.stderr
