"""OpenAI-compatible routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.

Thin: validate (``openai_models``), resolve model and parameters (``common``), then run the turn
through ``ChatService`` (chat) or ``Engine.generate`` (text completion), the same path the UI uses.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from webui.api.auth import Principal, require_principal
from webui.api.common import (
    build_params,
    check_capacity,
    check_logit_bias,
    ctx_of,
    cancel_on_close,
    iterate_in_thread,
    model_aliases,
    resolve_model,
)
from webui.api.errors import APIError, error_body
from webui.api.openai_models import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    SamplingFields,
    Usage,
    new_id,
    now,
    openai_finish_reason,
)
from webui.chat.characters import DEFAULT_CHARACTER
from webui.chat.prompt import MODES
from webui.chat.service import ReplyProgress
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import ALIASES
from webui.storage.repository import NotFound

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 422, 429, 503)
}
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=[Depends(require_principal)], responses=ERRORS)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _ignored(ctx: AppContext, req: SamplingFields) -> list[str]:
    """Extra body fields this server does not use (reported in X-Ignored-Params)."""
    known = set(GenerationParams.model_fields) | set(ALIASES) | {p.key for p in ctx.extensions.sampler_params()}
    return sorted(k for k in (req.model_extra or {}) if k not in known)


def _body(req: SamplingFields) -> dict[str, Any]:
    return {**(req.model_extra or {}), **req.model_dump(exclude_unset=True, exclude_none=True)}


def _headers(ctx: AppContext, req: SamplingFields, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    ignored = _ignored(ctx, req)
    if ignored:
        # Header-safe: printable ASCII only (a field name may hold anything).
        headers["X-Ignored-Params"] = re.sub(r"[^\x21-\x7e]", "?", ",".join(ignored))[:1000]
    return headers


def _sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


@router.get("/models", response_model=ModelList, summary="The models that answer requests")
def list_models(request: Request) -> ModelList:
    ctx = ctx_of(request)
    created = now()
    return ModelList(data=[ModelCard(id=name, created=created) for name in model_aliases(ctx)[:1]])


@router.get("/models/{model_id:path}", response_model=ModelCard, summary="One model")
def get_model(model_id: str, request: Request) -> ModelCard:
    return ModelCard(id=resolve_model(ctx_of(request), model_id), created=now())


# -- chat ----------------------------------------------------------------------------------


def _messages(req: ChatCompletionRequest) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list) and any(p.type != "text" for p in m.content):
            raise APIError(400, "Only text content is supported (no images or audio).", param=f"messages.{i}.content")
        if m.role == "tool":
            raise APIError(400, "Tool messages are not supported by this server.", param=f"messages.{i}.role")
        out.append(("system" if m.role == "developer" else m.role, m.text()))
    return out


def _check_chat_options(ctx: AppContext, req: ChatCompletionRequest, principal: Principal) -> None:
    if req.character is not None and req.character not in ctx.characters.names():
        raise APIError(404, f"No character named {req.character!r}. Available: {', '.join(ctx.characters.names())}.",
                       param="character", code="character_not_found")
    if req.mode is not None and req.mode not in MODES:
        raise APIError(400, f"Unknown mode {req.mode!r}; choose one of {', '.join(MODES)}.", param="mode")
    if req.persona is not None:
        personas = getattr(ctx.chat, "personas", None)
        if personas is None or personas.get(req.persona, principal.user_id) is None:
            raise APIError(404, f"No persona named {req.persona!r} for this account.", param="persona", code="persona_not_found")


def _chat_turn(
    ctx: AppContext, req: ChatCompletionRequest, params: GenerationParams, principal: Principal, session_key: str
) -> tuple[Iterator[ReplyProgress], int | None]:
    """Start the turn; returns its progress iterator and the id of the chat it is saved in (or None)."""
    messages = _messages(req)
    save = req.save if req.save is not None else ctx.settings.api_save_chats
    if req.conversation_id is not None:
        # Continue a saved chat: its stored history is the context, the last message is the new turn.
        if messages[-1][0] != "user":
            raise APIError(400, "To continue a saved chat the last message must be the user's.", param="messages")
        try:
            ctx.repo.get_conversation(req.conversation_id, principal.user_id)
        except NotFound:
            raise APIError(404, f"Conversation {req.conversation_id} not found.", param="conversation_id",
                           code="conversation_not_found") from None
        gen = ctx.chat.send(req.conversation_id, messages[-1][1], params, session_key=session_key, user_id=principal.user_id)
        return gen, req.conversation_id
    common = {"character": req.character, "mode": req.mode, "persona": req.persona, "user_id": principal.user_id}
    if not save:
        return ctx.chat.answer(messages, params, session_key=session_key, **common), None
    settings = {"mode": req.mode or ("chat" if req.character else "instruct")}
    if req.persona:
        settings["persona"] = req.persona
    first_user = next((c for r, c in messages if r == "user"), "API chat")
    conv = ctx.repo.create_conversation(
        title=" ".join(first_user.split())[:48] or "API chat",
        character=req.character or DEFAULT_CHARACTER,
        user_id=principal.user_id,
        settings=settings,
    )
    for role, content in messages[:-1]:
        ctx.repo.add_message(conv.id, role, content, principal.user_id)
    last_role, last_text = messages[-1]
    if last_role == "user":
        ids = ctx.repo.start_turn(conv.id, last_text, principal.user_id)
    else:
        ctx.repo.add_message(conv.id, last_role, last_text, principal.user_id)
        ids = ctx.repo.start_turn(conv.id, None, principal.user_id)
    gen = ctx.chat.answer(messages, params, session_key=session_key, version_id=ids.reply_version_id, **common)
    return gen, conv.id


@router.post("/chat/completions", summary="Chat completion (streaming with stream=true)")
async def chat_completions(req: ChatCompletionRequest, request: Request, principal: Principal = Depends(require_principal)) -> Any:
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    params = build_params(ctx, _body(req))
    check_logit_bias(ctx, params)
    _check_chat_options(ctx, req, principal)
    check_capacity(ctx)
    session_key = f"api:{uuid.uuid4().hex}"
    try:
        gen, conv_id = _chat_turn(ctx, req, params, principal, session_key)
    except UserFacingError as exc:
        raise APIError(400, str(exc)) from exc
    extra = {"X-Conversation-Id": str(conv_id)} if conv_id is not None else {}
    headers = _headers(ctx, req, extra)
    progress = iterate_in_thread(request, gen, lambda: ctx.chat.stop(session_key))
    cid, created = new_id("chatcmpl"), now()
    if not req.stream:
        last = ReplyProgress("")
        try:
            async for last in progress:
                pass
        except UserFacingError as exc:
            raise APIError(400, str(exc)) from exc
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": last.text},
                "logprobs": None,
                "finish_reason": openai_finish_reason(last.finish_reason),
            }],
            "usage": Usage.of(last.prompt_tokens, last.completion_tokens).model_dump(),
        }
        if conv_id is not None:
            body["conversation_id"] = conv_id
        return JSONResponse(body, headers=headers)

    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return data

    async def events() -> AsyncIterator[str]:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        sent = ""
        try:
            async for p in progress:
                if p.text.startswith(sent) and len(p.text) > len(sent):
                    yield _sse(chunk({"content": p.text[len(sent):]}))
                    sent = p.text
                if p.done:
                    yield _sse(chunk({}, openai_finish_reason(p.finish_reason)))
                    if include_usage:
                        yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                    "choices": [], "usage": Usage.of(p.prompt_tokens, p.completion_tokens).model_dump()})
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
            log.exception("chat completion stream failed")
            yield _sse(error_body(f"Generation failed: {exc}", "server_error", code="generation_error"))
        yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})


# -- text completion ------------------------------------------------------------------------


@router.post("/completions", summary="Text completion of a raw prompt (streaming with stream=true)")
async def completions(req: CompletionRequest, request: Request, principal: Principal = Depends(require_principal)) -> Any:
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1:
            raise APIError(400, "prompt must be one string (batches are not supported).", param="prompt")
        prompt = req.prompt[0]
    else:
        prompt = req.prompt
    if req.suffix:
        raise APIError(400, "suffix (fill-in-the-middle) is not supported.", param="suffix", code="unsupported_parameter")
    params = build_params(ctx, _body(req))
    check_logit_bias(ctx, params)
    check_capacity(ctx)
    completion = ctx.chat.hooks.complete(ctx.engine, prompt, params)  # the extension hooks of raw completions
    handle = completion.handle
    headers = _headers(ctx, req)
    deltas = iterate_in_thread(request, cancel_on_close(completion.deltas(), handle), handle.cancel)
    cid, created = new_id("cmpl"), now()
    prefix = prompt if req.echo else ""

    def usage() -> dict[str, int]:
        return Usage.of(handle.stats.prompt_tokens, handle.stats.completion_tokens).model_dump()

    if not req.stream:
        text = prefix
        try:
            async for delta in deltas:
                text += delta
        except UserFacingError as exc:
            raise APIError(400, str(exc)) from exc
        return JSONResponse({
            "id": cid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": None,
                         "finish_reason": openai_finish_reason(handle.stats.finish_reason)}],
            "usage": usage(),
        }, headers=headers)

    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": cid, "object": "text_completion", "created": created, "model": model,
                                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            data["usage"] = None
        return data

    async def events() -> AsyncIterator[str]:
        try:
            if prefix:
                yield _sse(chunk(prefix))
            async for delta in deltas:
                yield _sse(chunk(delta))
            yield _sse(chunk("", openai_finish_reason(handle.stats.finish_reason)))
            if include_usage:
                yield _sse({"id": cid, "object": "text_completion", "created": created, "model": model,
                            "choices": [], "usage": usage()})
        except Exception as exc:  # noqa: BLE001
            log.exception("completion stream failed")
            yield _sse(error_body(f"Generation failed: {exc}", "server_error", code="generation_error"))
        yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})
