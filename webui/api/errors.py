"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, for /v1 and /api.

Routes raise :class:`APIError`; the handlers installed by :func:`install_error_handlers` turn it,
request validation failures, HTTP errors and anything unexpected into that JSON shape with the
right status code, so a bad request never gets a plain-text 500 and the server keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    422: "invalid_request_error",
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


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def user_error(exc: UserFacingError) -> APIError:
    """The API error for a message meant for the user: a full disk is 507 Insufficient Storage
    (the request was fine; retry once space is freed), another storage failure 503, the rest 400."""
    if isinstance(exc, DiskFullError):
        return APIError(507, str(exc), code="insufficient_storage")
    if isinstance(exc, StorageError):
        return APIError(503, str(exc), code="storage_error")
    return APIError(400, str(exc))


def _validation_param(errors: list[dict[str, Any]]) -> str | None:
    if not errors:
        return None
    loc = [str(p) for p in errors[0].get("loc", ()) if p not in ("body", "query", "path")]
    return ".".join(loc) or None


def validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


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
            response = error_response(APIError(405, message, code="method_not_allowed"))
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
                                           headers={"Allow": ", ".join(allowed)}))
        return error_response(APIError(404, f"No API endpoint {path}.", code="not_found"))

    app.add_middleware(OddMethodMiddleware)
    for prefix in prefixes:
        app.add_api_route(prefix + "/{rest:path}", not_found, methods=list(CATCH_ALL_METHODS),
                          include_in_schema=False)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of the app's own routes (not the mounted UI) an OpenAI-shaped JSON body."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(user_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        # A body that is not JSON at all is a 400; JSON of the wrong shape is a 422.
        bad_json = any(e.get("type") == "json_invalid" for e in errors)
        status = 400 if bad_json else 422
        param = None if bad_json else _validation_param(errors)
        return error_response(APIError(status, validation_message(errors), param=param,
                                        code="invalid_json" if bad_json else "invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(APIError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(APIError(500, f"Internal error: {type(exc).__name__}: {exc}", code="internal_error"))
