"""The Training tab's run side: start a run, follow it live, stop and resume it, show what it made,
and apply the adapter to the loaded model.

A run is a child process owned by ``ctx.training`` (``RunManager``), which writes its ``RunStatus``
to a file; every view here is made from those files, so the runs list survives a server restart.
The page reads the shown run through a ``gr.Timer`` that ``view`` switches on only while the run is
queued or running.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr
import pandas as pd

from webui.context import AppContext
from webui.errors import UserFacingError
from webui.training.lora_library import LoraLibrary
from webui.training.runs import RunManager
from webui.training.types import RunStatus
from webui.ui import training_data as data
from webui.ui.chat_components import model_markdown
from webui.ui.events import action, lookup

RUN_COLUMNS = ["Run", "Adapter", "Method", "State", "Step", "Started", "Message"]
SERIES_COLORS = {"train": "#2563eb", "validation": "#ea580c"}
LIVE_STATES = ("queued", "running")
NO_TRAINING = "Training is not available in this server."
STATE_WORDS = {"queued": "starting", "running": "running", "done": "done", "failed": "failed", "stopped": "stopped"}


def _manager(ctx: AppContext) -> RunManager:
    if ctx.training is None:
        raise UserFacingError(NO_TRAINING)
    return ctx.training


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def state_words(status: RunStatus) -> str:
    if status.state == "stopped":
        return "stopped, checkpoint kept" if status.checkpoint else "stopped"
    return STATE_WORDS.get(status.state, status.state)


def progress_html(status: RunStatus | None) -> str:
    """A progress bar with step/max, epoch, tokens/s and ETA (plain HTML: no script, no CDN)."""
    if status is None:
        return '<div class="train-progress" data-state="none"><em>No run selected.</em></div>'
    total = max(status.max_steps, 0)
    fraction = min(1.0, status.step / total) if total else 0.0
    if status.state == "done":
        fraction = 1.0
    parts = [f"Step {status.step} / {total or '?'}", f"epoch {status.epoch:.2f}"]
    if status.tokens_per_second:
        parts.append(f"{status.tokens_per_second:,.0f} tokens/s")
    if status.state in LIVE_STATES:
        parts.append(f"ETA {_duration(status.eta_seconds)}")
    parts.append(state_words(status))
    color = {"failed": "#dc2626", "stopped": "#ca8a04", "done": "#16a34a"}.get(status.state, "#2563eb")
    return (
        f'<div class="train-progress" data-state="{status.state}" data-step="{status.step}" data-max="{total}">'
        f'<div style="background:var(--background-fill-secondary);border-radius:6px;height:14px;overflow:hidden;'
        f'border:1px solid var(--border-color-primary)"><div class="train-progress-fill" style="height:100%;'
        f'width:{fraction * 100:.1f}%;background:{color};transition:width .4s"></div></div>'
        f'<div class="train-progress-line" style="margin-top:4px;font-size:var(--text-sm)">'
        f'<strong>{html.escape(status.name)}</strong> · {html.escape(" · ".join(parts))}</div></div>'
    )


def loss_frame(status: RunStatus | None) -> pd.DataFrame | None:
    """The loss curves as one long table (step, loss, series) for ``gr.LinePlot``; None (an empty
    chart) before the first point.

    The chart keeps what it learnt from the first table it draws: the column types (an empty
    table's are not numbers, hence None) and the series (their colours). So both series are always
    in the table: one not started yet (validation comes first, at step 0; training at step 1) has a
    single row without a loss, which the chart does not draw."""
    train = status.train_loss if status is not None else []
    val = status.val_loss if status is not None else []
    if not train and not val:
        return None
    rows = [(int(s), float(v), "train") for s, v in train] + [(int(s), float(v), "validation") for s, v in val]
    first = rows[0][0]
    rows += [(first, float("nan"), name) for name, points in (("train", train), ("validation", val)) if not points]
    return pd.DataFrame({
        "step": pd.Series([r[0] for r in rows], dtype="int64"),
        "loss": pd.Series([r[1] for r in rows], dtype="float64"),
        "series": [r[2] for r in rows],
    })


def results_markdown(status: RunStatus | None) -> str:
    if status is None:
        return ""
    if status.state == "failed":
        return f"**Failed:** {status.message or 'the run ended without a message (see the log).'}"
    if status.state == "stopped":
        if status.message:  # the worker's own words (where it stopped, what Resume does)
            return f"**Stopped.** {status.message}"
        tail = " A checkpoint is kept: **Resume** continues from it." if status.checkpoint else ""
        return f"**Stopped** at step {status.step}.{tail}"
    if status.state != "done":
        return status.message or ""
    lines = []
    before, after = status.perplexity_before, status.perplexity_after
    if before is not None and after is not None:
        lines.append(f"Validation perplexity: **{before:.2f} → {after:.2f}**")
    lines.append(f"Adapter **{status.name}** saved in `{status.adapter_dir}`.")
    if status.message:
        lines.append(status.message)
    return "  \n".join(lines)


def sample_rows(status: RunStatus | None) -> list[list[str]]:
    if status is None:
        return []
    return [[s.get("prompt", ""), s.get("base", ""), s.get("adapter", "")] for s in status.samples]


def runs_rows(statuses: list[RunStatus]) -> list[list[Any]]:
    return [[s.id, s.name, s.method, state_words(s), f"{s.step}/{s.max_steps}", (s.started_at or "")[:16].replace(
        "T", " "), s.message] for s in statuses]


def run_choices(statuses: list[RunStatus]) -> list[tuple[str, str]]:
    """The runs by adapter name and start (their state is in the runs table: it changes)."""
    return [(f"{s.name} · {s.method} · {(s.started_at or '')[:16].replace('T', ' ')}", s.id) for s in statuses]


def _list(ctx: AppContext) -> list[RunStatus]:
    return ctx.training.list() if ctx.training is not None else []


def _find(statuses: list[RunStatus], run_id: str | None) -> RunStatus | None:
    return next((s for s in statuses if s.id == run_id), None)


def view(ctx: AppContext, run_id: str | None, statuses: list[RunStatus] | None = None) -> list[Any]:
    """What the run panel shows for ``run_id`` (``TrainingComponents.run_view()`` order)."""
    statuses = _list(ctx) if statuses is None else statuses
    status = _find(statuses, run_id)
    live = status is not None and status.state in LIVE_STATES
    resumable = status is not None and status.state in ("stopped", "failed") and bool(status.checkpoint)
    return [
        progress_html(status), loss_frame(status), results_markdown(status), sample_rows(status),
        gr.update(interactive=live), gr.update(interactive=resumable),
        gr.update(interactive=status is not None and status.state == "done"),
        runs_rows(statuses), gr.Timer(active=live),
    ]


def _select(ctx: AppContext, run_id: str | None) -> list[Any]:
    """[run dropdown, *view] with ``run_id`` chosen (else the newest run)."""
    statuses = _list(ctx)
    if _find(statuses, run_id) is None:
        run_id = statuses[0].id if statuses else None
    return [gr.update(choices=run_choices(statuses), value=run_id), *view(ctx, run_id, statuses)]


@lookup
def on_page_load(ctx: AppContext, bases: data.BaseModelCache) -> list[Any]:
    """The base model, the runs (a running one shown and followed) and this model's defaults."""
    statuses = _list(ctx)
    running = next((s for s in statuses if s.state in LIVE_STATES), None)
    shown = running.id if running else (statuses[0].id if statuses else None)
    return [data.base_model_markdown(ctx), gr.update(choices=run_choices(statuses), value=shown),
            *data.hyper_defaults(ctx, bases), *view(ctx, shown, statuses)]


@lookup
def poll(ctx: AppContext, run_id: str | None) -> list[Any]:
    """The timer's tick: the shown run's progress and losses (the timer stops when the run ends)."""
    return view(ctx, run_id)


@lookup
def show_selected(ctx: AppContext, run_id: str | None) -> list[Any]:
    return view(ctx, run_id)


@lookup
def refresh(ctx: AppContext, run_id: str | None) -> list[Any]:
    return _select(ctx, run_id)


@action
def start_run(ctx: AppContext, request: gr.Request, *form: Any) -> list[Any]:
    """Train: check the request, start the run in its own process, follow it. [run dropdown, *view]"""
    train = data.make_request(ctx, request, *form)
    status = _manager(ctx).start(train)
    return _select(ctx, status.id)


@action
def stop_run(ctx: AppContext, run_id: str | None) -> list[Any]:
    if not run_id:
        raise UserFacingError("Choose a run first.")
    _manager(ctx).stop(run_id)
    return view(ctx, run_id)


@action
def resume_run(ctx: AppContext, run_id: str | None) -> list[Any]:
    if not run_id:
        raise UserFacingError("Choose a run first.")
    _manager(ctx).resume(run_id)
    return view(ctx, run_id)


@action
def delete_run(ctx: AppContext, run_id: str | None) -> list[Any]:
    """Delete the run's folder (its adapter, if done, stays in the loras folder)."""
    if not run_id:
        return _select(ctx, None)  # nothing chosen, or the confirm dialog was dismissed
    _manager(ctx).delete(run_id)
    return _select(ctx, None)


@action
def apply_adapter(ctx: AppContext, chat_line: bool, run_id: str | None) -> list[Any]:
    """Apply the finished run's adapter to the loaded model, so the Chat tab answers with it."""
    status = _find(_list(ctx), run_id)
    if status is None or status.state != "done":
        raise UserFacingError("Choose a finished run first: only a done run has an adapter to apply.")
    ctx.engine.apply_loras([status.name], [1.0], library=LoraLibrary(ctx.settings.data_dir))
    line = f"Applied **{status.name}** to the loaded model: the Chat tab now answers with it."
    return [line, *([model_markdown(ctx)] if chat_line else [])]
