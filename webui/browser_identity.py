"""Each browser's own private history when the server is reachable without accounts.

On a Hugging Face Space or with ``--listen`` and no ``--auth``, anyone who can reach the port opens
the same UI. Rather than one shared history, each browser gets an anonymous identity: a random id in
a cookie signed with HMAC-SHA256, so it cannot be forged or altered (a tampered or unknown cookie is
ignored and a new identity is issued). The identity maps to a users row named ``browser:<id>`` (an
account name cannot contain ``:``), so every per-user check of the repository applies to it as it
does to accounts (``webui.ui.session.current_user_id``).

The signing key comes from ``WEBUI_SESSION_SECRET`` or is generated once into
``<data-dir>/browser-identity.key`` (mode 0600); a new key forgets every browser's identity (their
chats stay in the database, unreachable from the UI).

The cookie: ``HttpOnly``, 400 days, ``SameSite=Lax`` over plain HTTP. Over HTTPS it is ``Secure``
and ``SameSite=None``, because a Space is shown inside an iframe on huggingface.co (another site),
where a Lax cookie is neither stored nor sent (Gradio's own login cookie does the same). A browser
that refuses the cookie still gets a private history, kept for one page load (see
``page_user_name``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from webui.config import Settings
from webui.errors import UserFacingError

COOKIE_NAME = "webui_browser"
USER_PREFIX = "browser:"  # users row name of a browser identity; ":" cannot appear in an account name
PAGE_PREFIX = "page:"  # users row name of a page load whose browser refused the cookie
SECRET_FILE = "browser-identity.key"
MAX_AGE_SECONDS = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chrome caps it at 400 days)
ID_BYTES = 18
# Paths that never need an identity: the API (its own auth) and the health check.
UNCOOKIED_PREFIXES = ("/v1/", "/api/", "/healthz", "/docs", "/openapi.json")
_SIGN_CONTEXT = b"webui browser identity\x00"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def load_secret(settings: Settings) -> bytes:
    """The signing key: ``session_secret`` (``WEBUI_SESSION_SECRET``) or the key file in the data dir,
    created once (0600) and re-read on later starts. Raises UserFacingError."""
    if settings.session_secret:
        if len(settings.session_secret) < 16:
            raise UserFacingError("WEBUI_SESSION_SECRET is too short: use at least 16 random characters.")
        return settings.session_secret.encode()
    path = settings.data_dir / SECRET_FILE
    try:
        return _read_secret(path) if path.exists() else _create_secret(path)
    except OSError as exc:
        raise UserFacingError(f"Cannot keep the browser identity key {path}: {exc.strerror or exc}.") from exc


def _read_secret(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a copied data dir may have widened it; the key is as good as a password
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise UserFacingError(f"The browser identity key {path} is damaged; delete it (visitors get new identities).")
    return key.encode()


def _create_secret(path: Path) -> bytes:
    """Write a new key to a 0600 temporary file and link it into place: a second app starting on the
    same data dir at the same moment reads the first one's key instead of replacing it."""
    key = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".identity-", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_secret(path)
    finally:
        os.unlink(tmp)
    return key.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class BrowserIdentities:
    """Issues and checks the signed identity cookies; built once per app from the signing key."""

    secret: bytes

    def _signature(self, identity: str) -> str:
        return _b64(hmac.new(self.secret, _SIGN_CONTEXT + identity.encode("ascii"), hashlib.sha256).digest())

    def new_cookie_value(self) -> str:
        """A new identity, signed: ``<id>.<signature>``."""
        identity = _b64(secrets.token_bytes(ID_BYTES))
        return f"{identity}.{self._signature(identity)}"

    def identity(self, cookie_value: str | None) -> str | None:
        """The id in a cookie value whose signature holds, else None (missing, altered, foreign)."""
        if not cookie_value or len(cookie_value) > 200:
            return None
        identity, sep, signature = cookie_value.partition(".")
        if not sep or not identity or not identity.isascii():
            return None
        if not hmac.compare_digest(self._signature(identity).encode(), signature.encode("ascii", "replace")):
            return None
        return identity

    def user_name(self, cookies: Mapping[str, str] | None) -> str | None:
        """The users row name of the browser that sent ``cookies``, or None without a valid cookie."""
        identity = self.identity(cookies.get(COOKIE_NAME) if cookies is not None else None)
        return USER_PREFIX + identity if identity else None

    def page_user_name(self, session_hash: str) -> str:
        """The users row name for one page load (Gradio's session hash) of a browser that keeps no
        cookie: private, but gone with a reload."""
        digest = hmac.new(self.secret, b"page\x00" + session_hash.encode(), hashlib.sha256).digest()
        return PAGE_PREFIX + _b64(digest[:ID_BYTES])

    def set_cookie_header(self, value: str, *, secure: bool) -> str:
        """The ``Set-Cookie`` value for ``value`` (see the module docstring for the attributes)."""
        same_site = "SameSite=None; Secure" if secure else "SameSite=Lax"
        return f"{COOKIE_NAME}={value}; Path=/; Max-Age={MAX_AGE_SECONDS}; HttpOnly; {same_site}"


def request_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of an ASGI request (a malformed Cookie header counts as none)."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def came_over_https(scope: Scope) -> bool:
    """The browser used HTTPS: to this server, or to the proxy in front of it (``X-Forwarded-Proto``).
    A forged header only makes the cookie Secure, which hurts no one but the forger."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-proto":
            return value.decode("latin-1").split(",")[0].strip().lower() == "https"
    return False


class BrowserIdentityMiddleware:
    """Gives every browser that arrives without a valid identity cookie a new one (pure ASGI, so
    streamed responses pass through untouched). Handlers read the cookie the browser sends with
    its next requests; the page that set it sends it with every Gradio event after it loaded."""

    def __init__(self, app: ASGIApp, identities: BrowserIdentities) -> None:
        self.app = app
        self.identities = identities

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(UNCOOKIED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.identities.user_name(request_cookies(scope)) is not None:
            await self.app(scope, receive, send)
            return
        header = self.identities.set_cookie_header(self.identities.new_cookie_value(), secure=came_over_https(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", header.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def browser_identities(settings: Settings) -> BrowserIdentities | None:
    """The identities of a server reachable without accounts; None when it is local or has accounts
    (there the single-user history or the login decides who a request is). Raises UserFacingError."""
    return BrowserIdentities(load_secret(settings)) if settings.per_browser_history else None
