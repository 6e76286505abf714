"""LoRA adapters over the API, in text-generation-webui's shapes:

- ``GET /v1/internal/lora/list`` -> ``{"lora_names": [...]}``: the adapters in ``<data-dir>/loras``
  that can be applied (plus ``applied``: ``[{"name", "weight"}]``, what the loaded model has now);
- ``POST /v1/internal/lora/load`` ``{"lora_names": [...], "lora_weights": [...]}`` -> ``"OK"``:
  apply them to the loaded model (replacing those applied; weights optional, 1.0 each);
- ``POST /v1/internal/lora/unload`` -> ``"OK"``: remove them all.

Same keys and error bodies as /v1. Applying changes the model for every user, so on a server
reachable from other machines the open API (no key, no account) may list but not load or unload.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of
from webui.api.errors import APIError, user_error
from webui.errors import UserFacingError
from webui.training.lora_library import LoraLibrary, LoraNotFound

router = APIRouter()


class AppliedLoraOut(BaseModel):
    name: str
    weight: float


class LoraListResponse(BaseModel):
    lora_names: list[str]
    applied: list[AppliedLoraOut] = []


class LoadLorasRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lora_names: list[str] = Field(max_length=32)
    lora_weights: list[float] | None = Field(default=None, max_length=32)


def _require_changer(principal: Principal) -> None:
    if not principal.keeps_chats:
        raise APIError(403, "Applying or removing LoRA adapters needs an API key or an account on a server "
                            "reachable from other machines.", code="lora_not_allowed")


def _applied(request: Request) -> list[AppliedLoraOut]:
    return [AppliedLoraOut(name=x.name, weight=x.weight) for x in ctx_of(request).engine.loras]


@router.get("/v1/internal/lora/list", response_model=LoraListResponse)
def list_loras(request: Request, principal: Principal = Depends(require_principal)) -> LoraListResponse:
    ctx = ctx_of(request)
    return LoraListResponse(lora_names=LoraLibrary(ctx.settings.data_dir).names(), applied=_applied(request))


@router.post("/v1/internal/lora/load")
def load_loras(body: LoadLorasRequest, request: Request, principal: Principal = Depends(require_principal)) -> str:
    _require_changer(principal)
    ctx = ctx_of(request)
    try:
        ctx.engine.apply_loras(body.lora_names, body.lora_weights, library=LoraLibrary(ctx.settings.data_dir))
    except LoraNotFound as exc:
        raise APIError(404, str(exc), code="lora_not_found", param="lora_names") from None
    except UserFacingError as exc:
        raise user_error(exc) from None
    return "OK"


@router.post("/v1/internal/lora/unload")
def unload_loras(request: Request, principal: Principal = Depends(require_principal)) -> str:
    _require_changer(principal)
    try:
        ctx_of(request).engine.remove_loras()
    except UserFacingError as exc:
        raise user_error(exc) from None
    return "OK"
