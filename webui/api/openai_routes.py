"""OpenAI-compatible routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.

Thin: the body is validated against ``webui.api.protocol``, ``webui.api.serving`` starts the reply
(through ``ChatService``, the path the UI takes), ``webui.api.encoders`` writes it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from webui.api import encoders, serving
from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of, model_aliases, resolve_model
from webui.api.protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, ModelCard, ModelList, now

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 429, 503, 507)
}
router = APIRouter(
    prefix="/v1", tags=["OpenAI-compatible"], dependencies=[Depends(require_principal)], responses=ERRORS
)


def _event_stream(events: Any, headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={**encoders.SSE_HEADERS, **headers})


@router.get("/models", response_model=ModelList, summary="The models that answer requests")
def list_models(request: Request) -> ModelList:
    created = now()
    return ModelList(data=[ModelCard(id=name, created=created) for name in model_aliases(ctx_of(request))[:1]])


@router.get("/models/{model_id:path}", response_model=ModelCard, summary="One model")
def get_model(model_id: str, request: Request) -> ModelCard:
    return ModelCard(id=resolve_model(ctx_of(request), model_id), created=now())


@router.post("/chat/completions", summary="Chat completion (streaming with stream=true)")
async def chat_completions(
    req: ChatCompletionRequest, request: Request, principal: Principal = Depends(require_principal)
) -> Any:
    reply = serving.start_chat_completion(request, req, principal)
    assert reply.progress is not None
    if req.stream:
        return _event_stream(encoders.chat_completion_events(reply.progress, reply.meta), reply.headers)
    done = await serving.collect(reply.progress)
    body = encoders.chat_completion_body(reply.meta, done.last, reply.conversation_id)
    return JSONResponse(body, headers=reply.headers)


@router.post("/completions", summary="Text completion of a raw prompt (streaming with stream=true)")
async def completions(req: CompletionRequest, request: Request) -> Any:
    reply = serving.start_completion(request, req)
    assert reply.progress is not None
    if req.stream:
        return _event_stream(encoders.completion_events(reply.progress, reply.meta, reply.echo), reply.headers)
    done = await serving.collect(reply.progress)
    return JSONResponse(encoders.completion_body(reply.meta, done.last, reply.echo), headers=reply.headers)
