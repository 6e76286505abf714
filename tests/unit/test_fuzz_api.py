"""Property-based fuzzing of the API's JSON bodies, in process (the routers and the request-limit
middleware on the fake backend): every body gets a 2xx or a 4xx with the OpenAI-shaped error body,
never a 5xx. ``python bench/fuzz.py --only api`` runs the same strategy at scale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support import fuzz_api as fa


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with fa.api_client(tmp_path_factory.mktemp("fuzz-api")) as test_client:
        yield test_client


def test_every_body_gets_a_2xx_or_a_4xx_json_error(client: Any) -> None:
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fa.api_requests())
    def check(item: tuple[str, bytes]) -> None:
        kind, detail = fa.post(client, item)
        seen.add(kind)
        assert kind != fa.OTHER, detail

    check()
    assert seen == {fa.LOADED, fa.USER_ERROR}, seen


@pytest.mark.parametrize("path", sorted(fa.API_BODIES))
def test_each_valid_body_is_answered(client: Any, path: str) -> None:
    kind, detail = fa.post(client, (path, json.dumps(fa.API_BODIES[path]).encode()))
    assert kind == fa.LOADED, detail


def test_outcome_rules() -> None:
    """api_outcome itself: a 500, a 4xx without the error shape, or HTML are OTHER."""
    good = b'{"error": {"message": "m", "type": "t", "param": null, "code": null}}'
    assert fa.api_outcome(200, "application/json", b"{}") == fa.LOADED
    assert fa.api_outcome(400, "application/json", good) == fa.USER_ERROR
    assert fa.api_outcome(400, "application/json", b'{"error": "m"}') == fa.USER_ERROR  # Ollama's shape
    assert fa.api_outcome(400, "application/json", b'{"error": ""}') == fa.OTHER
    assert fa.api_outcome(500, "application/json", good) == fa.OTHER
    assert fa.api_outcome(400, "application/json", b'{"detail": "x"}') == fa.OTHER
    assert fa.api_outcome(400, "text/html", good) == fa.OTHER


def test_a_deeply_nested_body_is_a_400_before_parsing(client: Any) -> None:
    for path in sorted(fa.API_BODIES):
        response = client.post(path, content=b"[" * 100_000 + b"]" * 100_000,
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]  # Ollama's {"error": "..."} under /api/, OpenAI's shape elsewhere
        assert "nested deeper" in error if path.startswith("/api/") else error["code"] == "json_too_deep"
