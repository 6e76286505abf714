"""What the OpenAI and Ollama requests resolve to: the model rule, parameters, capacity.

The model rule (README, "API"): the request's ``model`` must name the loaded model — its id as
listed by ``GET /v1/models`` / ``GET /api/tags``, its file or folder name (with or without
``.gguf``) — or be ``default`` or empty, which mean the loaded model. Anything else is a 404
``model_not_found`` that lists the ids that would work. No model loaded: 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from webui.api.errors import APIError, invalid_request
from webui.api.protocol import OLLAMA_OPTION_NAMES, OllamaRequest
from webui.context import AppContext
from webui.engine.registry import backend_info
from webui.errors import UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import ALIASES, resolve_params

DEFAULT_ALIASES = ("default", "")


def ctx_of(request: Request) -> AppContext:
    return request.app.state.ctx


def body_values(req: BaseModel) -> dict[str, Any]:
    """A request's fields as sent: unknown ones included, unset and null ones left out."""
    return {**(req.model_extra or {}), **req.model_dump(exclude_unset=True, exclude_none=True)}


def response_headers(ctx: AppContext, req: BaseModel, extra: dict[str, str] | None = None) -> dict[str, str]:
    """``extra`` plus ``X-Ignored-Params``: the body's fields this server does not use."""
    headers = dict(extra or {})
    known = set(GenerationParams.model_fields) | set(ALIASES) | {p.key for p in ctx.extensions.sampler_params()}
    ignored = sorted(k for k in (req.model_extra or {}) if k not in known)
    if ignored:
        # Header-safe: printable ASCII only (a field name may hold anything).
        headers["X-Ignored-Params"] = re.sub(r"[^\x21-\x7e]", "?", ",".join(ignored))[:1000]
    return headers


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
        raise APIError(503, "No model is loaded. Load one in the Model tab or start with --model.",
                       code="model_not_loaded")
    name = (requested or "").strip()
    if name.lower() in DEFAULT_ALIASES or name in aliases or name.lower() in (a.lower() for a in aliases):
        return aliases[0]
    raise APIError(
        404,
        f"The model {name!r} does not exist or is not loaded. "
        f"Available: {', '.join(repr(a) for a in [aliases[0], 'default'])}.",
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
    if not isinstance(values.get("samplers") or {}, Mapping):
        raise APIError(400, "samplers must be an object of extension sampler parameters by name.", param="samplers",
                       code="invalid_value")
    samplers = dict(values.get("samplers") or {})
    for key in list(values):
        if key in sampler_names:
            samplers[key] = values.pop(key)
    if samplers:
        values["samplers"] = samplers
    return values


def client_names(body: Mapping[str, Any]) -> dict[str, str]:
    """Parameter name -> the alias the body sent it under (``rep_pen`` for repetition_penalty), for
    error messages that name what the client sent."""
    return {ALIASES[k]: k for k in body if k in ALIASES and ALIASES[k] not in body}


def build_params(ctx: AppContext, body: Mapping[str, Any], names: Mapping[str, str] | None = None) -> GenerationParams:
    """GenerationParams for a request body (OpenAI names, this app's names, a preset). Raises APIError:
    a bad value is a 400 naming the field (``names``: parameter -> the name the client used)."""
    if body.get("n") not in (None, 1):
        raise APIError(400, "Only n=1 is supported: this server generates one choice per request.", param="n",
                       code="unsupported_value")
    names = {**client_names(body), **(names or {})}
    values = sampling_values(ctx, body)
    if values.get("top_p") == 0:
        values["top_p"] = 1e-9  # OpenAI allows 0: keep only the most likely token
    bias = values.pop("logit_bias", None)
    if bias:
        bias_name = names.get("logit_bias", "logit_bias")
        if not isinstance(bias, Mapping):
            raise APIError(400, f"{bias_name} must be an object of token id -> bias.", param=bias_name,
                           code="invalid_value")
        try:
            values["logit_bias"] = {int(k): float(v) for k, v in bias.items()}
        except (TypeError, ValueError, OverflowError):
            raise APIError(400, f"{bias_name} keys must be token ids (integers as strings) and its values numbers.",
                           param=bias_name, code="invalid_value") from None
        if any(not -100 <= v <= 100 for v in values["logit_bias"].values()):  # NaN fails this too
            raise APIError(400, f"{bias_name} values must be between -100 and 100.", param=bias_name,
                           code="invalid_value")
    try:
        return resolve_params(values, ctx.presets)
    except UserFacingError as exc:
        message = str(exc)
        if message.lower().startswith("no preset"):
            raise APIError(404, message, param="preset", code="preset_not_found") from exc
        if isinstance(exc.__cause__, ValidationError):  # a value of the wrong type or out of range
            raise invalid_request(list(exc.__cause__.errors()), names) from exc
        raise APIError(400, message, param="preset" if body.get("preset") else None) from exc
    except ValidationError as exc:
        raise invalid_request(list(exc.errors()), names) from exc


def ollama_params(ctx: AppContext, req: OllamaRequest) -> GenerationParams:
    """GenerationParams from an Ollama request's ``options`` (Ollama's names). Raises APIError."""
    if req.format not in (None, ""):
        raise APIError(400, "Structured output (format) is not supported.", param="format",
                       code="unsupported_parameter")
    body: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key, value in (req.options or {}).items():
        name = OLLAMA_OPTION_NAMES.get(key)
        if name == "max_new_tokens" and isinstance(value, int) and not isinstance(value, bool) and value < 0:
            continue  # -1 / -2: "until done" -> the default limit
        if name is not None:
            body[name] = value
            names[name] = f"options.{key}"
    return build_params(ctx, body, names)


def check_logit_bias(ctx: AppContext, params: GenerationParams) -> None:
    """400 when the loaded backend does not declare logit_bias among the parameters it applies, or a
    token id is out of range of its vocabulary."""
    if not params.logit_bias:
        return
    model = ctx.engine.model_info
    if model is None or "logit_bias" not in backend_info(model.loader).params or model.vocab_size is None:
        raise APIError(
            400,
            f"logit_bias is not supported by the {model.loader if model else 'current'} backend.",
            param="logit_bias",
        )
    vocab = model.vocab_size
    bad = [t for t in params.logit_bias if not 0 <= t < vocab]
    if bad:
        raise APIError(400, f"logit_bias token ids out of range 0..{vocab - 1}: {bad[:5]}", param="logit_bias")
