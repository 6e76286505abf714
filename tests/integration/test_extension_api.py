"""Hooks run for API requests as for the UI: the real app over HTTP with an extension enabled."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.server_utils import start_app

pytestmark = [pytest.mark.slow]


def test_output_and_input_modifiers_apply_to_api_replies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "extensions.json").write_text(json.dumps({"example": {"uppercase": True}}))
    app = start_app(data, "--extensions", "example")
    try:
        body = {"model": "default", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12,
                "temperature": 0}
        r = httpx.post(f"{app.url}/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        text = r.json()["choices"][0]["message"]["content"]
        assert any(c.isalpha() for c in text) and text == text.upper(), text

        r = httpx.post(f"{app.url}/v1/completions",
                       json={"model": "default", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0},
                       timeout=60)
        assert r.status_code == 200, r.text
        text = r.json()["choices"][0]["text"]
        assert any(c.isalpha() for c in text) and text == text.upper(), text
    finally:
        app.stop()
