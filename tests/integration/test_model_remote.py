"""The remote loader against a local OpenAI-compatible server that streams SSE (started by the test)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.support.server_utils import free_port
from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec
from webui.engine.remote_backend import RemoteError, api_base
from webui.errors import ModelLoadError
from webui.generation.params import GenerationParams

WORDS = ["Hello", " from", " the", " remote", " server", "."]


@dataclass
class ServerState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    chunks_sent: int = 0
    closed_early: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0
    n_words: int = len(WORDS)


def make_server(state: ServerState, key: str | None = "sk-test") -> FastAPI:
    app = FastAPI()

    def authorized(request: Request) -> bool:
        return key is None or request.headers.get("authorization") == f"Bearer {key}"

    @app.get("/v1/models")
    def models(request: Request) -> Any:
        if not authorized(request):
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        return {
            "object": "list", "data": [{"id": "tiny-remote", "object": "model"}, {"id": "other", "object": "model"}]
        }

    async def stream(body: dict[str, Any], chat: bool) -> Any:
        try:
            for i in range(state.n_words):
                word = WORDS[i % len(WORDS)]
                choice = {"index": 0, "delta": {"content": word}} if chat else {"index": 0, "text": word}
                state.chunks_sent += 1
                yield f"data: {json.dumps({'choices': [choice]})}\n\n"
                await asyncio.sleep(state.delay)
            final = (
                {"index": 0, "delta": {}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": "", "finish_reason": "stop"}
            )
            yield f"data: {json.dumps({'choices': [final], 'usage': {'prompt_tokens': 7}})}\n\n"
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            state.closed_early.set()
            raise

    async def completion(request: Request, chat: bool) -> Any:
        if not authorized(request):
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        if body.get("model") == "broken":
            return JSONResponse({"error": {"message": "model broken is not loaded"}}, status_code=404)
        return StreamingResponse(stream(body, chat), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await completion(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await completion(request, chat=False)

    return app


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    port = free_port()
    config = uvicorn.Config(make_server(state), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}", state
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine()
    yield engine
    engine.shutdown()


def test_api_base_normalisation() -> None:
    assert api_base("http://h:8000") == "http://h:8000/v1"
    assert api_base("http://h:8000/v1/") == "http://h:8000/v1"
    assert api_base("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"
    with pytest.raises(ModelLoadError, match="not a server URL"):
        api_base("localhost:8000")


def test_remote_chat_streams_with_key_and_picks_first_model(server: tuple[str, ServerState], engine: Engine) -> None:
    url, state = server
    info = engine.load(ModelSpec(url, "remote", {"remote_api_key": "sk-test", "context_length": 2048}))
    model = engine.model_info
    assert info.loader == "remote" and model.name.startswith("tiny-remote @ 127.0.0.1")
    assert model.context_length == 2048
    assert model.vocab_size is None and model.footprint_bytes == 0  # no tokenizer, nothing held here
    messages = [{"role": "user", "content": "hi"}]
    params = GenerationParams(temperature=0.5, max_new_tokens=20, seed=3, top_k=5)
    handle = engine.generate(engine.format_chat(messages), params)
    deltas = list(handle)
    assert "".join(deltas) == "".join(WORDS) and len(deltas) == len(WORDS)
    assert handle.stats.finish_reason == "stop" and handle.stats.completion_tokens == len(WORDS)
    body = state.requests[-1]
    assert body["model"] == "tiny-remote" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["max_tokens"] == 20 and body["seed"] == 3 and body["top_k"] == 5
    assert "min_p" not in body  # neutral extensions are not sent
    assert state.headers[-1]["authorization"] == "Bearer sk-test"


def test_prompt_rendered_by_the_model_goes_to_chat_other_text_to_completions(
    server: tuple[str, ServerState], engine: Engine
) -> None:
    url, state = server
    engine.load(ModelSpec(url, "remote", {"remote_api_key": "sk-test", "remote_model": "other"}))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    prompt = engine.format_chat(messages)
    assert engine.count_tokens(prompt) > 0
    assert engine.generate(prompt, GenerationParams()).text() == "".join(WORDS)
    assert state.requests[-1]["messages"] == messages and state.requests[-1]["model"] == "other"
    assert engine.generate("Once upon a time", GenerationParams()).text() == "".join(WORDS)
    assert state.requests[-1]["prompt"] == "Once upon a time"


def test_cancel_closes_the_stream(server: tuple[str, ServerState], engine: Engine) -> None:
    url, state = server
    state.delay, state.n_words = 0.05, 400
    engine.load(ModelSpec(url, "remote", {"remote_api_key": "sk-test"}))
    prompt = engine.format_chat([{"role": "user", "content": "talk"}])
    handle = engine.generate(prompt, GenerationParams(max_new_tokens=1000))
    got = []
    for delta in handle:
        got.append(delta)
        if len(got) == 3:
            handle.cancel()
    assert handle.stats.finish_reason == "cancelled" and len(got) < 10
    assert state.closed_early.wait(10), "the server never saw the connection close"
    assert state.chunks_sent < 60


def test_error_paths_are_clear(server: tuple[str, ServerState], engine: Engine) -> None:
    url, _ = server
    with pytest.raises(ModelLoadError, match="refused the API key"):
        engine.load(ModelSpec(url, "remote", {"remote_api_key": "wrong"}))
    with pytest.raises(ModelLoadError, match="Cannot reach the remote server"):
        engine.load(ModelSpec(f"http://127.0.0.1:{free_port()}/v1", "remote", {"timeout": 3}))
    engine.load(ModelSpec(url, "remote", {"remote_api_key": "sk-test", "remote_model": "broken"}))
    handle = engine.generate(engine.format_chat([{"role": "user", "content": "hi"}]), GenerationParams())
    with pytest.raises(RemoteError, match="model broken is not loaded"):
        handle.text()
    assert handle.stats.finish_reason == "error"
    engine.unload()
    assert engine.model is None


def test_remote_through_the_chat_service(server: tuple[str, ServerState], engine: Engine, repo, characters) -> None:  # type: ignore[no-untyped-def]
    from webui.chat.service import ChatService

    url, state = server
    engine.load(ModelSpec(url, "remote", {"remote_api_key": "sk-test"}))
    service = ChatService(engine, repo, characters)
    conv = service.new_conversation()
    *_, last = list(service.send(conv.id, "Hello?", GenerationParams(max_new_tokens=32)))
    assert last.done and last.text == "".join(WORDS)
    assert state.requests[-1]["messages"][-1] == {"role": "user", "content": "Hello?"}
