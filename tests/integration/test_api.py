"""The OpenAI- and Ollama-compatible API against the real server (`python app.py`) and model.

The official ``openai`` client for the happy paths, httpx for error shapes and raw streams.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.server_utils import RunningApp, served_app

pytestmark = pytest.mark.slow

ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    yield from served_app(tmp_path_factory, "api")


@pytest.fixture
def client(app: RunningApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0, timeout=120)


def assert_error(resp: httpx.Response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) == ERROR_KEYS and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


def test_models_lists_the_loaded_model(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids == ["SmolLM2-135M-Instruct (embedded)"]
    assert client.models.retrieve("default").id == ids[0]


def test_chat_completion_non_streaming(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Name a color."}], max_tokens=12, temperature=0
    )
    assert r.object == "chat.completion" and r.model == "SmolLM2-135M-Instruct (embedded)"
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_completion_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="SmolLM2-135M-Instruct (embedded)",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Count to twenty."}],
        max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) >= 3, "the reply arrives in several chunks"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24
    # Same request without streaming, greedy: the same text.
    full = client.chat.completions.create(
        model="default",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Count to twenty."}],
        max_tokens=24, temperature=0,
    )
    assert "".join(content) == full.choices[0].message.content


def test_stop_seed_and_max_tokens(client: openai.OpenAI) -> None:
    msgs = [{"role": "user", "content": "Write the numbers from 1 to 30 separated by commas."}]
    stopped = client.chat.completions.create(model="default", messages=msgs, max_tokens=80, temperature=0, stop=["5"])
    assert "5" not in stopped.choices[0].message.content and stopped.choices[0].finish_reason == "stop"
    a = client.chat.completions.create(model="default", messages=msgs, max_tokens=20, temperature=1.5, seed=1234)
    b = client.chat.completions.create(model="default", messages=msgs, max_tokens=20, temperature=1.5, seed=1234)
    assert a.choices[0].message.content == b.choices[0].message.content


def test_logit_bias_forces_a_token(client: openai.OpenAI) -> None:
    # Token 100 of SmolLM2's vocabulary; +100 makes it win every step.
    r = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=4, logit_bias={"100": 100})
    plain = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "Hi"}],
                                           max_tokens=4, temperature=0)
    text = r.choices[0].message.content
    assert len(set(text)) == 1 and len(text) == 4, text
    assert plain.choices[0].message.content != text


def test_extra_body_parameters(client: openai.OpenAI, app: RunningApp) -> None:
    r = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Who are you?"}], max_tokens=8,
        extra_body={
            "top_k": 1, "repetition_penalty": 1.1, "character": "Assistant", "mode": "chat", "no_such_param": 1
        },
    )
    assert r.choices[0].message.content.strip()
    resp = httpx.post(f"{app.url}/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "no_such_param": 1, "top_k": 3})
    assert resp.status_code == 200 and resp.headers["x-ignored-params"] == "no_such_param"
    assert_error(httpx.post(f"{app.url}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "x"}], "character": "Nobody"}),
        404, "character_not_found", "character")
    assert_error(httpx.post(f"{app.url}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "x"}], "mode": "telepathy"}), 400, param="mode")
    assert_error(httpx.post(f"{app.url}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "x"}], "preset": "No Such Preset"}), 404, param="preset")


def test_text_completion_streaming_and_not(client: openai.OpenAI) -> None:
    r = client.completions.create(model="default", prompt="The capital of France is", max_tokens=6, temperature=0)
    assert r.object == "text_completion" and "Paris" in r.choices[0].text
    assert r.usage.completion_tokens == 6
    chunks = list(client.completions.create(model="default", prompt="The capital of France is", max_tokens=6,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == r.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_error_shapes(app: RunningApp, client: openai.OpenAI) -> None:
    url = f"{app.url}/v1/chat/completions"
    assert_error(
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_json"
    )
    assert_error(httpx.post(url, json={"messages": []}), 400, param="messages")
    assert_error(httpx.post(url, json={"messages": [{"role": "wizard", "content": "x"}]}), 400)
    assert_error(httpx.post(url, json={"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}), 400)
    assert_error(httpx.post(url, json={"messages": [{"role": "user", "content": "x"}], "n": 2}), 400, param="n")
    assert_error(
        httpx.post(url, json={"messages": [{"role": "user", "content": "x"}], "logit_bias": {"x": 1}}),
        400, param="logit_bias",
    )
    assert_error(
        httpx.post(url, json={"messages": [{"role": "user", "content": "x"}], "logit_bias": {"99999999": 1}}),
        400, param="logit_bias",
    )
    assert_error(
        httpx.post(url, json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        404, "model_not_found", "model",
    )
    assert_error(httpx.post(f"{app.url}/v1/completions", json={"prompt": ["a", "b"]}), 400, param="prompt")
    assert_error(httpx.get(f"{app.url}/v1/chat/completions"), 405)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "model_not_found"
    # The server is still serving.
    assert httpx.get(f"{app.url}/v1/models").status_code == 200


def test_disconnect_stops_the_generation(app: RunningApp) -> None:
    """A client that goes away mid-stream frees the worker: the next request is not stuck behind it."""
    body = {"messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 3000, "stream": True}
    with httpx.stream("POST", f"{app.url}/v1/chat/completions", json=body, timeout=60) as resp:
        lines = resp.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any('"content"' in line for line in got)
    # 3000 tokens at this model's speed would take >15 s; a cancelled one leaves the worker at once.
    start = time.monotonic()
    r = httpx.post(f"{app.url}/v1/chat/completions", timeout=60,
                   json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert r.status_code == 200
    assert time.monotonic() - start < 8, "the abandoned generation kept the worker busy"
    assert "generation stopped" in app.log() or "stopping its generation" in app.log()


def test_saving_api_chats_is_opt_in(app: RunningApp, client: openai.OpenAI) -> None:
    import sqlite3

    def titles() -> list[str]:
        db = sqlite3.connect(app.data_dir / "webui.db")
        try:
            return [r[0] for r in db.execute("select title from conversations order by id")]
        finally:
            db.close()

    before = titles()
    client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Not saved please"}], max_tokens=3
    )
    assert titles() == before
    raw = client.chat.completions.with_raw_response.create(
        model="default", messages=[{"role": "user", "content": "Remember the word kiwi"}], max_tokens=5,
        extra_body={"save": True})
    conv_id = int(raw.headers["x-conversation-id"])
    assert titles() == before + ["Remember the word kiwi"]
    r = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "What word?"}],
                                       max_tokens=5, extra_body={"conversation_id": conv_id})
    assert r.choices[0].message.content
    db = sqlite3.connect(app.data_dir / "webui.db")
    try:
        contents = [row[0] for row in db.execute(
            "select v.content from messages m join message_versions v on v.message_id = m.id "
            "where m.conversation_id = ? order by m.position", (conv_id,))]
    finally:
        db.close()
    assert contents[0] == "Remember the word kiwi" and contents[2] == "What word?" and len(contents) == 4
    assert contents[3] == r.choices[0].message.content
    assert_error(httpx.post(f"{app.url}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "x"}], "conversation_id": 999999}), 404, "conversation_not_found")


# -- Ollama ---------------------------------------------------------------------------------


def test_ollama_tags_ps_show(app: RunningApp) -> None:
    tags = httpx.get(f"{app.url}/api/tags").json()["models"]
    assert [m["name"] for m in tags] == ["SmolLM2-135M-Instruct (embedded)"]
    assert tags[0]["details"]["format"] == "gguf" and tags[0]["size"] > 0
    ps = httpx.get(f"{app.url}/api/ps").json()["models"]
    assert ps[0]["name"] == tags[0]["name"] and ps[0]["context_length"] > 0
    show = httpx.post(f"{app.url}/api/show", content=json.dumps({"model": tags[0]["name"]})).json()
    assert show["model_info"]["general.loader"] == "llama.cpp"
    unknown = httpx.post(f"{app.url}/api/show", json={"model": "llama3"})
    assert unknown.status_code == 404 and "'llama3' does not exist" in unknown.json()["error"]  # Ollama's shape


def test_ollama_chat_streams_ndjson(app: RunningApp) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": "Count to ten."}],
            "options": {"num_predict": 10, "temperature": 0}}
    # Ollama's docs post JSON without a content type; it streams by default.
    with httpx.stream("POST", f"{app.url}/api/chat", content=json.dumps(body), timeout=60) as resp:
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in resp.iter_lines() if line]
    assert len(lines) >= 3 and all(not line["done"] for line in lines[:-1])
    final = lines[-1]
    assert final["done"] and final["done_reason"] == "length" and final["eval_count"] == 10
    assert final["prompt_eval_count"] > 0 and final["total_duration"] >= final["eval_duration"] > 0
    text = "".join(line["message"]["content"] for line in lines)
    once = httpx.post(f"{app.url}/api/chat", json={**body, "stream": False}, timeout=60).json()
    assert once["done"] and once["message"]["content"] == text


def test_ollama_generate(app: RunningApp) -> None:
    r = httpx.post(f"{app.url}/api/generate", timeout=60, json={
        "model": "default", "prompt": "The capital of France is", "raw": True, "stream": False,
        "options": {"num_predict": 5, "temperature": 0}}).json()
    assert r["done"] and "Paris" in r["response"] and r["eval_count"] == 5
    with httpx.stream("POST", f"{app.url}/api/generate", timeout=60, json={
            "model": "default", "prompt": "Say hello", "system": "Be brief.", "options": {"num_predict": 6}}) as resp:
        lines = [json.loads(line) for line in resp.iter_lines() if line]
    assert lines[-1]["done"] and lines[-1]["eval_count"] <= 6
    assert "".join(line["response"] for line in lines).strip()
    refused = httpx.post(f"{app.url}/api/generate", json={"prompt": "x", "options": {"temperature": -1}})
    assert refused.status_code == 400 and "options.temperature" in refused.json()["error"]  # Ollama's shape


def test_concurrent_requests_all_answer(app: RunningApp) -> None:
    """Several clients at once are queued on the one worker and all get their own reply."""
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        r = httpx.post(f"{app.url}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": f"Say the number {i}."}], "max_tokens": 8})
        results[i] = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else f"HTTP {r.status_code}"

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and not any(v.startswith("HTTP") for v in results.values()), results


def test_openapi_schema_documents_v1(app: RunningApp, tmp_path: Path) -> None:
    schema = httpx.get(f"{app.url}/openapi.json").json()
    assert {"/v1/models", "/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"} <= set(
        schema["paths"]
    )
