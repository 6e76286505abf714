"""Ollama-compatible routes: GET /api/tags, POST /api/chat, POST /api/generate, POST /api/show, GET /api/ps.

Streaming (Ollama's default, ``"stream": true``) is NDJSON: one JSON object per line, the last with
``"done": true``, ``done_reason``, token counts and durations in nanoseconds. Errors use the same
OpenAI-shaped body as /v1 (``{"error": {"message", ...}}``).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from webui.api.auth import Principal, require_principal
from webui.api.common import build_params, cancel_on_close, check_capacity, ctx_of, iterate_in_thread, resolve_model
from webui.api.errors import APIError, error_body
from webui.api.openai_models import ErrorResponse
from webui.chat.service import ReplyProgress
from webui.context import AppContext
from webui.errors import UserFacingError

router = APIRouter(
    prefix="/api",
    tags=["Ollama-compatible"],
    dependencies=[Depends(require_principal)],
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 422, 429, 503)},
)

# Ollama option names -> this app's parameter names.
OPTION_NAMES = {
    "num_predict": "max_new_tokens",
    "repeat_penalty": "repetition_penalty",
    "repeat_last_n": "repetition_penalty_range",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
}


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = ""
    images: list[str] | None = None


class OllamaRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = ""
    stream: bool = True
    options: dict[str, Any] | None = None
    keep_alive: str | int | None = None
    format: Any = None


class ChatRequest(OllamaRequest):
    messages: list[OllamaMessage] = Field(default_factory=list)


class GenerateRequest(OllamaRequest):
    prompt: str = ""
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    name: str | None = None


class JSONBodyMiddleware:
    """Ollama's clients and docs (``curl -d '{...}'``) often omit ``Content-Type: application/json``:
    treat every POST body under /api/ as JSON, as Ollama does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/api/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _digest(ctx: AppContext) -> str:
    spec = ctx.engine.spec
    return hashlib.sha256((spec.path if spec else "").encode()).hexdigest()


def _details(ctx: AppContext) -> dict[str, Any]:
    spec = ctx.engine.spec
    path = Path(spec.path) if spec else None
    fmt = "gguf" if path is not None and path.suffix.lower() == ".gguf" else "safetensors"
    return {"parent_model": "", "format": fmt, "family": "", "families": None, "parameter_size": "", "quantization_level": ""}


def _model_entry(ctx: AppContext, name: str) -> dict[str, Any]:
    spec = ctx.engine.spec
    path = Path(spec.path) if spec else None
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) if path and path.exists() else datetime.now(timezone.utc)
    size = int(getattr(ctx.engine.load_info, "footprint_bytes", 0) or 0)
    return {
        "name": name, "model": name, "modified_at": modified.isoformat().replace("+00:00", "Z"),
        "size": size, "digest": _digest(ctx), "details": _details(ctx),
    }


def _params(ctx: AppContext, req: OllamaRequest) -> Any:
    if req.format not in (None, ""):
        raise APIError(400, "Structured output (format) is not supported.", param="format", code="unsupported_parameter")
    body: dict[str, Any] = {}
    for key, value in (req.options or {}).items():
        name = OPTION_NAMES.get(key)
        if name == "max_new_tokens" and isinstance(value, int) and value < 0:
            continue  # -1 / -2: "until done" -> the default limit
        if name is not None:
            body[name] = value
    return build_params(ctx, body)


def _final(model: str, started: float, first: float | None, prompt_tokens: int, completion_tokens: int, reason: str | None) -> dict[str, Any]:
    end = time.perf_counter()
    first = first or end
    return {
        "model": model, "created_at": _now_iso(), "done": True,
        "done_reason": "length" if reason == "length" else "stop",
        "total_duration": int((end - started) * 1e9), "load_duration": 0,
        "prompt_eval_count": prompt_tokens, "prompt_eval_duration": int((first - started) * 1e9),
        "eval_count": completion_tokens, "eval_duration": int((end - first) * 1e9),
    }


def _ndjson(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


async def _respond(
    request: Request, model: str, items: AsyncIterator[ReplyProgress], stream: bool, field: str
) -> Any:
    """Stream NDJSON (or answer once) from a progress iterator; ``field`` is "message" or "response"."""
    started = time.perf_counter()

    def piece(text: str) -> dict[str, Any]:
        if field == "message":
            return {"model": model, "created_at": _now_iso(), "message": {"role": "assistant", "content": text}, "done": False}
        return {"model": model, "created_at": _now_iso(), "response": text, "done": False}

    if not stream:
        last = ReplyProgress("")
        first: float | None = None
        try:
            async for last in items:
                first = first or time.perf_counter()
        except UserFacingError as exc:
            raise APIError(400, str(exc)) from exc
        final = _final(model, started, first, last.prompt_tokens, last.completion_tokens, last.finish_reason)
        return JSONResponse({**piece(last.text), **final})

    async def lines() -> AsyncIterator[str]:
        sent = ""
        first: float | None = None
        try:
            async for p in items:
                if p.text.startswith(sent) and len(p.text) > len(sent):
                    first = first or time.perf_counter()
                    yield _ndjson(piece(p.text[len(sent):]))
                    sent = p.text
                if p.done:
                    yield _ndjson({**piece(""), **_final(model, started, first, p.prompt_tokens, p.completion_tokens, p.finish_reason)})
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
            yield _ndjson(error_body(f"Generation failed: {exc}", "server_error", code="generation_error"))

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/version", summary="Server version (Ollama clients check it)")
def version() -> dict[str, str]:
    return {"version": "0.6.0"}


@router.get("/tags", summary="Local models")
def tags(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    if ctx.engine.model is None:
        return {"models": []}
    return {"models": [_model_entry(ctx, ctx.engine.model_name)]}


@router.get("/ps", summary="Models in memory")
def ps(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    if ctx.engine.model is None:
        return {"models": []}
    entry = _model_entry(ctx, ctx.engine.model_name)
    entry.update(expires_at="9999-12-31T23:59:59Z", size_vram=0, context_length=getattr(ctx.engine.model, "context_length", 0))
    return {"models": [entry]}


@router.post("/show", summary="Model details")
def show(req: ShowRequest, request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    name = resolve_model(ctx, req.model or req.name)
    model = ctx.engine.model
    info = ctx.engine.load_info
    return {
        "modelfile": f"FROM {ctx.engine.spec.path if ctx.engine.spec else name}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _details(ctx),
        "model_info": {
            "general.name": name,
            "general.loader": info.loader if info else "",
            "context_length": getattr(model, "context_length", 0),
        },
        "capabilities": ["completion"],
        "modified_at": _model_entry(ctx, name)["modified_at"],
    }


@router.post("/chat", summary="Chat (NDJSON stream unless stream=false)")
async def chat(req: ChatRequest, request: Request, principal: Principal = Depends(require_principal)) -> Any:
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    params = _params(ctx, req)
    if any(m.images for m in req.messages):
        raise APIError(400, "Images are not supported.", param="messages")
    if not req.messages:
        # Ollama answers an empty chat by loading the model: nothing to generate.
        return JSONResponse({"model": model, "created_at": _now_iso(), "message": {"role": "assistant", "content": ""},
                             "done": True, "done_reason": "load"})
    check_capacity(ctx)
    key = f"ollama:{uuid.uuid4().hex}"
    gen = ctx.chat.answer([(m.role, m.content) for m in req.messages], params, session_key=key, user_id=principal.user_id)
    return await _respond(request, model, iterate_in_thread(request, gen, lambda: ctx.chat.stop(key)), req.stream, "message")


def _completion_progress(completion: Any) -> Iterator[ReplyProgress]:
    text = ""
    for delta in cancel_on_close(completion.deltas(), completion.handle):
        text += delta
        yield ReplyProgress(text)
    stats = completion.handle.stats
    yield ReplyProgress(text, done=True, finish_reason=stats.finish_reason,
                        prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens)


@router.post("/generate", summary="Complete a prompt (NDJSON stream unless stream=false)")
async def generate(req: GenerateRequest, request: Request, principal: Principal = Depends(require_principal)) -> Any:
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    params = _params(ctx, req)
    if req.images:
        raise APIError(400, "Images are not supported.", param="images")
    if not req.prompt:
        return JSONResponse({"model": model, "created_at": _now_iso(), "response": "", "done": True, "done_reason": "load"})
    check_capacity(ctx)
    if req.raw:
        try:
            completion = ctx.chat.hooks.complete(ctx.engine, req.prompt, params)
        except UserFacingError as exc:
            raise APIError(400, str(exc)) from exc
        items = iterate_in_thread(request, _completion_progress(completion), completion.handle.cancel)
    else:
        # Not raw: the prompt is a user message, rendered with the model's chat template.
        key = f"ollama:{uuid.uuid4().hex}"
        messages = ([("system", req.system)] if req.system else []) + [("user", req.prompt)]
        gen = ctx.chat.answer(messages, params, session_key=key, user_id=principal.user_id)
        items = iterate_in_thread(request, gen, lambda: ctx.chat.stop(key))
    return await _respond(request, model, items, req.stream, "response")
