"""text-generation-webui's token endpoints, in its shapes (SillyTavern counts tokens with encode):

- ``POST /v1/internal/encode``       ``{"text"}``   -> ``{"tokens": [ids], "length": n}``
- ``POST /v1/internal/decode``       ``{"tokens"}`` -> ``{"text"}``
- ``POST /v1/internal/token-count``  ``{"text"}``   -> ``{"length": n}``
- ``POST /v1/internal/logits``       ``{"prompt", "use_samplers", "top_logits", sampler fields...}``
  -> ``{token text: probability}``, the ``top_logits`` most likely next tokens, most likely first.

The ids are the text's own tokens (no BOS added). ``use_samplers``: the
probabilities after the samplers the body's fields (or a ``preset``) set, extensions' samplers
included, as the loaded backend applies them (docs/api.md); otherwise the raw softmax. The work is
shared with the Notebook (``webui.generation.inspect``) and queued on the inference worker. Same
auth and error bodies as /v1; unknown fields are ignored and named in ``X-Ignored-Params``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from webui.api.auth import require_principal
from webui.api.common import (
    body_values,
    build_params,
    check_capacity,
    check_logit_bias,
    ctx_of,
    resolve_model,
    response_headers,
)
from webui.api.errors import user_error
from webui.api.openai_routes import ERRORS
from webui.api.protocol import SamplingFields
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation import inspect
from webui.generation.params import GenerationParams

router = APIRouter(prefix="/v1/internal", tags=["Internal (text-generation-webui)"],
                   dependencies=[Depends(require_principal)], responses=ERRORS)


class EncodeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str


class EncodeResponse(BaseModel):
    tokens: list[int]
    length: int


class DecodeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    tokens: list[int]


class DecodeResponse(BaseModel):
    text: str


class TokenCountResponse(BaseModel):
    length: int


class LogitsRequest(SamplingFields):
    prompt: str
    use_samplers: bool = Field(default=False, description="after the samplers the body sets; else the raw softmax")
    top_logits: int = Field(default=50, ge=1, le=inspect.MAX_TOP, description="how many candidates")


def _loaded(request: Request, req: BaseModel, response: Response) -> AppContext:
    """The context, once a model is loaded (503 otherwise); the ignored fields go in the headers."""
    ctx = ctx_of(request)
    resolve_model(ctx, None)
    response.headers.update(response_headers(ctx, req))
    return ctx


@router.post("/encode", response_model=EncodeResponse, summary="Token ids of a text")
def encode(req: EncodeRequest, request: Request, response: Response) -> EncodeResponse:
    ctx = _loaded(request, req, response)
    try:
        ids = inspect.encode(ctx.engine, req.text)
    except UserFacingError as exc:
        raise user_error(exc) from exc
    return EncodeResponse(tokens=ids, length=len(ids))


@router.post("/decode", response_model=DecodeResponse, summary="Text of token ids")
def decode(req: DecodeRequest, request: Request, response: Response) -> DecodeResponse:
    ctx = _loaded(request, req, response)
    try:
        return DecodeResponse(text=inspect.decode(ctx.engine, req.tokens))
    except UserFacingError as exc:
        raise user_error(exc) from exc


@router.post("/token-count", response_model=TokenCountResponse, summary="How many tokens a text is")
def token_count(req: EncodeRequest, request: Request, response: Response) -> TokenCountResponse:
    ctx = _loaded(request, req, response)
    try:
        return TokenCountResponse(length=len(inspect.encode(ctx.engine, req.text)))
    except UserFacingError as exc:
        raise user_error(exc) from exc


@router.post("/logits", response_model=dict[str, float], summary="The most likely next tokens")
def logits(req: LogitsRequest, request: Request, response: Response) -> dict[str, float]:
    ctx = _loaded(request, req, response)
    hooks = None
    own = ("prompt", "use_samplers", "top_logits")
    # the sampler fields are checked either way: a bad value is a 400, as on the completion routes
    params: GenerationParams | None = build_params(ctx, {k: v for k, v in body_values(req).items() if k not in own})
    if req.use_samplers:
        check_logit_bias(ctx, params)
    else:
        params = None
    check_capacity(ctx)
    try:
        if params is not None:
            hooks = inspect.extension_hooks(ctx.chat.hooks, req.prompt, params)
        return inspect.as_dict(inspect.next_tokens(ctx.engine, req.prompt, req.top_logits, params, hooks))
    except UserFacingError as exc:
        raise user_error(exc) from exc
