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

The cookie: ``HttpOnly``, 400 days, ``SameSite=Lax`` over plain HTTP. Over HTTPS it is ``Secure``,
``SameSite=None`` and ``Partitioned``, because a Space is shown inside an iframe on huggingface.co
(another site), where a Lax cookie is neither stored nor sent; ``Partitioned`` (CHIPS) keeps it to
the site that embeds the page. A browser that refuses the cookie still gets a private history, kept
for one page load (see ``page_user_name``).

A cookie that other sites' requests carry must not act for its browser there: Gradio answers any
``Origin`` with ``Access-Control-Allow-Credentials: true`` on a server that is not localhost, so a
page on another site could otherwise read the visitor's chats. The middleware therefore removes the
identity cookie from every request another origin makes (``cross_origin``): it then acts as a new,
empty identity, and gets no cookie of its own (which would replace the visitor's). The page itself,
even inside the huggingface.co iframe, calls its own origin, so it keeps its identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import cookie_parser

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
    """The key in ``path``. A damaged one stops the start (UserFacingError) rather than being replaced:
    a new key would silently cut every visitor off from their chats."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a copied data dir may have widened it; the key is as good as a password
    raw = path.read_bytes()
    for _ in range(5):  # another app may have just created it (``_create_exclusive``) and not yet written it
        if raw:
            break
        time.sleep(0.05)
        raw = path.read_bytes()
    key = raw.strip()
    if len(key) < 32 or not key.isascii() or any(not 0x21 <= byte <= 0x7E for byte in key):
        raise UserFacingError(
            f"The browser identity key {path} is damaged (it must hold one line of at least 32 characters). "
            "Restore it from a backup of the data dir to keep every visitor's history, or delete it to start "
            "with a new key: every browser then gets a new identity and cannot reach its earlier chats."
        )
    return key


def _create_secret(path: Path) -> bytes:
    """Write a new key to a 0600 temporary file and link it into place: a second app starting on the
    same data dir at the same moment reads the first one's key instead of replacing it. Where the
    file system has no hard links, the key file is created exclusively instead."""
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
        except OSError:  # no hard links here (some network, FUSE and Windows-shared file systems)
            return _create_exclusive(path, key)
    finally:
        os.unlink(tmp)
    return key.encode()


def _create_exclusive(path: Path, key: str) -> bytes:
    """Create ``path`` (0600) holding ``key``, unless another app created it first: then its key."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
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
        same_site = "SameSite=None; Secure; Partitioned" if secure else "SameSite=Lax"
        return f"{COOKIE_NAME}={value}; Path=/; Max-Age={MAX_AGE_SECONDS}; HttpOnly; {same_site}"


def request_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of an ASGI request, parsed as the handlers parse them (Starlette's parser, which
    keeps the others when one is malformed)."""
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
    return cookies


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def came_over_https(scope: Scope) -> bool:
    """The browser used HTTPS: to this server, or to the proxy in front of it (``X-Forwarded-Proto``).
    A forged header only makes the cookie Secure, which hurts no one but the forger."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    forwarded = _header(scope, b"x-forwarded-proto")
    return forwarded is not None and forwarded.split(",")[0].strip().lower() == "https"


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) of ``host[:port]``, the port defaulting to the scheme's; None if unparsable."""
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else (443 if scheme == "https" else 80)


def cross_origin(scope: Scope) -> bool:
    """Whether another origin (another site's page, a sibling subdomain, a sandboxed frame) made this
    request, so that its identity cookie must not count.

    Browsers say so in ``Sec-Fetch-Site``, which no page can set: anything but ``same-origin`` or
    ``none`` (typed, bookmarked) is foreign, except a plain navigation (GET, ``Sec-Fetch-Mode:
    navigate``), whose answer the other site cannot read: following a link to the app, or
    huggingface.co loading the Space into its iframe. Without that header (older browsers), an
    ``Origin`` whose scheme is not the one the request came over, or whose host is neither ``Host``
    nor ``X-Forwarded-Host`` (the proxy's public name), is foreign; ``Origin: null`` always is.
    """
    method = str(scope.get("method", "GET")).upper()
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        if site.strip().lower() in ("same-origin", "none"):
            return False
        mode = (_header(scope, b"sec-fetch-mode") or "").strip().lower()
        return not (method in ("GET", "HEAD") and mode == "navigate")
    origin = _header(scope, b"origin")
    if origin is None:
        return False
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return True
    if parts.scheme not in ("http", "https"):
        return True  # "null": a sandboxed frame, a file, a privacy-sensitive redirect
    scheme = "https" if came_over_https(scope) else "http"  # the scheme the browser used to reach this server
    if parts.scheme != scheme:
        return True
    origin_host = _host_port(parts.netloc, scheme)
    candidates = [_header(scope, b"host") or ""]
    forwarded = _header(scope, b"x-forwarded-host")
    if forwarded:
        candidates.append(forwarded.split(",")[0])
    return origin_host is None or all(_host_port(c, scheme) != origin_host for c in candidates)


def without_identity_cookie(scope: Scope) -> Scope:
    """A copy of ``scope`` whose Cookie headers no longer carry the identity cookie (the others stay)."""
    headers = []
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            kept = [chunk for chunk in value.decode("latin-1").split(";")
                    if chunk.partition("=")[0].strip() != COOKIE_NAME]
            if not any(chunk.strip() for chunk in kept):
                continue
            value = ";".join(kept).strip().encode("latin-1")
        headers.append((name, value))
    return {**scope, "headers": headers}


def _private_cache(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` of a response that sets a cookie, with ``Cache-Control`` made ``private``: no shared
    cache (a CDN, a company proxy) may keep it and hand one visitor's identity to others. The
    response's own directives stay, less those for shared caches."""
    directives: list[str] = []
    others = []
    for name, value in headers:
        if name.lower() == b"cache-control":
            directives += [d.strip() for d in value.decode("latin-1").split(",") if d.strip()]
        else:
            others.append((name, value))
    kept = [d for d in directives if d.split("=")[0].strip().lower() not in ("public", "s-maxage", "private")]
    return [*others, (b"cache-control", ", ".join(["private", *kept]).encode("latin-1"))]


class BrowserIdentityMiddleware:
    """Gives every browser that arrives without a valid identity cookie a new one (pure ASGI, so
    streamed responses pass through untouched). Handlers read the cookie the browser sends with
    its next requests; the page that set it sends it with every Gradio event after it loaded.
    Requests from other origins lose the cookie and get none (``cross_origin``)."""

    def __init__(self, app: ASGIApp, identities: BrowserIdentities) -> None:
        self.app = app
        self.identities = identities

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(UNCOOKIED_PREFIXES):
            await self.app(scope, receive, send)
            return
        header: str | None = None
        if cross_origin(scope):
            scope = without_identity_cookie(scope)  # acts for nobody's chats, and sets no cookie
        elif self.identities.user_name(request_cookies(scope)) is None:
            header = self.identities.set_cookie_header(self.identities.new_cookie_value(),
                                                       secure=came_over_https(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if header is not None:
                    headers.append((b"set-cookie", header.encode("latin-1")))
                if any(name.lower() == b"set-cookie" for name, _ in headers):
                    headers = _private_cache(headers)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def browser_identities(settings: Settings) -> BrowserIdentities | None:
    """The identities of a server reachable without accounts; None when it is local or has accounts
    (there the single-user history or the login decides who a request is). Raises UserFacingError."""
    return BrowserIdentities(load_secret(settings)) if settings.per_browser_history else None
