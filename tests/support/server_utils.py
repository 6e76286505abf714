"""Start the real app (``python app.py``) in a subprocess for HTTP and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from webui.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    proc: subprocess.Popen
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_app(
    data_dir: Path, *args: str, port: int | None = None, env: dict | None = None, timeout: float = 90
) -> RunningApp:
    port = port or free_port()
    log_path = data_dir.parent / f"app-{port}-{time.monotonic_ns()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port), "--data-dir", str(data_dir), *args],
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    app = RunningApp(proc, port, data_dir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}:\n{app.log()}")
        try:
            if httpx.get(f"{app.url}/healthz", timeout=2).status_code == 200:
                return app
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    app.stop()
    raise RuntimeError(f"app did not start within {timeout}s:\n{app.log()}")


def served_app(tmp_path_factory, name: str, *args: str) -> Iterator[RunningApp]:  # type: ignore[no-untyped-def]
    """Body of a module-scoped ``app`` fixture: ``yield from served_app(tmp_path_factory, "api")``."""
    running = start_app(tmp_path_factory.mktemp(name) / "data", *args)
    try:
        yield running
    finally:
        running.stop()
