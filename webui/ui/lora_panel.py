"""The Model tab's "Adapters (LoRA)" section: the adapters in <data-dir>/loras, applied to the loaded
model (one or several, with weights) without reloading it, removed, merged into a new model folder,
or exported as a GGUF LoRA for llama.cpp.

Applying and merging run on the inference worker (``Engine.apply_loras``; merging loads the base
again with transformers, so it takes a while and as much memory again as the model).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.engine.adapters import gguf_adapter, merge_and_save
from webui.engine.memory import human
from webui.engine.protocol import is_url
from webui.engine.registry import get_backend
from webui.errors import UserFacingError
from webui.training.lora_library import LoraEntry, LoraLibrary
from webui.ui.events import action, bind, lookup, on

log = logging.getLogger(__name__)

HEADERS = ["Adapter", "Base model", "Method", "Created", "Size", "GGUF", "Problem"]


@dataclass
class LoraComponents:
    table: gr.Dataframe
    names: gr.Dropdown
    weights: gr.Textbox
    apply_btn: gr.Button
    remove_btn: gr.Button
    refresh_btn: gr.Button
    merge_name: gr.Textbox
    merge_btn: gr.Button
    export_btn: gr.Button
    status: gr.Markdown


def _library(ctx: AppContext) -> LoraLibrary:
    return LoraLibrary(ctx.settings.data_dir)


def _row(entry: LoraEntry) -> list[str]:
    return [entry.name, entry.base_model, entry.method, entry.created_at[:16].replace("T", " "),
            human(entry.size_bytes) if entry.size_bytes else "", "yes" if entry.has_gguf else "",
            entry.problem or ""]


def table_rows(ctx: AppContext) -> list[list[str]]:
    return [_row(e) for e in _library(ctx).list()]


def status_line(ctx: AppContext) -> str:
    """What the loaded model has applied."""
    info = ctx.engine.model_info
    if info is None:
        return "No model loaded: load one to apply adapters."
    if not get_backend(info.loader).info.adapters:
        return f"The {info.loader} loader cannot apply adapters: load the model with transformers or llama.cpp."
    if not ctx.engine.loras:
        return f"No adapters applied to **{ctx.engine.model_name}**."
    applied = ", ".join(f"**{x.name}** ({x.weight:g})" for x in ctx.engine.loras)
    return f"Applied to **{ctx.engine.model_name}**: {applied}."


def parse_weights(text: str, count: int) -> list[float] | None:
    """"0.5, 1" -> [0.5, 1.0]; empty -> None (1.0 each). One weight for all is repeated."""
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        raise UserFacingError(f"Weights must be numbers separated by commas, e.g. 1, 0.5 (got {text!r}).") from None
    if len(weights) == 1 and count > 1:
        weights *= count
    if len(weights) != count or not all(math.isfinite(w) for w in weights):
        raise UserFacingError(f"Give one weight per chosen adapter ({count}), separated by commas, or leave it empty.")
    return weights


def build(ctx: AppContext) -> LoraComponents:
    """Lay out the section (inside the Model tab)."""
    with gr.Accordion("Adapters (LoRA)", open=False, elem_id="lora-panel"):
        table = gr.Dataframe(headers=HEADERS, value=table_rows(ctx), interactive=False, wrap=True,
                             elem_id="lora-table")
        with gr.Row():
            names = gr.Dropdown(label="Adapters", choices=_library(ctx).names(), value=[], multiselect=True,
                                scale=4, elem_id="lora-names",
                                info="Applied to the loaded model without reloading it, in this order.")
            weights = gr.Textbox(label="Weights", placeholder="1.0", scale=2, elem_id="lora-weights",
                                 info="One per adapter, comma-separated (empty: 1.0 each).")
        with gr.Row():
            apply_btn = gr.Button("Apply", variant="primary", elem_id="lora-apply")
            remove_btn = gr.Button("Remove all", elem_id="lora-remove")
            refresh_btn = gr.Button("Refresh", elem_id="lora-refresh")
        with gr.Row():
            merge_name = gr.Textbox(label="New model name", placeholder="my-model-merged", scale=3,
                                    elem_id="lora-merge-name",
                                    info=f"Merge and save writes base + adapters to {ctx.settings.models_path}/NAME.")
            merge_btn = gr.Button("Merge and save", scale=1, elem_id="lora-merge")
            export_btn = gr.Button("Export GGUF", scale=1, elem_id="lora-export")
        status = gr.Markdown(status_line(ctx), elem_id="lora-status")
    return LoraComponents(table, names, weights, apply_btn, remove_btn, refresh_btn, merge_name, merge_btn,
                          export_btn, status)


# -- handlers -------------------------------------------------------------------------------


@lookup
def refresh(ctx: AppContext, chosen: list[str] | None) -> tuple[Any, ...]:
    """The table and choices rescanned; [table, names, status]."""
    usable = _library(ctx).names()
    keep = [n for n in (chosen or []) if n in usable]
    return table_rows(ctx), gr.update(choices=usable, value=keep), status_line(ctx)


@action
def apply(ctx: AppContext, chosen: list[str] | None, weights_text: str) -> str:
    names = list(chosen or [])
    if not names:
        raise UserFacingError("Choose the adapters to apply first (or use Remove all).")
    ctx.engine.apply_loras(names, parse_weights(weights_text, len(names)), library=_library(ctx))
    return status_line(ctx)


@action
def remove(ctx: AppContext) -> str:
    ctx.engine.remove_loras()
    return status_line(ctx)


def _base_path(ctx: AppContext) -> Path:
    spec = ctx.engine.spec
    if spec is None or ctx.engine.model_info is None:
        raise UserFacingError("Load the base model first: adapters are merged into, or exported for, the loaded "
                              "model.")
    if is_url(spec.path):
        raise UserFacingError("The loaded model runs on a server; merging or exporting needs a local model.")
    return Path(spec.path)


@action
def merge(ctx: AppContext, chosen: list[str] | None, weights_text: str, new_name: str) -> tuple[str, Any]:
    """Merge and save: [status, table]."""
    names = list(chosen or [])
    if not names:
        raise UserFacingError("Choose the adapters to merge first.")
    name = (new_name or "").strip()
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserFacingError("Give the new model a folder name (letters, digits, dashes), e.g. my-model-merged.")
    loras = _library(ctx).resolve(names, parse_weights(weights_text, len(names)))
    base = _base_path(ctx)
    out = ctx.settings.models_path / name
    ctx.engine.worker.call(lambda: merge_and_save(base, [(x.path, x.weight) for x in loras], out))
    gr.Info(f"Saved {out}; it is in the Model tab's list.")
    return f"Merged {', '.join(names)} into `{out}`.", table_rows(ctx)


@action
def export(ctx: AppContext, chosen: list[str] | None) -> tuple[str, Any]:
    """Export GGUF: each chosen adapter's adapter.gguf for the loaded GGUF; [status, table]."""
    names = list(chosen or [])
    if not names:
        raise UserFacingError("Choose the adapters to export first.")
    base = _base_path(ctx)
    if base.suffix.lower() != ".gguf":
        raise UserFacingError("Exporting a GGUF LoRA needs the GGUF base model loaded (llama.cpp or transformers "
                              "on a .gguf file).")
    files = [gguf_adapter(x.path, base) for x in _library(ctx).resolve(names)]
    return "Exported: " + ", ".join(f"`{f}`" for f in files), table_rows(ctx)


def wire(ctx: AppContext, c: LoraComponents, demo: gr.Blocks, model_status: gr.Markdown | None = None) -> None:
    """``model_status``: the Model tab's status line; when it changes (a load or unload), so may the
    adapters applied, and the section is refreshed."""
    listing = [c.table, c.names, c.status]
    on(demo.load, bind(refresh, ctx), c.names, listing)
    on(c.refresh_btn.click, bind(refresh, ctx), c.names, listing)
    one = {"concurrency_limit": 1, "concurrency_id": "model-load"}  # never beside a model load
    on(c.apply_btn.click, bind(apply, ctx), [c.names, c.weights], c.status, **one)
    on(c.remove_btn.click, bind(remove, ctx), None, c.status, **one)
    on(c.merge_btn.click, bind(merge, ctx), [c.names, c.weights, c.merge_name], [c.status, c.table],
       show_progress="full", **one)
    on(c.export_btn.click, bind(export, ctx), c.names, [c.status, c.table], show_progress="full", **one)
    if model_status is not None:
        on(model_status.change, bind(refresh, ctx), c.names, listing)


def place(ctx: AppContext, demo: gr.Blocks, model_status: gr.Markdown | None = None) -> LoraComponents:
    """Lay out and wire the section where the caller is (the Model tab)."""
    components = build(ctx)
    wire(ctx, components, demo, model_status)
    return components
