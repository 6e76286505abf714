"""Property-based fuzzing of /v1 and /api from their OpenAPI schema (schemathesis + hypothesis).

Runs in-process against the real FastAPI app (routers, error handlers, ChatService, the one
inference worker) with the fake backend, so thousands of bodies take seconds. Every response
must be a non-5xx, and every error must be OpenAI-shaped JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from webui.config import Settings
from webui.context import build_context
from webui.engine import registry
from webui.engine.protocol import ModelSpec


def _make_app(data_dir: Path):  # type: ignore[no-untyped-def]
    from webui.server import create_app

    ctx = build_context(Settings(data_dir=data_dir, max_queue=1000), load_model=False)
    ctx.engine.load(ModelSpec(path="fake", loader="fake", display_name="fake",
                              options={"tokens": ["Hello", " there", "!"] * 3, "context_length": 100000}))
    return ctx, create_app(ctx)


@pytest.fixture(scope="module")
def app_and_ctx(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The app on the fake backend, registered for this module only (a registration left behind would
    show up in every later test that lists loaders)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.BACKENDS, "fake", "tests.support.fakes:FakeBackend")
        ctx, app = _make_app(tmp_path_factory.mktemp("fuzz"))
        yield app
        ctx.engine.shutdown()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(app_and_ctx):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", app_and_ctx).include(path_regex=r"^/(v1|api)/")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_each_apis_error_shape(case) -> None:  # type: ignore[no-untyped-def]
    """No 500s; errors in OpenAI's shape under /v1 and in Ollama's (``{"error": "message"}``) under /api."""
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert isinstance(body, dict) and "error" in body, (
            case.method, case.path, response.status_code, response.text[:300]
        )
        if case.path.startswith("/api/"):
            assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, body
