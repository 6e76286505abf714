"""A local OpenAI-compatible server that streams back ``echo: <last user message>``.

A stand-in for the remote engine (vLLM, llama.cpp server ...) behind app instances started with
``--model URL``: every reply is known from its request, so a test can check that each stored reply
belongs to its turn.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from tests.support.server_utils import free_port

MODEL = "echo"


def echo_reply(body: dict[str, Any]) -> str:
    """The reply to a chat or completion request body."""
    users = [m.get("content") for m in body.get("messages") or [] if m.get("role") == "user"]
    if users:
        last = users[-1]
        return "echo: " + (last if isinstance(last, str) else json.dumps(last))
    return "echo: " + str(body.get("prompt", "")).rstrip().rsplit("\n", 1)[-1]


def make_app(requests: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    async def stream(text: str, chat: bool) -> AsyncIterator[str]:
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            yield f"data: {json.dumps({'choices': [choice]})}\n\n"
        final = {"index": 0, "delta": {}, "finish_reason": "stop"} if chat else {"index": 0, "text": "",
                                                                               "finish_reason": "stop"}
        yield f"data: {json.dumps({'choices': [final]})}\n\n"
        yield "data: [DONE]\n\n"

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> StreamingResponse:
        body = await request.json()
        requests.append(body)
        return StreamingResponse(stream(echo_reply(body), chat=True), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> StreamingResponse:
        body = await request.json()
        requests.append(body)
        return StreamingResponse(stream(echo_reply(body), chat=False), media_type="text/event-stream")

    return app


@contextmanager
def echo_upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve the echo server on 127.0.0.1 in a thread: its ``/v1`` URL and the request bodies it got."""
    requests: list[dict[str, Any]] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(requests), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("the echo upstream did not start")
    try:
        yield f"http://127.0.0.1:{port}/v1", requests
    finally:
        server.should_exit = True
        thread.join(timeout=10)
