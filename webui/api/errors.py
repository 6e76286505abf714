"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, for /v1, and in
Ollama's, ``{"error": "message"}``, for /api.

Routes raise :class:`APIError`; the handlers installed by :func:`install_error_handlers` turn it,
request validation failures, HTTP errors and anything unexpected into that JSON shape with the
right status code, so a bad request never gets a plain-text 500 and the server keeps serving.
Every bad request value (a field of the wrong type, out of range, unknown) is a 400
``invalid_request_error`` naming the field, as OpenAI's own API answers; 422 is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from webui.errors import DiskFullError, StorageError, UserFacingError

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
    507: "server_error",
}


class APIError(Exception):
    """An error a client should see, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OLLAMA_PREFIX = "/api/"


def error_response(exc: APIError, path: str = "") -> JSONResponse:
    """The error as JSON: Ollama's ``{"error": "message"}`` under /api/ (what its clients read), else OpenAI's."""
    body: dict[str, Any] = {"error": exc.message} if path.startswith(OLLAMA_PREFIX) else exc.body()
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def user_error(exc: UserFacingError) -> APIError:
    """The API error for a message meant for the user: a full disk is 507 Insufficient Storage
    (the request was fine; retry once space is freed), another storage failure 503, the rest 400."""
    if isinstance(exc, DiskFullError):
        return APIError(507, str(exc), code="insufficient_storage")
    if isinstance(exc, StorageError):
        return APIError(503, str(exc), code="storage_error")
    return APIError(400, str(exc))


def validation_param(errors: list[dict[str, Any]]) -> str | None:
    """The first failing field's dotted name (``messages.0.role``), None for the body as a whole."""
    if not errors:
        return None
    loc = [str(p) for p in errors[0].get("loc", ()) if p not in ("body", "query", "path")]
    return ".".join(loc) or None


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line naming each failing field (up to five) and what is wrong with it."""
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def invalid_request(errors: list[dict[str, Any]], names: Mapping[str, str] | None = None) -> APIError:
    """The 400 for a body that failed validation: not JSON (``invalid_json``) or a field of the wrong
    type, out of range or unknown (``invalid_value``, ``param`` naming it). ``names``: field -> the
    name the client sent it under (an alias, Ollama's ``options.num_predict``), used in the message."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return APIError(400, validation_message(errors), code="invalid_json")
    if names:
        errors = [{**e, "loc": tuple(names.get(str(p), p) for p in e.get("loc", ()))} for e in errors]
    return APIError(400, validation_message(errors), param=validation_param(errors), code="invalid_value")


CATCH_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


class OddMethodMiddleware:
    """Any other HTTP method (QUERY, PROPFIND...) on an API path: an OpenAI-shaped 405, not the UI's 404."""

    def __init__(self, app: Any, prefixes: tuple[str, ...] = ("/v1/", "/api/")) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        odd = scope["type"] == "http" and scope["method"] not in CATCH_ALL_METHODS
        if odd and scope["path"].startswith(self.prefixes):
            message = f"Method {scope['method']} not allowed."
            response = error_response(APIError(405, message, code="method_not_allowed"), scope["path"])
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_catch_all(app: FastAPI, routers: Sequence[APIRouter], prefixes: tuple[str, ...] = ("/v1", "/api")) -> None:
    """Unknown paths and wrong methods under the API prefixes get OpenAI-shaped 404/405 errors
    instead of falling through to the UI mounted at /. Call after ``routers`` are included."""
    api_routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]

    async def not_found(request: Request) -> JSONResponse:
        path = request.url.path
        allowed = sorted({m for r in api_routes if r.matches({"type": "http", "path": path, "method": "GET"})[0].value
                          for m in (getattr(r, "methods", None) or ())})
        if allowed:
            message = f"Method {request.method} not allowed on {path}; use {', '.join(allowed)}."
            return error_response(APIError(405, message, code="method_not_allowed",
                                           headers={"Allow": ", ".join(allowed)}), path)
        return error_response(APIError(404, f"No API endpoint {path}.", code="not_found"), path)

    app.add_middleware(OddMethodMiddleware)
    for prefix in prefixes:
        app.add_api_route(prefix + "/{rest:path}", not_found, methods=list(CATCH_ALL_METHODS),
                          include_in_schema=False)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of the app's own routes (not the mounted UI) an OpenAI-shaped JSON body."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(user_error(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(list(exc.errors())), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        error = APIError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None))
        return error_response(error, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        error = APIError(500, f"Internal error: {type(exc).__name__}: {exc}", code="internal_error")
        return error_response(error, request.url.path)
