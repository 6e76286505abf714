"""Bad request values on every API route of the real server (``python app.py``, the embedded GGUF):
each is a 400 whose message names the field, in OpenAI's error shape on /v1 and Ollama's
(``{"error": "..."}``) on /api, never a 422 or a 500; the kept-alive connection still serves the next
request. The values are SillyTavern's kinds of mistakes (a number typed as text, a negative top_k, an
unknown sampler name, logit_bias keyed by words) and plain wrong shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server_utils import RunningApp, served_app

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "Hi"}]
# Sampler fields under their text-generation-webui / OpenAI names: (field, bad value, text the message must hold)
SAMPLER_VALUES: list[tuple[str, Any, str]] = [
    ("temperature", "hot", "temperature"),
    ("top_k", -1, "top_k"),
    ("top_p", 2, "top_p"),
    ("min_p", "x", "min_p"),
    ("max_tokens", 0, "max_tokens"),
    ("seed", "random", "seed"),
    ("stop", 5, "stop"),
    ("mirostat_mode", 7, "mirostat_mode"),
    ("tfs", 5, "tfs"),
    ("dry_allowed_length", "many", "dry_allowed_length"),
    ("dry_sequence_breakers", 5, "dry_sequence_breakers"),
    ("custom_token_bans", "a,b", "custom_token_bans"),
    ("sampler_priority", ["top_k", "warp_drive"], "warp_drive"),
    ("logit_bias", {"hello": 5}, "logit_bias"),
    ("logit_bias", {"5": 500}, "logit_bias"),
    ("logit_bias", [1, 2], "logit_bias"),
    ("rep_pen", "high", "rep_pen"),  # SillyTavern's alias of repetition_penalty
    ("samplers", "dry", "samplers"),
    ("temperature", float("nan"), "temperature"),
    ("dry_penalty_last_n", -5, "dry_penalty_last_n"),
]
# Ollama's option names: (option, bad value)
OLLAMA_VALUES: list[tuple[str, Any]] = [
    ("temperature", "hot"), ("top_k", -1), ("top_p", 2), ("num_predict", "lots"), ("seed", "x"),
    ("stop", 5), ("mirostat", 7), ("repeat_penalty", 0),
]
OPENAI_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/completions": {"prompt": "Hi", "max_tokens": 2},
    "/v1/completions (stream)": {"prompt": "Hi", "max_tokens": 2, "stream": True},
    "/v1/chat/completions": {"messages": CHAT, "max_tokens": 2},
    "/v1/chat/completions (stream)": {"messages": CHAT, "max_tokens": 2, "stream": True},
    "/v1/internal/logits": {"prompt": "Hi", "use_samplers": True},
    "/v1/internal/chat-prompt": {"messages": CHAT},
}
# Other body fields of the OpenAI and internal routes: (path, body, text the message must hold)
FIELD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/chat/completions", {"messages": []}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "role"),
    ("/v1/chat/completions", {"messages": CHAT, "logprobs": "yes please"}, "logprobs"),
    ("/v1/completions", {"prompt": 5}, "prompt"),
    ("/v1/completions", {"prompt": "Hi", "logprobs": 50}, "logprobs"),
    ("/v1/internal/encode", {"text": 5}, "text"),
    ("/v1/internal/token-count", {}, "text"),
    ("/v1/internal/decode", {"tokens": "abc"}, "tokens"),
    ("/v1/internal/logits", {"prompt": "Hi", "top_logits": 0}, "top_logits"),
    ("/v1/internal/chat-prompt", {"messages": "Hi"}, "messages"),
    ("/v1/internal/model/load", {"model_name": ""}, "model_name"),
    ("/v1/internal/model/load", {"model_name": "x", "args": "fast"}, "args"),
    ("/v1/internal/lora/load", {"lora_names": "alpha"}, "lora_names"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    yield from served_app(tmp_path_factory, "bad-values")


@pytest.fixture(scope="module")
def client(app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=120) as c:
        yield c


def local_port(response: httpx.Response) -> int:
    """The client side's port of the connection the response came on (the same port: the same connection)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def refused(client: httpx.Client, path: str, body: Any, expect: str) -> None:
    """``body`` to ``path`` is a 400 naming ``expect`` in the route's error shape, and the same
    kept-alive connection answers the next request."""
    response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 400, (path, body, response.status_code, response.text)
    assert "close" not in response.headers.get("connection", "").lower(), response.headers
    error = response.json()["error"]
    if path.startswith("/api/"):
        assert isinstance(error, str) and expect in error, (path, body, error)
    else:
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["type"] == "invalid_request_error" and expect in error["message"], (path, body, error)
    after = client.get("/v1/internal/health")
    assert after.status_code == 200 and local_port(after) == local_port(response), "the connection was not kept"


@pytest.mark.parametrize("route", sorted(OPENAI_ROUTES))
def test_bad_sampler_values_are_400_naming_the_field(client: httpx.Client, route: str) -> None:
    path = route.split(" ")[0]
    for field, value, expect in SAMPLER_VALUES:
        refused(client, path, {**OPENAI_ROUTES[route], field: value}, expect)


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_bad_ollama_options_are_400_in_ollamas_shape(client: httpx.Client, path: str) -> None:
    base: dict[str, Any] = {"model": "default", "stream": False}
    base.update({"prompt": "Hi"} if path == "/api/generate" else {"messages": CHAT})
    for option, value in OLLAMA_VALUES:
        refused(client, path, {**base, "options": {option: value}}, f"options.{option}")
        refused(client, path, {**base, "stream": True, "options": {option: value}}, f"options.{option}")
    refused(client, path, {**base, "options": "hot"}, "options")
    refused(client, path, {**base, "stream": "maybe"}, "stream")


@pytest.mark.parametrize(("path", "body", "expect"), FIELD_VALUES, ids=[f"{p} {e}" for p, _, e in FIELD_VALUES])
def test_bad_body_fields_are_400_naming_the_field(client: httpx.Client, path: str, body: dict[str, Any],
                                                  expect: str) -> None:
    refused(client, path, body, expect)


def test_good_requests_still_answer_after_the_refusals(client: httpx.Client) -> None:
    """SillyTavern's comma-separated DRY breakers and priority list are read as lists (as upstream does),
    and a real generation runs on the connection the refusals used."""
    refused(client, "/v1/completions", {"prompt": "Hi", "temperature": "hot"}, "temperature")
    body = {"prompt": "The capital of France is", "max_tokens": 3, "temperature": 0, "dry_multiplier": 0.8,
            "dry_sequence_breakers": '"\\n", ":", "*"', "sampler_priority": "top_k\nmin_p\ntemperature"}
    answer = client.post("/v1/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["text"] and "x-ignored-params" not in answer.headers
    plain = client.post("/v1/completions", json={**body, "dry_sequence_breakers": "a, b,c"})
    assert plain.status_code == 200, plain.text
    ollama = client.post("/api/generate", json={"model": "default", "prompt": "Hi", "stream": False,
                                                "options": {"num_predict": 2, "temperature": 0}})
    assert ollama.status_code == 200 and ollama.json()["done"], ollama.text
