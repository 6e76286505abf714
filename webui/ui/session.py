"""Who a UI request acts for.

Every UI handler passes ``current_user_id(ctx, request)`` to the repository, which enforces
ownership. Three cases (docs/deploy.md):

- accounts (``--auth``): Gradio's login sets ``request.username``, mapped to its users row;
- reachable from other machines without accounts (a Space, ``--listen``): each browser's signed
  identity cookie (``webui.browser_identity``), mapped to its own users row;
- local only, no accounts: None, the single-user history.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.context import AppContext

NOBODY = 0  # the user id of a browser identity that has saved nothing yet: no users row has it


def current_user_id(ctx: AppContext, request: gr.Request | None) -> int | None:
    """The users row id this request acts for, or None for the local single-user history. Refuses
    (gr.Error) what ``acting_user_name`` refuses.

    An account's row is created on first use. A browser identity's is not (``saving_user_id`` does
    it): until it saves something it is ``NOBODY``, which owns nothing, and anything saved for it is
    refused by the database's foreign key. So a visitor who only looks, a crawler, or a client making
    up ``page:`` session hashes adds no row.
    """
    name = acting_user_name(ctx, request)
    if name is None:
        return None
    if ctx.browsers is None:
        return ctx.repo.ensure_user(name)
    found = ctx.repo.find_user(name)
    return NOBODY if found is None else found


def saving_user_id(ctx: AppContext, request: gr.Request | None) -> int | None:
    """``current_user_id``, its users row created first: for a handler that saves something new
    for this request's user (a chat, a persona)."""
    name = acting_user_name(ctx, request)
    return None if name is None else ctx.repo.ensure_user(name)


def acting_user_name(ctx: AppContext, request: gr.Request | None) -> str | None:
    """The users row name this request acts for: the logged-in account, this browser's identity
    (``browser:...``), or None for the local single-user history.

    With accounts, a request without a login is refused rather than shown the shared, anonymous
    history; so is a request without a browser identity where each browser has its own.
    """
    username = getattr(request, "username", None) if request is not None else None
    if username:
        return str(username)
    if ctx.settings.has_accounts:
        raise gr.Error("Log in first.")
    if ctx.browsers is not None:
        return browser_user_name(ctx, request)
    return None


def browser_user_name(ctx: AppContext, request: gr.Request | None) -> str:
    """The users row name of this request's browser: its signed cookie's identity or, when the
    browser keeps no cookie, one for this page load. Needs ``ctx.browsers``."""
    if ctx.browsers is None:
        raise RuntimeError("browser identities are off: the server is local or has accounts")
    name = ctx.browsers.user_name(_cookies(request))
    if name is not None:
        return name
    page = request.session_hash if request is not None else None
    if not page:
        raise gr.Error("This page has no identity; reload it.")
    return ctx.browsers.page_user_name(page)


def reply_owner(ctx: AppContext, request: gr.Request | None) -> str | None:
    """Who may stream a reply this request registers (``webui.ui.live_reply``): the browser of a
    valid identity cookie; None (the token alone) on a local server, with accounts, or for a
    browser that keeps no cookie."""
    return ctx.browsers.user_name(_cookies(request)) if ctx.browsers is not None else None


def _cookies(request: gr.Request | None) -> Any:
    """The request's cookies: a mapping with ``get`` (Gradio keeps them for queued events too)."""
    if request is None:
        return None
    try:
        return request.cookies
    except AttributeError:  # a gr.Request built without an HTTP request
        return None


def session_key(request: gr.Request | None) -> str:
    """A key for this browser tab's generation (Stop stops only its own reply)."""
    return (request.session_hash or "") if request is not None else ""
