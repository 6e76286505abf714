"""Who a UI request acts for.

Every UI handler passes ``current_user_id(ctx, request)`` to the repository, which enforces
ownership. Without accounts this is None (the single-user history); the accounts feature maps
``request.username`` to a users row here.
"""

from __future__ import annotations

import gradio as gr

from webui.context import AppContext


def current_user_id(ctx: AppContext, request: gr.Request | None) -> int | None:
    """The users row id of the logged-in account, or None when accounts are off."""
    return None


def session_key(request: gr.Request | None) -> str:
    """A key for this browser tab's generation (Stop stops only its own reply)."""
    return (request.session_hash or "") if request is not None else ""
