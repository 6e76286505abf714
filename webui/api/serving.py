"""Serving: a validated API request in, a started reply out.

Each ``start_*`` function resolves the model and the parameters (``webui.api.common``), checks
what the request asks for, and starts the reply through ``ChatService`` — chat turns (saved or
not) and raw text completions alike — so the API takes the same path as the UI. The reply's
progress is read from the inference thread through ``webui.streaming.iterate_in_thread``: a client
that disconnects stops its generation, also while it is still queued. The routes pick an encoder
(``webui.api.encoders``) for the reply; nothing here writes a response body or touches storage.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request
from pydantic import ValidationError

from webui.api.auth import Principal
from webui.api.common import (
    body_values,
    build_params,
    check_capacity,
    check_logit_bias,
    ctx_of,
    ollama_params,
    resolve_model,
    response_headers,
)
from webui.api.encoders import ReplyMeta
from webui.api.errors import APIError, invalid_request, user_error
from webui.api.protocol import (
    ChatCompletionRequest,
    ChatPromptBody,
    CompletionRequest,
    OllamaChatRequest,
    OllamaGenerateRequest,
    new_id,
    now,
)
from webui.chat.prompt import MODES
from webui.chat.reply_stream import ReplyProgress
from webui.context import AppContext
from webui.engine.registry import backend_info
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams, parse_string_list
from webui.plugins.params import ParamError
from webui.streaming import iterate_in_thread

API_THREADS_PAST_QUEUE = 8


@dataclass
class ServedReply:
    """A started reply: its progress (None: nothing to generate) and what its response repeats."""

    meta: ReplyMeta
    progress: AsyncIterator[ReplyProgress] | None
    headers: dict[str, str] = field(default_factory=dict)
    conversation_id: int | None = None  # the chat it is saved in
    echo: str = ""  # what the text starts with (a text completion's prompt, when echoed)
    started: float = field(default_factory=time.perf_counter)  # when it was queued (Ollama's durations)


@dataclass
class Collected:
    """A reply read to its end: its last progress and when its first one came (perf_counter)."""

    last: ReplyProgress
    first_at: float | None


def api_thread_limiter(request: Request) -> anyio.CapacityLimiter:
    """API streams get their own thread pool (sized past max_queue), so a full queue of API
    clients never starves the UI's handlers of threads. Created on first use (needs the loop)."""
    limiter = getattr(request.app.state, "api_threads", None)
    if limiter is None:
        size = ctx_of(request).settings.max_queue + API_THREADS_PAST_QUEUE
        limiter = request.app.state.api_threads = anyio.CapacityLimiter(size)
    return limiter


def _progress(
    request: Request, ctx: AppContext, items: Iterator[ReplyProgress], session_key: str
) -> AsyncIterator[ReplyProgress]:
    """``items`` read off the event loop; a disconnect (or an early end) stops the session's generation."""
    return iterate_in_thread(items, stop=lambda: ctx.chat.stop(session_key), disconnected=request.is_disconnected,
                             limiter=api_thread_limiter(request), label=request.url.path)


async def collect(progress: AsyncIterator[ReplyProgress]) -> Collected:
    """Read a reply to its end (``"stream": false``). A turn that cannot run is a 400."""
    last, first_at = ReplyProgress(""), None
    try:
        async for last in progress:
            first_at = first_at or time.perf_counter()
    except UserFacingError as exc:
        raise user_error(exc) from exc
    return Collected(last, first_at)


def _session_key(kind: str) -> str:
    return f"{kind}:{uuid.uuid4().hex}"


# -- OpenAI -----------------------------------------------------------------------------------


def chat_messages(req: ChatCompletionRequest) -> list[tuple[str, str]]:
    """(role, text) of each message; only text is supported and ``developer`` means ``system``."""
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
    if req.persona is not None and not _has_persona(ctx, req.persona, principal):
        raise APIError(404, f"No persona named {req.persona!r} for this account.", param="persona",
                       code="persona_not_found")


def _has_persona(ctx: AppContext, name: str, principal: Principal) -> bool:
    """Whether ``principal`` has the persona ``name`` (the open API of a reachable server has none)."""
    return principal.keeps_chats and ctx.chat.has_persona(name, principal.user_id)


def _chat_turn(ctx: AppContext, req: ChatCompletionRequest, params: GenerationParams, principal: Principal,
               session_key: str) -> tuple[Iterator[ReplyProgress], int | None]:
    """Start the turn: its progress and the id of the chat it is saved in (None: not saved)."""
    messages = chat_messages(req)
    user_id = principal.user_id
    if req.conversation_id is not None:
        # Continue a saved chat: its stored history is the context, the last message is the new turn.
        if messages[-1][0] != "user":
            raise APIError(400, "To continue a saved chat the last message must be the user's.", param="messages")
        if not principal.keeps_chats or not ctx.chat.has_conversation(req.conversation_id, user_id):
            raise APIError(404, f"Conversation {req.conversation_id} not found.", param="conversation_id",
                           code="conversation_not_found")
        reply = ctx.chat.send(req.conversation_id, messages[-1][1], params, session_key=session_key, user_id=user_id)
        return reply, req.conversation_id
    setup = {"character": req.character, "mode": req.mode, "persona": req.persona, "session_key": session_key,
             "user_id": user_id}
    if req.save and not principal.keeps_chats:
        raise APIError(403, "This server is reachable from other machines and the API has no key, so it does not "
                       "save chats (anyone could read them). Ask its owner for an API key.", param="save",
                       code="chat_saving_disabled")
    if principal.keeps_chats and (req.save if req.save is not None else ctx.settings.api_save_chats):
        conv_id, reply = ctx.chat.answer_saved(messages, params, **setup)
        return reply, conv_id
    return ctx.chat.answer(messages, params, **setup), None


def _with_logprobs(ctx: AppContext, values: dict[str, Any], top: int | None) -> dict[str, Any]:
    """The body's values with the logprobs request as the ``logprobs`` parameter (``top``: None = off).
    400 when the loaded backend cannot report them."""
    values = {k: v for k, v in values.items() if k not in ("logprobs", "top_logprobs")}
    if top is None:
        return values
    info = ctx.engine.model_info
    if info is None or not backend_info(info.loader).logprobs:
        raise APIError(400, f"logprobs are not available with the {info.loader if info else 'current'} loader.",
                       param="logprobs", code="unsupported_parameter")
    return {**values, "logprobs": top}


def check_sampler_values(ctx: AppContext, params: GenerationParams) -> GenerationParams:
    """Extension sampler values checked before anything is queued (a bad one is a 400, not a failed
    generation); a list sent as comma-separated text (SillyTavern's DRY breakers) is read as a list."""
    specs = {p.key: p for p in ctx.extensions.sampler_params()}
    for key, value in list(params.samplers.items()):
        spec = specs.get(key)
        if spec is None:
            continue
        if spec.type == "list" and isinstance(value, str):
            value = parse_string_list(value)
        try:
            params.samplers[key] = spec.coerce(value)
        except ParamError as exc:
            raise APIError(400, str(exc), param=key, code="invalid_value") from None
    return params


def _chat_logprobs(req: ChatCompletionRequest) -> int | None:
    if req.top_logprobs is not None and not req.logprobs:
        raise APIError(400, "top_logprobs needs logprobs set to true.", param="top_logprobs")
    return (req.top_logprobs or 0) if req.logprobs else None


def start_chat_completion(request: Request, req: ChatCompletionRequest, principal: Principal) -> ServedReply:
    """``POST /v1/chat/completions``. Raises APIError (400/404/429/503)."""
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    top = _chat_logprobs(req)
    params = check_sampler_values(ctx, build_params(ctx, _with_logprobs(ctx, body_values(req), top)))
    check_logit_bias(ctx, params)
    _check_chat_options(ctx, req, principal)
    check_capacity(ctx)
    session_key = _session_key("api")
    try:
        items, conv_id = _chat_turn(ctx, req, params, principal, session_key)
    except UserFacingError as exc:
        raise user_error(exc) from exc
    extra = {"X-Conversation-Id": str(conv_id)} if conv_id is not None else {}
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    meta = ReplyMeta(new_id("chatcmpl"), now(), model, include_usage, logprobs=top is not None)
    return ServedReply(meta, _progress(request, ctx, items, session_key), response_headers(ctx, req, extra), conv_id)


def _complete(request: Request, ctx: AppContext, prompt: str, params: GenerationParams) -> AsyncIterator[ReplyProgress]:
    session_key = _session_key("api")
    try:
        items = ctx.chat.complete(prompt, params, session_key=session_key)
    except UserFacingError as exc:
        raise user_error(exc) from exc
    return _progress(request, ctx, items, session_key)


def start_completion(request: Request, req: CompletionRequest) -> ServedReply:
    """``POST /v1/completions``: a raw prompt continued (no chat template)."""
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1:
            raise APIError(400, "prompt must be one string (batches are not supported).", param="prompt")
        prompt = req.prompt[0]
    else:
        prompt = req.prompt
    if req.suffix:
        raise APIError(400, "suffix (fill-in-the-middle) is not supported.", param="suffix",
                       code="unsupported_parameter")
    params = check_sampler_values(ctx, build_params(ctx, _with_logprobs(ctx, body_values(req), req.logprobs)))
    check_logit_bias(ctx, params)
    check_capacity(ctx)
    progress = _complete(request, ctx, prompt, params)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    meta = ReplyMeta(new_id("cmpl"), now(), model, include_usage, logprobs=req.logprobs is not None)
    return ServedReply(meta, progress, response_headers(ctx, req), echo=prompt if req.echo else "")


# -- Ollama -----------------------------------------------------------------------------------


def _ollama_answer(request: Request, ctx: AppContext, messages: list[tuple[str, str]], params: GenerationParams,
                   principal: Principal) -> AsyncIterator[ReplyProgress]:
    session_key = _session_key("ollama")
    items = ctx.chat.answer(messages, params, session_key=session_key, user_id=principal.user_id)
    return _progress(request, ctx, items, session_key)


def start_ollama_chat(request: Request, req: OllamaChatRequest, principal: Principal) -> ServedReply:
    """``POST /api/chat``; no messages: nothing to generate (Ollama loads the model and says so)."""
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    params = check_sampler_values(ctx, ollama_params(ctx, req))
    if any(m.images for m in req.messages):
        raise APIError(400, "Images are not supported.", param="messages")
    meta = ReplyMeta("", 0, model)
    if not req.messages:
        return ServedReply(meta, None)
    check_capacity(ctx)
    messages = [(m.role, m.content) for m in req.messages]
    return ServedReply(meta, _ollama_answer(request, ctx, messages, params, principal))


def start_ollama_generate(request: Request, req: OllamaGenerateRequest, principal: Principal) -> ServedReply:
    """``POST /api/generate``: ``raw`` continues the prompt as is; otherwise it is a user message
    (after ``system``) rendered with the model's chat template. No prompt: nothing to generate."""
    ctx = ctx_of(request)
    model = resolve_model(ctx, req.model)
    params = check_sampler_values(ctx, ollama_params(ctx, req))
    if req.images:
        raise APIError(400, "Images are not supported.", param="images")
    meta = ReplyMeta("", 0, model)
    if not req.prompt:
        return ServedReply(meta, None)
    check_capacity(ctx)
    if req.raw:
        return ServedReply(meta, _complete(request, ctx, req.prompt, params))
    messages = ([("system", req.system)] if req.system else []) + [("user", req.prompt)]
    return ServedReply(meta, _ollama_answer(request, ctx, messages, params, principal))


# -- internal ---------------------------------------------------------------------------------


def chat_prompt(ctx: AppContext, raw: Any, principal: Principal) -> str:
    """``POST /v1/internal/chat-prompt``: the exact prompt text a chat body would be answered from.
    ``raw``: the parsed JSON body (its sampling fields are read as parameters). Raises APIError 400/404."""
    if not isinstance(raw, dict):
        raise APIError(400, "The body must be a JSON object.")
    try:
        body = ChatPromptBody.model_validate(raw)
    except ValidationError as exc:
        raise invalid_request(list(exc.errors())) from exc
    if body.character is not None and not ctx.characters.has(body.character):
        raise APIError(404, f"No character named {body.character!r}. Available: {', '.join(ctx.characters.names())}.",
                       param="character", code="character_not_found")
    if body.persona is not None and not _has_persona(ctx, body.persona, principal):
        raise APIError(404, f"No persona named {body.persona!r} for this account.", param="persona",
                       code="persona_not_found")
    try:
        result = ctx.chat.prepare_answer(  # every hook a turn runs: the prompt the model would be sent
            [(m.role, m.text()) for m in body.messages],
            check_sampler_values(ctx, build_params(ctx, raw)),  # a bad value: a 400 naming it, as on completions
            character=body.character,
            mode=body.mode,
            persona=body.persona,
            template=body.instruction_template,
            user_id=principal.user_id,
        )
    except UserFacingError as exc:
        raise user_error(exc) from exc
    return result.prompt
