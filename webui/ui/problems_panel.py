"""The one place the page lists the files that could not be loaded (see webui.problems).

At the top of the page, hidden while there are none: a closed accordion whose title is the notice
("2 files could not be loaded — see Problems"); opened, it lists each file with its kind and the
reason, and a Refresh button that re-reads every source. The list also follows the Characters tab's
saves, deletes and imports and the Extensions tab's switches (``follow``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.file_checks import refresh_all
from webui.problems import Problem
from webui.ui.events import action, bind, lookup, on


@dataclass
class ProblemsComponents:
    box: gr.Accordion
    table: gr.HTML
    refresh: gr.Button

    def outputs(self) -> list[Any]:
        return [self.box, self.table]


def notice(count: int) -> str:
    """The accordion's title: the notice line."""
    return f"{count} file{'s' if count != 1 else ''} could not be loaded — see Problems"


def table_html(problems: list[Problem]) -> str:
    if not problems:
        return "<p>Every file loaded.</p>"
    rows = "".join(
        f"<tr><td><code>{html.escape(p.file)}</code></td><td>{html.escape(p.kind)}</td>"
        f"<td>{html.escape(p.reason)}</td></tr>" for p in problems)
    return ("<p>These files were skipped; the app runs without them. Fix or remove a file, then Refresh.</p>"
            f"<table id='problems-list'><thead><tr><th>File</th><th>Kind</th><th>Reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def build(ctx: AppContext) -> ProblemsComponents:
    problems = ctx.problems.all()
    with gr.Accordion(notice(len(problems)), open=False, visible=bool(problems), elem_id="problems") as box:
        table = gr.HTML(table_html(problems), elem_id="problems-table")
        refresh_btn = gr.Button("Refresh", size="sm", elem_id="problems-refresh")
    return ProblemsComponents(box, table, refresh_btn)


@lookup
def show(ctx: AppContext) -> list[Any]:
    """The notice (hidden when there is nothing to say) and the list, as collected."""
    problems = ctx.problems.all()
    return [gr.update(label=notice(len(problems)), visible=bool(problems)), table_html(problems)]


@action
def refresh(ctx: AppContext) -> list[Any]:
    """Re-read characters, extensions, presets, templates, settings files and the models folder."""
    refresh_all(ctx)
    return show(ctx)


def wire(ctx: AppContext, c: ProblemsComponents, demo: gr.Blocks) -> None:
    on(demo.load, bind(show, ctx), None, c.outputs())
    on(c.refresh.click, bind(refresh, ctx), None, c.outputs())


def follow(ctx: AppContext, c: ProblemsComponents, events: list[Any]) -> None:
    """Show the list again after each of ``events`` (reloads that re-report a source)."""
    for event in events:
        on(event.then, bind(show, ctx), None, c.outputs())
