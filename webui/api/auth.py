"""Accounts (``--auth``/``--auth-file``) and API keys (``--api-key``), and who an API request is.

Rules (docs/deploy.md, docs/api.md):
- no accounts and no keys: the API is open. On a local server it acts for the single-user history;
  on one reachable from other machines it acts for nobody: it generates, but cannot save chats nor
  read or continue any (each browser's history is private, and anyone could call it);
- keys set: ``Authorization: Bearer KEY`` is required; a key given as ``user:KEY`` acts as that
  account, a bare key as the anonymous history;
- accounts set: HTTP Basic with an account's user/password is accepted too, and when no key is
  set it is the only way in (the API never bypasses the login page).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from webui.api.errors import APIError
from webui.config import Settings
from webui.errors import UserFacingError


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: an account name (None: the anonymous history) and its users row id.
    ``keeps_chats`` False: anyone at all (the open API of a reachable server), who may generate but
    has no saved chats or personas to use."""

    user: str | None
    user_id: int | None
    keeps_chats: bool = True


def _split_entry(entry: str, what: str) -> tuple[str, str]:
    user, sep, secret = entry.partition(":")
    if not sep or not user.strip() or not secret:
        raise UserFacingError(f"Invalid {what} entry {entry.split(':')[0]!r}...: expected user:password.")
    return user.strip(), secret


def load_accounts(settings: Settings) -> dict[str, str]:
    """user -> password from ``--auth`` entries and the ``--auth-file`` lines. Raises UserFacingError."""
    entries = list(settings.auth)
    if settings.auth_file is not None:
        path = Path(settings.auth_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserFacingError(f"Cannot read the auth file {path}: {exc.strerror or exc}.") from exc
        entries += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    accounts: dict[str, str] = {}
    for entry in entries:
        user, password = _split_entry(entry, "--auth")
        accounts[user] = password
    return accounts


def load_api_keys(settings: Settings) -> dict[str, str | None]:
    """key -> account name (None: the anonymous history)."""
    keys: dict[str, str | None] = {}
    for entry in settings.api_keys:
        entry = entry.strip()
        if not entry:
            continue
        user, sep, key = entry.partition(":")
        if sep and user and key:
            keys[key] = user
        else:
            keys[entry] = None
    return keys


class Authenticator:
    """Checks API credentials; built once from the settings and kept on ``app.state``."""

    def __init__(
        self, accounts: dict[str, str], api_keys: dict[str, str | None], ensure_user: Callable[[str], int],
        *, reachable: bool = False,
    ) -> None:
        self.accounts = accounts
        self.api_keys = api_keys
        self._ensure_user = ensure_user
        self.reachable = reachable  # other machines can connect (a Space, --listen)

    @property
    def open(self) -> bool:
        return not self.accounts and not self.api_keys

    def protection(self) -> str:
        """The start-up line that says who can reach what."""
        if self.accounts:
            count = len(self.accounts)
            ui = f"Accounts: {count} (login required)"
        elif self.reachable:
            ui = ("Reachable from other machines: each browser gets its own private chat history "
                  "(no accounts configured; add --auth for logins)")
        else:
            ui = "Local only: single-user"
        if self.api_keys:
            api = "API: key required"
        elif self.accounts:
            api = "API: account login (HTTP Basic) required"
        elif self.reachable:
            api = "API without a key: generates, but cannot save, read or continue chats (add --api-key)"
        else:
            api = "API: open"
        return f"{ui}. {api}."

    def principal(self, name: str | None) -> Principal:
        return Principal(name, self._ensure_user(name) if name is not None else None)

    def check_login(self, user: str, password: str) -> bool:
        """Gradio's login callback: constant-time comparison."""
        expected = self.accounts.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header value; raises APIError(401)."""
        if self.open:
            return Principal(None, None, keeps_chats=not self.reachable)
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            for key, user in self.api_keys.items():
                if hmac.compare_digest(key.encode(), value.encode()):
                    return self.principal(user)
            raise _unauthorized("Incorrect API key provided.", "invalid_api_key")
        if scheme.lower() == "basic" and value and self.accounts:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise _unauthorized("Malformed Basic credentials.", "invalid_api_key") from None
            if self.check_login(user, password):
                return self.principal(user)
            raise _unauthorized("Incorrect user name or password.", "invalid_api_key")
        how = "an API key (Authorization: Bearer KEY)" if self.api_keys else "an account (HTTP Basic user:password)"
        raise _unauthorized(f"This server needs {how}.", "missing_api_key")


def _unauthorized(message: str, code: str) -> APIError:
    return APIError(401, message, code=code, headers={"WWW-Authenticate": "Bearer"})


def require_principal(request: Request) -> Principal:
    """FastAPI dependency for every /v1 and /api route."""
    auth: Authenticator = request.app.state.authenticator
    return auth.authenticate(request.headers.get("authorization"))
