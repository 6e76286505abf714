"""The Notebook's saved prompts (new, save, select, rename, delete), each user's own.

Who a request acts for comes from ``webui.ui.session`` (an account, a browser identity, or the
local single user), as for chats; the repository answers "not found" for another owner's prompt.
Switching prompts (or New) first saves the open prompt's text, so nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.storage.notebook import NotebookRepository
from webui.ui.events import action
from webui.ui.session import current_user_id, saving_user_id

UNTITLED = "Untitled"


def store(ctx: AppContext) -> NotebookRepository:
    if ctx.notebooks is None:
        raise UserFacingError("Saved prompts are not available here.")
    return ctx.notebooks


def list_update(ctx: AppContext, uid: int | None, selected: int | None) -> Any:
    """The saved-prompt list: (name, id) choices, ``selected`` checked."""
    choices = [(p.name, p.id) for p in store(ctx).list(uid)]
    return gr.update(choices=choices, value=selected if any(i == selected for _, i in choices) else None)


def free_name(ctx: AppContext, uid: int | None, wanted: str) -> str:
    """``wanted`` (trimmed), or "Untitled", "Untitled 2", ... when it is empty."""
    if wanted.strip():
        return wanted
    taken = {p.name for p in store(ctx).list(uid)}
    n = 1
    while (name := UNTITLED if n == 1 else f"{UNTITLED} {n}") in taken:
        n += 1
    return name


def _keep_open(ctx: AppContext, uid: int | None, prompt_id: int | None, text: str) -> None:
    if prompt_id is not None:
        store(ctx).save_text(prompt_id, text or "", uid)


@action
def load_list(ctx: AppContext, prompt_id: int | None, request: gr.Request | None) -> Any:
    """On page load: this user's saved prompts."""
    return list_update(ctx, current_user_id(ctx, request), prompt_id)


@action
def new_prompt(ctx: AppContext, prompt_id: int | None, text: str, name: str,
               request: gr.Request | None) -> tuple[Any, int, str, str, None]:
    """Save the open prompt, start an empty one named ``name`` (or Untitled N): (list, id, name, text, undo)."""
    uid = saving_user_id(ctx, request)
    _keep_open(ctx, uid, prompt_id, text)
    created = store(ctx).create(free_name(ctx, uid, name or ""), "", uid)
    return list_update(ctx, uid, created.id), created.id, created.name, "", None


@action
def save_prompt(ctx: AppContext, prompt_id: int | None, text: str, name: str,
                request: gr.Request | None) -> tuple[Any, int, str]:
    """Save the text into the open prompt, or into a new one named ``name`` when none is open."""
    uid = saving_user_id(ctx, request)
    if prompt_id is None:
        record = store(ctx).create(free_name(ctx, uid, name or ""), text or "", uid)
    else:
        record = store(ctx).save_text(prompt_id, text or "", uid)
    gr.Info(f"Saved “{record.name}”.")
    return list_update(ctx, uid, record.id), record.id, record.name


@action
def select_prompt(ctx: AppContext, prompt_id: int | None, text: str, chosen: int | None,
                  request: gr.Request | None) -> tuple[Any, int | None, str, str, None]:
    """Open ``chosen``, the open prompt saved first: (list, id, name, text, undo cleared)."""
    if chosen is None or chosen == prompt_id:
        return gr.skip(), prompt_id, gr.skip(), gr.skip(), gr.skip()
    uid = current_user_id(ctx, request)
    _keep_open(ctx, uid, prompt_id, text)
    record = store(ctx).get(int(chosen), uid)
    return gr.skip(), record.id, record.name, record.text, None


@action
def rename_prompt(ctx: AppContext, prompt_id: int | None, name: str, request: gr.Request | None) -> tuple[Any, str]:
    if prompt_id is None:
        raise UserFacingError("Open or save a prompt first.")
    uid = current_user_id(ctx, request)
    record = store(ctx).rename(prompt_id, name or "", uid)
    return list_update(ctx, uid, record.id), record.name


@action
def delete_prompt(ctx: AppContext, prompt_id: int | None, request: gr.Request | None) -> tuple[Any, None, str]:
    """Delete the open prompt; its text stays in the box (save it again to keep it)."""
    if prompt_id is None:
        raise UserFacingError("Open a saved prompt first.")
    uid = current_user_id(ctx, request)
    store(ctx).delete(prompt_id, uid)
    return list_update(ctx, uid, None), None, ""


def autosave(ctx: AppContext, uid: int | None, prompt_id: int | None, text: str) -> None:
    """After a generation: the open prompt keeps the new text."""
    _keep_open(ctx, uid, prompt_id, text)
