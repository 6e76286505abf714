"""What the OpenAI and Ollama routers share: the model rule, parameters, capacity, streaming.

The model rule (README, "API"): the request's ``model`` must name the loaded model — its id as
listed by ``GET /v1/models`` / ``GET /api/tags``, its file or folder name (with or without
``.gguf``) — or be ``default`` or empty, which mean the loaded model. Anything else is a 404
``model_not_found`` that lists the ids that would work. No model loaded: 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi import Request
from pydantic import ValidationError

from webui.api.errors import APIError, validation_message
from webui.context import AppContext
from webui.engine.worker import GenerationHandle
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import resolve_params

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ALIASES = ("default", "")
DISCONNECT_POLL_SECONDS = 0.5


def ctx_of(request: Request) -> AppContext:
    return request.app.state.ctx


def model_aliases(ctx: AppContext) -> list[str]:
    """Every name the loaded model answers to, its id first."""
    engine = ctx.engine
    if engine.model is None:
        return []
    names = [engine.model_name]
    if engine.spec is not None:
        path = Path(engine.spec.path)
        names += [path.name, path.stem]
    return list(dict.fromkeys(names))


def resolve_model(ctx: AppContext, requested: str | None) -> str:
    """The id of the model that will answer, by the rule above. Raises APIError 503/404."""
    aliases = model_aliases(ctx)
    if not aliases:
        raise APIError(503, "No model is loaded. Load one in the Model tab or start with --model.", code="model_not_loaded")
    name = (requested or "").strip()
    if name.lower() in DEFAULT_ALIASES or name in aliases or name.lower() in (a.lower() for a in aliases):
        return aliases[0]
    raise APIError(
        404,
        f"The model {name!r} does not exist or is not loaded. Available: {', '.join(repr(a) for a in [aliases[0], 'default'])}.",
        code="model_not_found",
        param="model",
    )


def check_capacity(ctx: AppContext) -> None:
    """429 when more generations are queued than ``max_queue`` allows (the worker is FIFO)."""
    pending = ctx.engine.worker.pending
    if pending >= ctx.settings.max_queue:
        raise APIError(
            429,
            f"The server is busy: {pending} generations are queued (limit {ctx.settings.max_queue}). Retry shortly.",
            code="queue_full",
            headers={"Retry-After": "2"},
        )


def sampling_values(ctx: AppContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request body with extension sampler parameters (e.g. ``dry_multiplier``) moved into ``samplers``."""
    values = dict(body)
    sampler_names = {p.key for p in ctx.extensions.sampler_params()}
    samplers = dict(values.get("samplers") or {})
    for key in list(values):
        if key in sampler_names:
            samplers[key] = values.pop(key)
    if samplers:
        values["samplers"] = samplers
    return values


def build_params(ctx: AppContext, body: Mapping[str, Any]) -> GenerationParams:
    """GenerationParams for a request body (OpenAI names, this app's names, a preset). Raises APIError."""
    if body.get("n") not in (None, 1):
        raise APIError(400, "Only n=1 is supported: this server generates one choice per request.", param="n", code="unsupported_value")
    values = sampling_values(ctx, body)
    if values.get("top_p") == 0:
        values["top_p"] = 1e-9  # OpenAI allows 0: keep only the most likely token
    bias = values.pop("logit_bias", None)
    if bias:
        try:
            values["logit_bias"] = {int(k): float(v) for k, v in bias.items()}
        except (TypeError, ValueError):
            raise APIError(400, "logit_bias keys must be token ids (integers as strings).", param="logit_bias") from None
        if any(not -100 <= v <= 100 for v in values["logit_bias"].values()):
            raise APIError(400, "logit_bias values must be between -100 and 100.", param="logit_bias")
        if "logit_bias" not in GenerationParams.model_fields:
            raise APIError(400, "logit_bias is not supported by this server.", param="logit_bias", code="unsupported_parameter")
    presets = getattr(ctx, "presets", None)
    try:
        return resolve_params(values, presets)
    except UserFacingError as exc:
        message = str(exc)
        if message.lower().startswith("no preset"):
            raise APIError(404, message, param="preset", code="preset_not_found") from exc
        if message.startswith("Invalid parameters"):  # a value out of range: like a body validation error
            raise APIError(422, message, code="invalid_value") from exc
        raise APIError(400, message, param="preset" if body.get("preset") else None) from exc
    except ValidationError as exc:
        raise APIError(422, validation_message(list(exc.errors()))) from exc


def check_logit_bias(ctx: AppContext, params: GenerationParams) -> None:
    """400 when the loaded backend cannot apply logit_bias, or a token id is out of range."""
    bias = getattr(params, "logit_bias", None)
    if not bias:
        return
    model = ctx.engine.model
    vocab = getattr(model, "vocab_size", None)
    if model is None or vocab is None:
        raise APIError(400, f"logit_bias is not supported by the {getattr(model, 'loader', 'current')} backend.", param="logit_bias")
    bad = [t for t in bias if not 0 <= t < vocab]
    if bad:
        raise APIError(400, f"logit_bias token ids out of range 0..{vocab - 1}: {bad[:5]}", param="logit_bias")


def cancel_on_close(items: Iterator[T], handle: GenerationHandle) -> Iterator[T]:
    """``items`` (read from ``handle``), cancelling the generation when closed before its end."""
    try:
        yield from items
    finally:
        handle.cancel()


def _thread_limiter(request: Request) -> anyio.CapacityLimiter:
    """API streams get their own thread pool (sized past max_queue), so a full queue of API
    clients never starves the UI's handlers of threads. Created on first use (needs the loop)."""
    limiter = getattr(request.app.state, "api_threads", None)
    if limiter is None:
        limiter = request.app.state.api_threads = anyio.CapacityLimiter(ctx_of(request).settings.max_queue + 8)
    return limiter


async def iterate_in_thread(
    request: Request, items: Iterator[T], on_disconnect: Callable[[], None]
) -> AsyncIterator[T]:
    """Iterate a blocking iterator from async code without blocking the event loop.

    A watcher polls for the client going away; then ``on_disconnect`` stops the generation (also
    while it is still queued) and the iterator is closed, which cancels it for good.
    """
    sentinel: Any = object()

    async def watch() -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL_SECONDS)
            if await request.is_disconnected():
                log.info("client of %s disconnected; stopping its generation", request.url.path)
                on_disconnect()
                return

    limiter = _thread_limiter(request)
    watcher = asyncio.create_task(watch())
    completed = False
    try:
        while True:
            item = await anyio.to_thread.run_sync(next, items, sentinel, abandon_on_cancel=True, limiter=limiter)
            if item is sentinel:
                completed = True
                return
            yield item
    finally:
        watcher.cancel()
        if not completed:
            log.info("client of %s went away (or failed) before the end; generation stopped", request.url.path)
            on_disconnect()
        try:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        except ValueError:
            pass  # still running in an abandoned thread: it is closed when that thread lets go of it
