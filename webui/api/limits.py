"""Bounds on what one request may hand the server: its body's size and, for the API, its JSON nesting.

:class:`RequestLimitMiddleware` wraps the whole app (API and UI), so every route is covered without
each one checking:

- A body larger than ``max_bytes`` (the ``--max-request-mb`` setting, 20 MB by default) is answered
  413 as soon as it is known: at once when ``Content-Length`` says so, else when the bytes received
  pass the limit. The body is never held: the rest of it is read and thrown away (up to
  ``DRAIN_BYTES``, so an ordinary client sees the 413 instead of a reset connection), then the
  connection closes. Gradio's file upload (``.../upload``, written to disk in parts, never held) is
  exempt: ``webui.server`` passes ``max_file_size`` (the ``--max-upload-mb`` setting, 200 MB by
  default) to ``gr.mount_gradio_app``, and Gradio answers 413 to a larger file.
- A JSON body to ``/v1`` or ``/api`` nested deeper than ``MAX_JSON_DEPTH`` is answered 400 before
  anything parses it (``json.loads`` would raise ``RecursionError`` at about 1,000 levels; fewer
  levels would still reach code that walks them recursively).

API paths get the OpenAI-shaped error body of :mod:`webui.api.errors`; other paths ``{"detail": ...}``.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webui.api.errors import APIError, error_response
from webui.bounded_parse import MAX_DEPTH

MAX_JSON_DEPTH = MAX_DEPTH
DRAIN_BYTES = 128 * 2**20  # read and discard at most this much of a refused body
API_PREFIXES = ("/v1/", "/api/")
# A JSON string; an unterminated one runs to the end (so every match succeeds: linear time).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in a JSON text, brackets inside strings not counted.

    Works on the raw bytes without parsing (C-speed regex and ``bytes.translate``), so it is safe
    on any input; for text that is not JSON the number is only approximate, and the parser that
    runs next reports that text as invalid.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(_DEPTH_STEP[b] for b in brackets)))


class BodyTooLarge(Exception):
    """Raised from ``receive`` inside the app when the body passes the limit."""


class RequestLimitMiddleware:
    """ASGI middleware enforcing the body-size limit on every path and the JSON depth on API paths."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_upload(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse_large(scope, receive, send, already=0)
            return
        if scope["method"] == "POST" and scope["path"].startswith(API_PREFIXES):
            await self._checked_api_post(scope, receive, send)
            return
        await self._streamed(scope, receive, send)

    async def _checked_api_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the (bounded) body first, check its nesting, then replay it to the app, which would
        read all of it anyway."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse_large(scope, receive, send, already=size, more=message.get("more_body", False))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        del chunks
        if json_depth(body) > self.max_depth:
            message_text = f"The JSON body is nested deeper than {self.max_depth} levels."
            await error_response(APIError(400, message_text, code="json_too_deep"), scope["path"])(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the body through, counting it; past the limit the app's ``receive`` raises."""
        size = 0
        started = False
        last_more = True

        async def counted() -> Message:
            nonlocal size, last_more
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                last_more = message.get("more_body", False)
                if size > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse_large(scope, receive, send, already=size, more=last_more)

    async def _refuse_large(self, scope: Scope, receive: Receive, send: Send, *, already: int,
                            more: bool = True) -> None:
        drained = already
        while more and drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        limit_mb = self.max_bytes / 2**20
        text = f"The request body is larger than the server's limit of {limit_mb:g} MB (--max-request-mb)."
        response = _error(scope["path"], 413, text, "request_too_large")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _error(path: str, status: int, message: str, code: str) -> JSONResponse:
    if path.startswith(API_PREFIXES):
        return error_response(APIError(status, message, code=code), path)
    return JSONResponse({"detail": message}, status_code=status)


def _is_upload(path: str) -> bool:
    return path.endswith("/upload") and not path.startswith(API_PREFIXES)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def install_request_limits(app: Any, max_request_mb: int) -> None:
    """Add the middleware outermost (call after every other ``add_middleware``)."""
    app.add_middleware(RequestLimitMiddleware, max_bytes=int(max_request_mb * 2**20))
