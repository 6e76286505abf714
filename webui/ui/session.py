"""Who a UI request acts for.

Every UI handler passes ``current_user_id(ctx, request)`` to the repository, which enforces
ownership. Without accounts this is None (the single-user history); the accounts feature maps
``request.username`` to a users row here.
"""

from __future__ import annotations

import gradio as gr

from webui.context import AppContext


def current_user_id(ctx: AppContext, request: gr.Request | None) -> int | None:
    """The users row id of the logged-in account, or None when accounts are off.

    With accounts (``--auth``), Gradio's login sets ``request.username``; its users row is
    created on first login. A request without one is refused rather than shown the shared,
    anonymous history.
    """
    username = getattr(request, "username", None) if request is not None else None
    if username:
        return ctx.repo.ensure_user(str(username))
    if ctx.settings.auth or ctx.settings.auth_file:
        raise gr.Error("Log in first.")
    return None


def session_key(request: gr.Request | None) -> str:
    """A key for this browser tab's generation (Stop stops only its own reply)."""
    return (request.session_hash or "") if request is not None else ""
