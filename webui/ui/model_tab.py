"""The Model tab: pick a model from the catalog, choose a loader and its options, load/unload, download.

The option controls are generated from ``webui.engine.options.OPTIONS``; only those that apply to
the chosen loader (and quantization) are visible. Loading runs on the engine's inference worker;
errors reach the user as one clear message (gr.Error), never a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.engine.catalog import CatalogEntry, scan_catalog
from webui.engine.hub import download
from webui.engine.memory import human
from webui.engine.model_settings import ModelSettingsStore, load_and_remember
from webui.engine.options import OPTIONS, Option, defaults
from webui.engine.protocol import ModelSpec
from webui.engine.registry import default_loader, loader_names
from webui.errors import UserFacingError
from webui.ui import icons, lora_panel
from webui.ui.chat_components import model_markdown
from webui.ui.events import action, bind, lookup, on

log = logging.getLogger(__name__)


def _component(option: Option, visible: bool) -> gr.components.Component:
    common: dict[str, Any] = {"label": option.label, "info": option.help, "visible": visible,
                              "elem_id": f"opt-{option.name}"}
    if option.kind == "choice":
        return gr.Dropdown(choices=list(option.choices), value=option.default, **common)
    if option.kind == "bool":
        return gr.Checkbox(value=option.default, **common)
    if option.kind in ("int", "float"):
        return gr.Number(value=option.default, precision=0 if option.kind == "int" else None, **common)
    return gr.Textbox(value=option.default, type="password" if option.kind == "secret" else "text", **common)


def _entries(ctx: AppContext) -> list[CatalogEntry]:
    return scan_catalog(ctx.settings.models_path)


def _choices(entries: list[CatalogEntry]) -> list[tuple[str, str]]:
    return [(e.label, e.path) for e in entries]


def status_markdown(ctx: AppContext) -> str:
    """What is loaded, how long it took, and how much memory it really holds."""
    info = ctx.engine.load_info
    if info is None:
        return "No model loaded."
    model = ctx.engine.model_info
    rss = model.rss_delta_bytes if model else 0
    memory = f"{human(info.footprint_bytes)} of weights and caches" if info.footprint_bytes else "held by the server"
    cross = f" (process memory grew {human(rss)})" if rss else ""
    return f"**{info.name}** loaded with **{info.loader}** in {info.load_seconds:.2f} s · {memory}{cross}"


OPTION_INDEX = {o.name: i for i, o in enumerate(OPTIONS)}


def _visibility(loader: str, quantization: str) -> list[Any]:
    return [gr.update(visible=o.applies(loader, quantization or "none")) for o in OPTIONS]


@dataclass
class ModelComponents:
    model_dd: gr.Dropdown
    refresh_btn: gr.Button
    loader_radio: gr.Radio
    url_box: gr.Textbox
    options: list[gr.components.Component]  # one per ``OPTIONS`` entry, in order
    load_btn: gr.Button
    unload_btn: gr.Button
    status: gr.Markdown
    repo_box: gr.Textbox
    revision_box: gr.Textbox
    pattern_box: gr.Textbox
    download_btn: gr.Button
    download_status: gr.Markdown
    estimate: gr.Markdown | None = None  # the chosen model's weights, before loading


# How the options are laid out, as text-generation-webui groups them: values on the left, switches
# on the right; the ones a first load rarely needs folded under "Advanced".
ADVANCED = frozenset({"n_batch", "threads", "tensor_split", "use_mmap", "use_mlock", "attn_implementation",
                      "compile", "max_memory_gpu", "max_memory_cpu", "fp32_cpu_offload", "compute_dtype", "timeout"})
BUTTON_ICONS = {"model-refresh": "refresh", "model-load": "load", "model-unload": "eject",
                "download-button": "download"}


def page_css() -> str:
    """The Model tab's button icons (webui.ui.icons)."""
    return "\n" + icons.button_css(BUTTON_ICONS)


def _option_columns(options: list[Option], loader: str, quant: str) -> dict[str, gr.components.Component]:
    """Two columns (values | switches) of ``options``' controls, by name."""
    made: dict[str, gr.components.Component] = {}
    with gr.Row(equal_height=False):
        with gr.Column(min_width=260):
            for o in options:
                if o.kind != "bool":
                    made[o.name] = _component(o, o.applies(loader, quant))
        with gr.Column(min_width=260):
            for o in options:
                if o.kind == "bool":
                    made[o.name] = _component(o, o.applies(loader, quant))
    return made


def weights_estimate(path: str | None) -> str:
    """Before loading: about how much memory the weights take (their size on disk); "" when unknown."""
    if not path:
        return ""
    p = Path(path)
    try:
        if p.is_file():
            size = p.stat().st_size
        elif p.is_dir():
            size = sum(f.stat().st_size for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf"))
        else:
            return ""
    except OSError:
        return ""
    return f"Weights: about {human(size)} on disk (plus the context's cache once loaded)." if size else ""


@lookup
def show_estimate(path: str | None) -> str:
    return weights_estimate(path)


def build(ctx: AppContext) -> ModelComponents:
    """Lay out the Model tab (inside the caller's ``gr.Tab``): the model, Load/Unload and what it
    holds at the top; the loader's options in two columns below, the advanced ones folded."""
    initial = ctx.engine.spec
    initial_loader = ctx.engine.load_info.loader if ctx.engine.load_info else "llama.cpp"
    with gr.Row(equal_height=False, elem_id="model-top"):
        model_dd = gr.Dropdown(
            label="Model", choices=[], value=None, allow_custom_value=True, scale=6, elem_id="model-select",
            info=f"From {ctx.settings.models_path}, the Hugging Face cache, or the embedded default; or type a path.",
        )
        refresh_btn = gr.Button("Refresh", scale=0, min_width=100, elem_id="model-refresh")
        load_btn = gr.Button("Load", variant="primary", scale=0, min_width=100, elem_id="model-load")
        unload_btn = gr.Button("Unload", scale=0, min_width=100, elem_id="model-unload")
    with gr.Column(elem_classes="tight"):
        status = gr.Markdown(status_markdown(ctx), elem_id="model-status")
        estimate = gr.Markdown(elem_id="model-estimate")
    with gr.Row():
        loader_radio = gr.Radio(list(loader_names()), value=initial_loader, label="Loader", elem_id="model-loader",
                                scale=1)
        url_box = gr.Textbox(
            label="Server URL", placeholder="http://127.0.0.1:8000/v1", visible=initial_loader == "remote",
            info="An OpenAI-compatible server: vLLM, TGI, llama.cpp server, Ollama (http://host:11434/v1)...",
            elem_id="remote-url", scale=2,
        )
    init_options = dict(initial.options) if initial else {}
    quant0 = str(init_options.get("quantization") or "none")
    made = _option_columns([o for o in OPTIONS if o.name not in ADVANCED], initial_loader, quant0)
    with gr.Accordion("Advanced options", open=False, elem_id="model-advanced"):
        made.update(_option_columns([o for o in OPTIONS if o.name in ADVANCED], initial_loader, quant0))
    components = [made[o.name] for o in OPTIONS]
    with gr.Accordion("Download from the Hugging Face Hub", open=False, elem_id="download-box"):
        repo_box = gr.Textbox(label="Model id", placeholder="org/name", elem_id="download-repo")
        with gr.Row():
            revision_box = gr.Textbox(label="Revision (optional)", placeholder="main", elem_id="download-revision")
            pattern_box = gr.Textbox(
                label="File pattern (optional)", placeholder="*Q4_K_M.gguf", elem_id="download-pattern",
                info="Only files matching this (comma-separated globs), e.g. one GGUF quant.",
            )
        download_btn = gr.Button("Download", elem_id="download-button")
        download_status = gr.Markdown(elem_id="download-status")
    return ModelComponents(model_dd, refresh_btn, loader_radio, url_box, components, load_btn, unload_btn, status,
                           repo_box, revision_box, pattern_box, download_btn, download_status, estimate)


# -- handlers -------------------------------------------------------------------------------
# ``chat_line``: whether the Chat tab's model line is among the outputs (refreshed after every
# load and unload).


@lookup
def refresh(ctx: AppContext, current: str | None) -> Any:
    """The model list, rescanned; ``current`` stays selected if still there, else the loaded model."""
    choices = _choices(_entries(ctx))
    paths = [p for _, p in choices]
    value = current if current in paths else (ctx.engine.spec.path if ctx.engine.spec else None)
    return gr.update(choices=choices, value=value)


@lookup
def on_page_load(ctx: AppContext) -> tuple[Any, ...]:
    return refresh(ctx, ctx.engine.spec.path if ctx.engine.spec else None), status_markdown(ctx)


@lookup
def on_select(ctx: AppContext, store: ModelSettingsStore, path: str | None) -> list[Any]:
    """Show the loader and options this model last loaded with (or its defaults)."""
    if not path:
        return [gr.update()] * (2 + len(OPTIONS))
    entry = next((e for e in _entries(ctx) if e.path == path), None)
    saved = store.get(path)
    loader = saved.loader if saved else (entry.loader if entry else default_loader(path))
    values = {**defaults(loader), **(saved.options if saved else {})}
    quant = str(values.get("quantization") or "none")
    updates = [
        gr.update(value=values[o.name], visible=o.applies(loader, quant)) if o.name in values
        else gr.update(visible=False)
        for o in OPTIONS
    ]
    url = gr.update(visible=True, value=path) if loader == "remote" else gr.update(visible=False)
    return [gr.update(value=loader), url, *updates]


@lookup
def on_loader(loader: str, quant: str) -> list[Any]:
    """The loader or quantization changed: the URL box and the options that apply, shown."""
    return [gr.update(visible=loader == "remote"), *_visibility(loader, quant)]


def _model_line(ctx: AppContext, chat_line: bool) -> list[Any]:
    return [model_markdown(ctx)] if chat_line else []


@action
def load_model(ctx: AppContext, store: ModelSettingsStore, chat_line: bool, path: str | None, loader: str, url: str,
               *values: Any) -> list[Any]:
    """Load the chosen model (``values``: the option controls, in ``OPTIONS`` order) and remember its
    settings; [status, chat model line]. Any failure reaches the user as one line, never a traceback."""
    target = (url or "").strip() if loader == "remote" else (path or "").strip()
    if not target:
        raise UserFacingError("Enter the server URL first." if loader == "remote" else "Choose a model first.")
    quant = values[OPTION_INDEX["quantization"]] or "none"
    options = {o.name: v for o, v in zip(OPTIONS, values) if o.applies(loader, quant) and v is not None}
    entry = next((e for e in _entries(ctx) if e.path == target), None)
    name = entry.label if entry else None
    if name is None and loader != "remote":
        name = Path(target).stem if target.lower().endswith(".gguf") else Path(target).name
    spec = ModelSpec(path=target, loader=loader, options=options, display_name=name)
    if options.get("trust_remote_code"):
        gr.Warning("Trust remote code is on: Python code shipped with this model will run on this machine.")
    try:
        load_and_remember(ctx.engine, spec, store)
    except UserFacingError:
        raise  # its message says it all (shown by @action)
    except Exception as exc:  # a backend's own error: its first line, without the traceback
        log.exception("loading %s failed", target)
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise UserFacingError(f"Loading failed: {type(exc).__name__}: {first_line}") from None
    return [status_markdown(ctx), *_model_line(ctx, chat_line)]


@action
def unload_model(ctx: AppContext, chat_line: bool) -> list[Any]:
    ctx.engine.unload()
    return [status_markdown(ctx), *_model_line(ctx, chat_line)]


@action
def download_model(ctx: AppContext, repo: str, revision: str, pattern: str,
                   progress: gr.Progress = gr.Progress()) -> list[Any]:
    return run_download(ctx, repo, revision, pattern, lambda fraction, text: progress(fraction, desc=text))


def wire(ctx: AppContext, c: ModelComponents, demo: gr.Blocks, model_info: gr.Markdown | None = None) -> None:
    """``model_info`` is the chat tab's model line; it is refreshed after every load/unload."""
    store = ModelSettingsStore.in_data_dir(ctx.settings.data_dir)
    quant = c.options[OPTION_INDEX["quantization"]]
    after_load = [c.status, *([model_info] if model_info is not None else [])]
    one_load = {"concurrency_limit": 1, "concurrency_id": "model-load", "show_progress": "full"}
    on(demo.load, bind(on_page_load, ctx), None, [c.model_dd, c.status])
    on(c.refresh_btn.click, bind(refresh, ctx), c.model_dd, c.model_dd)
    on(c.model_dd.input, bind(on_select, ctx, store), c.model_dd, [c.loader_radio, c.url_box, *c.options])
    if c.estimate is not None:
        on(c.model_dd.input, show_estimate, c.model_dd, c.estimate)
    for trigger in (c.loader_radio.input, quant.input):
        on(trigger, on_loader, [c.loader_radio, quant], [c.url_box, *c.options])
    on(c.load_btn.click, bind(load_model, ctx, store, model_info is not None),
       [c.model_dd, c.loader_radio, c.url_box, *c.options], after_load, **one_load)
    on(c.unload_btn.click, bind(unload_model, ctx, model_info is not None), None, after_load, **one_load)
    on(c.download_btn.click, bind(download_model, ctx), [c.repo_box, c.revision_box, c.pattern_box],
       [c.download_status, c.model_dd], concurrency_limit=1, concurrency_id="model-download", show_progress="full")
    lora_panel.place(ctx, demo, c.status)  # Adapters (LoRA): apply, remove, merge, export (webui/ui/lora_panel.py)


@action
def run_download(ctx: AppContext, repo: str, revision: str, pattern: str, report: Any) -> list[Any]:
    """The Download button: fetch into the models dir, then select the new model in the list."""
    if not (repo or "").strip():
        raise UserFacingError("Enter a model id such as org/name.")
    folder = download(repo, ctx.settings.models_path, revision=(revision or "").strip() or None,
                      allow_patterns=(pattern or "").strip() or None, progress=report)
    choices = _choices(_entries(ctx))
    prefix = str(folder.resolve())
    new = next((p for _, p in choices if p == prefix or p.startswith(prefix + "/")), None)
    return [f"Downloaded to `{folder}`.", gr.update(choices=choices, value=new)]
