"""Bad request values in process (the API routers on the fake backend): a 400 naming the field as the
client sent it, OpenAI's error shape under /v1 and Ollama's ``{"error": "..."}`` under /api; never a 422.
``tests/integration/test_bad_request_values.py`` sends the full table to the real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import fuzz_api as fa
from webui.api.errors import APIError, error_response, invalid_request

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with fa.api_client(tmp_path_factory.mktemp("error-shapes")) as test_client:
        yield test_client


def openai_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize(("field", "value", "param"), [
    ("temperature", "hot", "temperature"),  # the body model's field
    ("dry_allowed_length", "many", "dry_allowed_length"),  # a GenerationParams field sent flat
    ("rep_pen", "high", "rep_pen"),  # an alias: named as sent
    ("sampler_priority", ["top_k", "warp_drive"], "sampler_priority"),
])
def test_a_bad_value_is_a_400_naming_the_field(client: Any, field: str, value: Any, param: str) -> None:
    for path, body in (("/v1/chat/completions", CHAT), ("/v1/completions", {"prompt": "Hi", "max_tokens": 2})):
        error = openai_error(client.post(path, json={**body, field: value}))
        assert error["param"] == param and param in error["message"] and error["code"] == "invalid_value"
    assert client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2}).status_code == 200


def test_ollama_routes_answer_in_ollamas_shape(client: Any) -> None:
    body = {"model": "default", "prompt": "Hi", "stream": False, "options": {"num_predict": "lots"}}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 400
    assert list(response.json()) == ["error"] and "options.num_predict" in response.json()["error"]
    missing = client.post("/api/nothing-here", json={})
    assert missing.status_code == 404 and missing.json() == {"error": "No API endpoint /api/nothing-here."}
    assert client.post("/v1/nothing-here", json={}).json()["error"]["code"] == "not_found"


def test_invalid_request_renames_fields_and_tells_bad_json_apart() -> None:
    errors = [{"loc": ("body", "max_new_tokens"), "msg": "Input should be a valid integer", "type": "int_parsing"}]
    renamed = invalid_request(errors, {"max_new_tokens": "options.num_predict"})
    assert (renamed.status, renamed.param, renamed.code) == (400, "options.num_predict", "invalid_value")
    assert renamed.message == "Invalid request: options.num_predict: Input should be a valid integer"
    bad_json = invalid_request([{"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"}])
    assert (bad_json.status, bad_json.param, bad_json.code) == (400, None, "invalid_json")
    assert error_response(APIError(400, "m"), "/api/chat").body == b'{"error":"m"}'
