"""The Notebook's output views besides Raw: Markdown, Tokens (ids and pieces) and Logits (the next
token's most likely candidates, with or without the samplers). The work is
``webui.generation.inspect``'s, shared with ``/v1/internal/encode`` and ``/v1/internal/logits``."""

from __future__ import annotations

from typing import Any

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.generation import inspect
from webui.ui.events import action, lookup
from webui.ui.parameters_tab import to_params

TOKEN_HEADERS = ["#", "id", "piece"]
LOGIT_HEADERS = ["rank", "probability", "id", "token"]
DEFAULT_TOP = 25


@lookup
def markdown_view(text: str) -> str:
    """The text rendered as Markdown (gr.Markdown escapes raw HTML)."""
    return text or ""


@action
def tokens_view(ctx: AppContext, text: str) -> tuple[str, list[list[Any]]]:
    """(a one-line summary, a row per token: position, id, piece with its whitespace shown)."""
    view = inspect.tokens_view(ctx.engine, text or "")
    summary = f"**{len(view.ids)} tokens** in this text (no BOS added)."
    return summary, view.rows()


@action
def logits_view(ctx: AppContext, text: str, use_samplers: bool, top: float | None,
                *pvals: Any) -> tuple[str, list[list[Any]]]:
    """(what was computed, a row per candidate next token) at the end of ``text``. With samplers: the
    Parameters tab's values (and the enabled extensions' samplers), as the loaded backend applies them."""
    k = int(top or DEFAULT_TOP)
    if not text:
        raise UserFacingError("Write some text first: the next token is predicted from the text before it.")
    params = hooks = None
    if use_samplers:
        params = to_params(pvals)
        hooks = inspect.extension_hooks(ctx.chat.hooks, text, params)
    probs = inspect.next_tokens(ctx.engine, text, k, params, hooks)
    how = "after the samplers (the Parameters tab)" if use_samplers else "raw softmax of the logits"
    total = sum(p.prob for p in probs)
    return f"Top {len(probs)} next tokens, {how}; together {total:.1%} of the probability.", inspect.logits_rows(probs)
