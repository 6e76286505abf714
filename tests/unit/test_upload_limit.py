"""The web UI's file uploads are bounded by --max-upload-mb (``max_file_size`` given to Gradio): they
skip --max-request-mb (webui/api/limits.py), so without it an upload could be any size."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.ui_context import ui_context
from webui.server import create_app


def test_an_upload_over_max_upload_mb_is_refused(tmp_path: Path, fake_backend: None) -> None:
    with ui_context(tmp_path / "data", max_upload_mb=1, max_request_mb=1) as ctx:
        client = TestClient(create_app(ctx))
        small = client.post("/gradio_api/upload", files={"files": ("a.zip", b"x" * 1000)})
        assert small.status_code == 200, small.text
        big = client.post("/gradio_api/upload", files={"files": ("b.zip", b"x" * (2**20 + 4096))})
        assert big.status_code == 413, big.text
        # and the limit is the setting's, not --max-request-mb's
    with ui_context(tmp_path / "data2", max_upload_mb=3, max_request_mb=1) as ctx:
        client = TestClient(create_app(ctx))
        assert client.post("/gradio_api/upload", files={"files": ("c.zip", b"x" * (2 * 2**20))}).status_code == 200
