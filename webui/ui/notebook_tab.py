"""The Notebook tab: free-form completion of a text (no chat template), as text-generation-webui's.

Generate continues the text in the box, streaming into it; Stop ends it; Regenerate replaces the
last continuation with a new one; Undo puts the text back as it was before the last Generate. The
model call is ``ChatService.complete``, the path of ``/v1/completions``: the same extension hooks
(state_modifier, input_modifier, custom_generate_reply, samplers, output_modifier). The Parameters
tab's values apply. Views: Raw (the box), Markdown, Tokens and Logits (``notebook_views``); saved
prompts in the database, each user's own (``notebook_prompts``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui import notebook_prompts as prompts
from webui.ui import notebook_views as views
from webui.ui.events import action, bind, lookup, on
from webui.ui.parameters_tab import ParamComponents, to_params
from webui.ui.session import current_user_id, session_key

UI_UPDATE_SECONDS = 0.1  # at most ~10 updates of the box a second; tokens in between are coalesced


@dataclass
class NotebookComponents:
    prompt_id: gr.State  # the open saved prompt (None: unsaved text)
    before: gr.State  # the text before the last Generate (None: nothing to undo)
    prompt_list: gr.Radio
    name: gr.Textbox
    new_btn: gr.Button
    save_btn: gr.Button
    rename_btn: gr.Button
    delete_btn: gr.Button
    text: gr.Textbox
    markdown_tab: gr.Tab
    markdown: gr.Markdown
    tokens_tab: gr.Tab
    tokens_btn: gr.Button
    tokens_info: gr.Markdown
    tokens: gr.Dataframe
    logits_btn: gr.Button
    use_samplers: gr.Checkbox
    top: gr.Number
    logits_info: gr.Markdown
    logits: gr.Dataframe
    generate_btn: gr.Button
    stop_btn: gr.Button
    regenerate_btn: gr.Button
    undo_btn: gr.Button


def build(ctx: AppContext) -> NotebookComponents:
    """Lay out the tab (inside the caller's ``gr.Tab``)."""
    prompt_id, before = gr.State(None), gr.State(None)
    with gr.Row():
        with gr.Column(scale=1, min_width=220):
            prompt_list = gr.Radio(label="Saved prompts", choices=[], elem_id="notebook-list", interactive=True)
            name = gr.Textbox(label="Name", placeholder="Name of the open prompt", elem_id="notebook-name")
            with gr.Row():
                new_btn = gr.Button("New", size="sm", elem_id="notebook-new")
                save_btn = gr.Button("Save", size="sm", elem_id="notebook-save")
            with gr.Row():
                rename_btn = gr.Button("Rename", size="sm", elem_id="notebook-rename")
                delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="notebook-delete")
        with gr.Column(scale=4):
            with gr.Tabs(elem_id="notebook-views"):
                with gr.Tab("Raw", id="notebook-raw"):
                    text = gr.Textbox(show_label=False, lines=20, max_lines=60, elem_id="notebook-text",
                                      placeholder="Write the beginning of a text; Generate continues it.")
                with gr.Tab("Markdown", id="notebook-markdown") as markdown_tab:
                    markdown = gr.Markdown(elem_id="notebook-markdown-view")
                with gr.Tab("Tokens", id="notebook-tokens") as tokens_tab:
                    tokens_btn = gr.Button("Refresh", size="sm", elem_id="notebook-tokens-refresh")
                    tokens_info = gr.Markdown(elem_id="notebook-tokens-info")
                    tokens = gr.Dataframe(headers=views.TOKEN_HEADERS, interactive=False, elem_id="notebook-tokens")
                with gr.Tab("Logits", id="notebook-logits"):
                    with gr.Row():
                        use_samplers = gr.Checkbox(label="Use samplers (the Parameters tab's)", value=False,
                                                   elem_id="notebook-use-samplers")
                        top = gr.Number(value=views.DEFAULT_TOP, precision=0, minimum=1, maximum=1000,
                                        label="Candidates", elem_id="notebook-top")
                        logits_btn = gr.Button("Get next-token probabilities", size="sm",
                                               elem_id="notebook-logits-refresh")
                    logits_info = gr.Markdown(elem_id="notebook-logits-info")
                    logits = gr.Dataframe(headers=views.LOGIT_HEADERS, interactive=False, elem_id="notebook-logits")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="notebook-generate")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="notebook-stop")
                regenerate_btn = gr.Button("Regenerate", elem_id="notebook-regenerate")
                undo_btn = gr.Button("Undo", elem_id="notebook-undo")
    return NotebookComponents(prompt_id, before, prompt_list, name, new_btn, save_btn, rename_btn, delete_btn, text,
                              markdown_tab, markdown, tokens_tab, tokens_btn, tokens_info, tokens, logits_btn,
                              use_samplers, top, logits_info, logits, generate_btn, stop_btn, regenerate_btn, undo_btn)


def notebook_key(request: gr.Request | None) -> str:
    """This browser tab's Notebook generation (its Stop leaves the Chat's reply alone)."""
    return "notebook:" + session_key(request)


def stream_completion(ctx: AppContext, text: str, request: gr.Request | None,
                      pvals: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
    """(the text with its continuation so far, the text before it), at most every UI_UPDATE_SECONDS."""
    if not text.strip():
        raise UserFacingError("Write the beginning of a text first: Generate continues it.")
    last = 0.0
    shown = None
    for progress in ctx.chat.complete(text, to_params(pvals), session_key=notebook_key(request)):
        now = time.monotonic()
        if progress.done or now - last >= UI_UPDATE_SECONDS:
            last, shown = now, text + progress.text
            yield shown, text
    if shown is None:
        yield text, text


@action
def notebook_generate(ctx: AppContext, text: str, request: gr.Request | None,
                      *pvals: Any) -> Iterator[tuple[str, str]]:
    """Continue the text: (the box, the text to undo back to)."""
    yield from stream_completion(ctx, text or "", request, pvals)


@action
def notebook_regenerate(ctx: AppContext, before: str | None, request: gr.Request | None,
                        *pvals: Any) -> Iterator[tuple[str, str]]:
    """A new continuation in place of the last one."""
    if before is None:
        raise UserFacingError("Nothing to regenerate yet: press Generate first.")
    yield from stream_completion(ctx, before, request, pvals)


@lookup
def notebook_undo(before: str | None, text: str) -> tuple[str, None]:
    """The text as it was before the last Generate (once)."""
    return (text if before is None else before), None


@lookup
def notebook_stop(ctx: AppContext, request: gr.Request | None) -> None:
    """Stop this tab's generation (a lookup: it must never wait behind the queue)."""
    ctx.chat.stop(notebook_key(request))


@action
def after_generation(ctx: AppContext, prompt_id: int | None, text: str, request: gr.Request | None) -> str:
    """Once the text stops changing: the open saved prompt keeps it; the Markdown view shows it."""
    prompts.autosave(ctx, current_user_id(ctx, request), prompt_id, text or "")
    return text or ""


def wire(ctx: AppContext, c: NotebookComponents, demo: gr.Blocks, params: ParamComponents) -> None:
    """Connect the tab's events; ``params``: the Parameters tab, whose values every generation uses."""
    p_inputs = params.inputs
    streamed = [c.text, c.before]
    for trigger, handler, inputs in ((c.generate_btn.click, notebook_generate, [c.text]),
                                     (c.regenerate_btn.click, notebook_regenerate, [c.before])):
        _then_after(ctx, c, on(trigger, bind(handler, ctx), [*inputs, *p_inputs], streamed, concurrency_limit=None,
                               show_progress="hidden"))
    on(c.stop_btn.click, bind(notebook_stop, ctx), None, None)
    _then_after(ctx, c, on(c.undo_btn.click, notebook_undo, [c.before, c.text], [c.text, c.before]))

    on(demo.load, bind(prompts.load_list, ctx), [c.prompt_id], c.prompt_list)
    opened = [c.prompt_list, c.prompt_id, c.name, c.text, c.before]
    on(c.new_btn.click, bind(prompts.new_prompt, ctx), [c.prompt_id, c.text, c.name], opened)
    on(c.save_btn.click, bind(prompts.save_prompt, ctx), [c.prompt_id, c.text, c.name],
       [c.prompt_list, c.prompt_id, c.name])
    on(c.prompt_list.input, bind(prompts.select_prompt, ctx), [c.prompt_id, c.text, c.prompt_list], opened)
    on(c.rename_btn.click, bind(prompts.rename_prompt, ctx), [c.prompt_id, c.name], [c.prompt_list, c.name])
    on(c.delete_btn.click, bind(prompts.delete_prompt, ctx), [c.prompt_id], [c.prompt_list, c.prompt_id, c.name])

    on(c.markdown_tab.select, views.markdown_view, [c.text], c.markdown)
    tokens_out = [c.tokens_info, c.tokens]
    on(c.tokens_tab.select, bind(views.tokens_view, ctx), [c.text], tokens_out)
    on(c.tokens_btn.click, bind(views.tokens_view, ctx), [c.text], tokens_out)
    on(c.logits_btn.click, bind(views.logits_view, ctx), [c.text, c.use_samplers, c.top, *p_inputs],
       [c.logits_info, c.logits])


def _then_after(ctx: AppContext, c: NotebookComponents, event: Any) -> None:
    """After ``event``: autosave the open prompt and refresh the Markdown view (quietly)."""
    on(event.then, bind(after_generation, ctx), [c.prompt_id, c.text], c.markdown, show_progress="hidden")
