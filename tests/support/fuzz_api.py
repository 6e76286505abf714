"""Hostile API requests, shared by ``tests/unit/test_fuzz_api.py`` and ``bench/fuzz.py``: mutated
bodies for every POST route, and a TestClient on the API routers with the real request-limit
middleware on the fake backend. An answer is LOADED (2xx), USER_ERROR (a 4xx with the OpenAI-shaped
error body, or Ollama's ``{"error": "..."}``) or OTHER (anything else, a 5xx above all)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.support.fuzz_inputs import LOADED, OTHER, USER_ERROR, _json_text, json_files, mutated

API_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3,
                             "temperature": 0.5, "stop": ["\n"], "stream": False, "seed": 1, "top_k": 5},
    "/v1/completions": {"model": "default", "prompt": "Once", "max_tokens": 3, "echo": True, "stream": False},
    "/api/chat": {"model": "default", "messages": [{"role": "user", "content": "Hi"}], "stream": False,
                  "options": {"num_predict": 3, "temperature": 0.5, "stop": ["\n"]}},
    "/api/generate": {"model": "default", "prompt": "Once", "stream": False, "system": "s",
                      "options": {"num_predict": 3, "top_k": 4}},
    "/api/show": {"model": "default"},
    "/v1/internal/chat-prompt": {"messages": [{"role": "user", "content": "Hi"}], "mode": "instruct",
                                 "character": None, "persona": None},
}

def api_requests() -> st.SearchStrategy[tuple[str, bytes]]:
    """(path, body): mutated valid bodies for every POST route, random JSON, hostile texts, bytes."""
    paths = sorted(API_BODIES)
    mutated_bodies = st.sampled_from(paths).flatmap(
        lambda p: mutated(API_BODIES[p]).map(lambda body: (p, _json_text(body).encode("utf-8"))))
    others = st.tuples(st.sampled_from(paths), json_files(tuple(API_BODIES.values())))
    return st.one_of(mutated_bodies, mutated_bodies, others)


@contextmanager
def api_client(data_dir: Path) -> Iterator[Any]:
    """A TestClient on the API routers (no Gradio) with the real middleware, on the fake backend."""
    from fastapi.testclient import TestClient

    from webui.config import Settings
    from webui.context import build_context
    from webui.engine import registry
    from webui.engine.protocol import ModelSpec
    from webui.server import create_api_app

    had = registry.BACKENDS.get("fake")
    registry.BACKENDS["fake"] = "tests.support.fakes:FakeBackend"
    ctx = build_context(Settings(data_dir=data_dir), load_model=False)
    try:
        ctx.engine.load(ModelSpec(path="fake", loader="fake", display_name="fake", options={"tokens": ["a", "b"]}))
        app = create_api_app(ctx)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        ctx.engine.shutdown()
        if had is None:
            registry.BACKENDS.pop("fake", None)
        else:
            registry.BACKENDS["fake"] = had


def api_outcome(status: int, content_type: str, body: bytes) -> str:
    """LOADED for 2xx, USER_ERROR for a 4xx with the OpenAI-shaped error body, OTHER for the rest."""
    if 200 <= status < 300:
        return LOADED
    if 400 <= status < 500 and content_type.startswith("application/json"):
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return OTHER
        if isinstance(error, dict) and set(error) == {"message", "type", "param", "code"} and error["message"]:
            return USER_ERROR
        if isinstance(error, str) and error:  # Ollama's shape, under /api/
            return USER_ERROR
    return OTHER


def post(client: Any, item: tuple[str, bytes]) -> tuple[str, str]:
    """POST one fuzzed body; (outcome, a description for the report)."""
    path, body = item
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    kind = api_outcome(response.status_code, response.headers.get("content-type", ""), response.content)
    return kind, f"{path} -> {response.status_code} {response.text[:300]}"
