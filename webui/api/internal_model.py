"""text-generation-webui's internal model endpoints, in its shapes:

- ``GET /v1/internal/health`` -> ``{"status": "ok"}``
- ``GET /v1/internal/model/info`` -> ``{"model_name", "lora_names", "loader"}`` (what SillyTavern reads;
  ``model_name`` is ``"None"`` when nothing is loaded, as upstream)
- ``GET /v1/internal/model/list`` -> ``{"model_names": [...]}``: the Model tab's list
- ``POST /v1/internal/model/load`` ``{"model_name", "args": {loader options}, "settings": {}}`` -> ``"OK"``
- ``POST /v1/internal/model/unload`` -> ``"OK"``
- ``POST /v1/internal/stop-generation`` -> ``"OK"``: stops every generation the API started

Same keys and error bodies as /v1. Loading, unloading and stopping act for every user, so on a server
reachable from other machines the open API (no key, no account) may read but not do them (403).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of
from webui.api.errors import APIError, user_error
from webui.context import AppContext
from webui.engine.catalog import CatalogEntry, scan_catalog
from webui.engine.model_settings import ModelSettingsStore, load_and_remember, spec_with_saved
from webui.engine.protocol import ModelSpec
from webui.errors import UserFacingError

router = APIRouter(prefix="/v1/internal", tags=["Internal (text-generation-webui)"])


class HealthResponse(BaseModel):
    status: str = "ok"


class ModelInfoResponse(BaseModel):
    model_name: str
    lora_names: list[str]
    loader: str | None


class ModelListResponse(BaseModel):
    model_names: list[str]


class LoadModelRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_name: str = Field(min_length=1, max_length=4096)
    args: dict[str, Any] | None = Field(default=None, description="loader options (loader, n_ctx, n_gpu_layers...)")
    settings: dict[str, Any] | None = None


def _require_owner(principal: Principal, what: str) -> None:
    if not principal.keeps_chats:
        raise APIError(403, f"{what} needs an API key or an account on a server reachable from other machines.",
                       code="not_allowed")


def _entries(ctx: AppContext) -> list[CatalogEntry]:
    return scan_catalog(ctx.settings.models_path)


@router.get("/health", response_model=HealthResponse, summary="The server answers")
def health() -> HealthResponse:
    return HealthResponse()


@router.get("/model/info", response_model=ModelInfoResponse, summary="The loaded model")
def model_info(request: Request, principal: Principal = Depends(require_principal)) -> ModelInfoResponse:
    engine = ctx_of(request).engine
    info = engine.model_info
    return ModelInfoResponse(model_name=info.name if info else "None", lora_names=[x.name for x in engine.loras],
                             loader=info.loader if info else None)


@router.get("/model/list", response_model=ModelListResponse, summary="The models that can be loaded")
def model_list(request: Request, principal: Principal = Depends(require_principal)) -> ModelListResponse:
    return ModelListResponse(model_names=[e.label for e in _entries(ctx_of(request))])


def _find(ctx: AppContext, name: str) -> CatalogEntry:
    entries = _entries(ctx)
    for entry in entries:
        path = Path(entry.path)
        if name in (entry.label, entry.path, path.name, path.stem):
            return entry
    names = ", ".join(repr(e.label) for e in entries[:20]) or "none"
    raise APIError(404, f"No model named {name!r}. Available: {names}.", code="model_not_found", param="model_name")


@router.post("/model/load", summary="Load a model by name (text-generation-webui's body)")
def model_load(body: LoadModelRequest, request: Request, principal: Principal = Depends(require_principal)) -> str:
    _require_owner(principal, "Loading a model")
    ctx = ctx_of(request)
    if body.settings:
        raise APIError(400, "settings are not applied by this server: send instruction_template, mode or a preset "
                            "with each request instead.", param="settings", code="unsupported_parameter")
    entry = _find(ctx, body.model_name.strip())
    args = dict(body.args or {})
    loader = args.pop("loader", None)
    if loader is not None and not isinstance(loader, str):
        raise APIError(400, "args.loader must be a loader name.", param="args.loader")
    store = ModelSettingsStore.in_data_dir(ctx.settings.data_dir)
    spec = spec_with_saved(ModelSpec(path=entry.path, loader=loader or entry.loader, display_name=entry.label),
                           store, args)
    try:
        load_and_remember(ctx.engine, spec, store)
    except UserFacingError as exc:
        raise user_error(exc) from exc
    except (ValueError, TypeError) as exc:  # an option value the loader refuses
        raise APIError(400, f"Loading failed: {exc}", param="args") from exc
    return "OK"


@router.post("/model/unload", summary="Unload the model")
def model_unload(request: Request, principal: Principal = Depends(require_principal)) -> str:
    _require_owner(principal, "Unloading the model")
    ctx_of(request).engine.unload()
    return "OK"


@router.post("/stop-generation", summary="Stop the generations the API started")
def stop_generation(request: Request, principal: Principal = Depends(require_principal)) -> str:
    _require_owner(principal, "Stopping generations")
    chat = ctx_of(request).chat
    chat.stop_matching("api:")
    chat.stop_matching("ollama:")
    return "OK"
