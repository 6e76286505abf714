"""Ollama-compatible routes: GET /api/tags, POST /api/chat, POST /api/generate, POST /api/show, GET /api/ps.

Streaming (Ollama's default, ``"stream": true``) is NDJSON: one JSON object per line, the last with
``"done": true``, ``done_reason``, token counts and durations in nanoseconds. Errors are Ollama's
``{"error": "message"}`` (``webui.api.errors.error_response``). Bodies are ``webui.api.protocol``'s
models; ``webui.api.serving`` starts the reply and ``webui.api.encoders`` writes it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from webui.api import encoders, serving
from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of, resolve_model
from webui.api.protocol import OllamaChatRequest, OllamaErrorResponse, OllamaGenerateRequest, OllamaShowRequest
from webui.context import AppContext

router = APIRouter(
    prefix="/api",
    tags=["Ollama-compatible"],
    dependencies=[Depends(require_principal)],
    responses={code: {"model": OllamaErrorResponse} for code in (400, 401, 404, 429, 503, 507)},
)


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


def _digest(ctx: AppContext) -> str:
    spec = ctx.engine.spec
    return hashlib.sha256((spec.path if spec else "").encode()).hexdigest()


def _details(ctx: AppContext) -> dict[str, Any]:
    spec = ctx.engine.spec
    path = Path(spec.path) if spec else None
    fmt = "gguf" if path is not None and path.suffix.lower() == ".gguf" else "safetensors"
    return {"parent_model": "", "format": fmt, "family": "", "families": None, "parameter_size": "",
            "quantization_level": ""}


def _model_entry(ctx: AppContext, name: str) -> dict[str, Any]:
    spec = ctx.engine.spec
    path = Path(spec.path) if spec else None
    exists = path is not None and path.exists()
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) if exists else datetime.now(timezone.utc)
    size = ctx.engine.load_info.footprint_bytes if ctx.engine.load_info else 0
    return {
        "name": name, "model": name, "modified_at": modified.isoformat().replace("+00:00", "Z"),
        "size": size, "digest": _digest(ctx), "details": _details(ctx),
    }


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
    model = ctx.engine.model_info
    entry = _model_entry(ctx, ctx.engine.model_name)
    entry.update(expires_at="9999-12-31T23:59:59Z", size_vram=0, context_length=model.context_length if model else 0)
    return {"models": [entry]}


@router.post("/show", summary="Model details")
def show(req: OllamaShowRequest, request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    name = resolve_model(ctx, req.model or req.name)
    model = ctx.engine.model_info
    info = ctx.engine.load_info
    return {
        "modelfile": f"FROM {ctx.engine.spec.path if ctx.engine.spec else name}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _details(ctx),
        "model_info": {
            "general.name": name,
            "general.loader": info.loader if info else "",
            "context_length": model.context_length if model else 0,
        },
        "capabilities": ["completion"],
        "modified_at": _model_entry(ctx, name)["modified_at"],
    }


async def _respond(reply: serving.ServedReply, stream: bool, field: str) -> Any:
    """NDJSON lines (or one answer) for a started reply; ``field`` is "message" or "response"."""
    model = reply.meta.model
    if reply.progress is None:
        return JSONResponse(encoders.ollama_loaded(model, field))
    if stream:
        lines = encoders.ollama_lines(reply.progress, model, field, reply.started)
        return StreamingResponse(lines, media_type=encoders.NDJSON)
    done = await serving.collect(reply.progress)
    return JSONResponse(encoders.ollama_body(model, field, reply.started, done.first_at, done.last))


@router.post("/chat", summary="Chat (NDJSON stream unless stream=false)")
async def chat(req: OllamaChatRequest, request: Request, principal: Principal = Depends(require_principal)) -> Any:
    return await _respond(serving.start_ollama_chat(request, req, principal), req.stream, "message")


@router.post("/generate", summary="Complete a prompt (NDJSON stream unless stream=false)")
async def generate(
    req: OllamaGenerateRequest, request: Request, principal: Principal = Depends(require_principal)
) -> Any:
    return await _respond(serving.start_ollama_generate(request, req, principal), req.stream, "response")
