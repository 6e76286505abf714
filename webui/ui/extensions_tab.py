"""The Extensions tab, and the extensions' own ``ui()`` areas (under the chat or in their tabs).

Gradio builds components once, at start-up: every discovered extension gets its panel here (what
it does and its settings first, read from its files when it is not enabled: a disabled extension is
never imported); every enabled one with a ``ui()`` hook gets its area built now. Enabling,
disabling, reordering and settings act at once (no restart) and are saved by the ExtensionManager;
the ``ui()`` area of an extension enabled after start-up appears after a restart, as upstream.
An extension that breaks (import, settings, ``ui()``) is listed with its problem; the page builds.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.engine.registry import backend_info, loader_names
from webui.errors import UserFacingError
from webui.plugins import ParamError
from webui.problems import Problem
from webui.ui.events import action, bind, lookup, on
from webui.ui.extension_params import from_component, param_component, to_text

log = logging.getLogger(__name__)

@dataclass
class ExtensionPanel:
    name: str
    enabled: gr.Checkbox
    up: gr.Button
    down: gr.Button
    reset: gr.Button
    status: gr.Markdown
    params: dict[str, gr.components.Component]


@dataclass(frozen=True)
class ExtensionsView:
    """What the page shows of every extension, in order: a panel each, and the ui() areas there are."""

    names: tuple[str, ...]
    with_area: tuple[str, ...]  # the names of the extensions whose ui() area was built


@dataclass
class ExtensionsComponents:
    panels: list[ExtensionPanel]
    order: gr.Markdown
    failures: gr.Markdown
    refresh: gr.Button
    areas: dict[str, Any] = field(default_factory=dict)  # extension name -> its ui() container


# upstream's names for components (``shared.gradio[...]``) -> this app's Chat tab components
UPSTREAM_NAMES = {
    "textbox": "textbox", "character_menu": "character", "name2": "character", "name1": "persona",
    "mode": "mode", "instruction_template": "template", "display": "chatbot", "Generate": "send_btn",
    "Stop": "stop_btn", "Regenerate": "regenerate_btn", "Continue": "continue_btn",
    "Impersonate": "impersonate_btn", "start_with": "start_with",
}


def description(ctx: AppContext, name: str) -> str:
    """What the extension does: the first paragraph of its docstring (or README), read from its files."""
    return ctx.extensions.info(name).description


def loaders_without(ctx: AppContext, name: str) -> list[str]:
    """The registered loaders that cannot run all of this extension, by what each backend declares
    (``BackendInfo.token_hooks`` for ``tokenizer_modifier``, ``extension_processors`` for its samplers
    and ``logits_processor_modifier``) and the backends its samplers list."""
    hooks = ctx.extensions.info(name).hooks  # of one not imported: the functions its script defines
    # samplers are registered once an extension is enabled (the manager calls register_samplers then)
    samplers = [s for s in ctx.extensions.samplers().values() if s.extension == name]
    needs_processors = bool(samplers) or "logits_processor_modifier" in hooks or "register_samplers" in hooks
    missing = []
    for loader in loader_names():
        info = backend_info(loader)
        if ("tokenizer_modifier" in hooks and not info.token_hooks) \
                or (needs_processors and not info.extension_processors) \
                or any(loader not in s.backends for s in samplers):
            missing.append(loader)
    return missing


def description_markdown(ctx: AppContext, name: str) -> str:
    """What the extension does for the user, first in its panel."""
    text = description(ctx, name)
    return html.escape(text) if text else "*(no description: its script has no docstring and no README)*"


def status_markdown(ctx: AppContext, name: str, built_ui: bool = True) -> str:
    """Enabled or not, what would stop it, and (folded) where it comes from and its hooks."""
    info = ctx.extensions.info(name)
    lines = ["**Enabled**" if info.enabled else "Disabled (not imported until enabled)"]
    if info.enabled and not built_ui and "ui" in info.hooks:
        lines.append("Its interface (`ui()`) appears after a restart.")
    if info.upstream:
        lines.append("Written for text-generation-webui (uses its `modules`).")
    lines.extend(_problems(ctx, name, info))
    hooks = ", ".join(f"`{h}`" for h in info.hooks) or "none"
    lines.append(f"<details><summary>Details</summary>\n\n`{name}` · {info.source} · "
                 f"{html.escape(info.location)}\n\nHooks: {hooks}\n\n</details>")
    return "\n\n".join(lines)


def _problems(ctx: AppContext, name: str, info: Any) -> list[str]:
    lines = []
    loader = ctx.engine.load_info.loader if ctx.engine.load_info else None
    missing = loaders_without(ctx, name)
    if missing:
        note = f" — not applied with the loaded {loader} model" if loader in missing else ""
        lines.append(f"**Warning:** **not with {', '.join(missing)}**{note}")
    for warning in info.warnings:
        lines.append(f"**Warning:** {html.escape(warning)}")
    if info.error:
        lines.append(f"**Problem:** {html.escape(info.error)}")
    return lines


def order_markdown(ctx: AppContext) -> str:
    names = ctx.extensions.enabled()
    if not names:
        return "**Enabled (in order):** none"
    return "**Enabled (in order):** " + " → ".join(f"`{n}`" for n in names)


def failures_markdown(ctx: AppContext) -> str:
    failures = ctx.extensions.failures()
    if not failures:
        return "No extension has failed."
    rows = ["| Extension | Hook | Error |", "| --- | --- | --- |"]
    for f in reversed(failures[-20:]):
        rows.append(f"| `{f.extension}` | `{f.hook}` | {html.escape(f.message).replace('|', '&#124;')} |")
    return "**Failed (disabled for this session):**\n\n" + "\n".join(rows)


def extension_assets(ctx: AppContext) -> dict[str, str]:
    """``css``/``js`` keyword arguments for ``gr.mount_gradio_app`` from the enabled extensions'
    custom_css / custom_js (collected once: the page is built at start-up)."""
    out: dict[str, str] = {}
    css, js = ctx.extensions.custom_css(), ctx.extensions.custom_js()
    if css.strip():
        out["css"] = css
    if js.strip():
        out["js"] = "() => {\n" + UPSTREAM_PAGE_JS + js + "\n}"  # Gradio runs js= as a function on page load
    return out


# What scripts written for text-generation-webui's page look for besides ``#extensions`` (the column
# of extension areas, see build_ui_areas) and ``#chat-mode`` (the chat's mode, ours too): an element
# of class ``header_bar``, upstream's main tab bar, where its gallery listens for tab clicks to hide
# itself outside the Chat tab. Here an empty element: the areas are inside the Chat tab, which Gradio
# hides with them, and Gradio 6 switches tabs only after the click's listeners ran, so a listener
# reading the page then would see the tab being left and hide the gallery in the Chat tab.
UPSTREAM_PAGE_JS = """if (!document.querySelector('.header_bar')) {
  const bar = document.createElement('div');
  bar.className = 'header_bar';
  bar.hidden = true;
  document.body.appendChild(bar);
}
"""


def share_components(ctx: AppContext, chat: Any) -> None:
    """Name the Chat tab's components as text-generation-webui does (``shared.gradio``), for
    extensions written for it."""
    for upstream_name, ours in UPSTREAM_NAMES.items():
        component = getattr(chat, ours, None)
        if component is not None:
            ctx.extensions.compat.gradio[upstream_name] = component


def build_ui_areas(ctx: AppContext, chat: Any) -> dict[str, Any]:
    """Run ``ui()`` of every enabled extension that has one and is not a tab, under the chat."""
    share_components(ctx, chat)
    areas: dict[str, Any] = {}
    names = _with_ui(ctx, tab=False)
    if not names:
        return areas
    with gr.Column(elem_id="extensions"):  # upstream's id for this column: its extensions' scripts look for it
        for name in names:
            with gr.Column(visible=True, elem_id=f"ext-ui-{name}") as column:
                ctx.extensions.call(name, "ui", ctx=ctx, chat=chat)  # an exception is caught and listed
            areas[name] = column
    return areas


def build_ui_tabs(ctx: AppContext, chat: Any) -> dict[str, Any]:
    """A tab for each enabled extension whose ``params["is_tab"]`` is true, built by its ``ui()``."""
    tabs: dict[str, Any] = {}
    for name in _with_ui(ctx, tab=True):
        with gr.Tab(ctx.extensions.info(name).display_name, visible=True, elem_id=f"ext-tab-{name}") as tab:
            ctx.extensions.call(name, "ui", ctx=ctx, chat=chat)
        tabs[name] = tab
    return tabs


def _with_ui(ctx: AppContext, *, tab: bool) -> list[str]:
    """Enabled (so imported) extensions with a ``ui()``, tabs or not: a disabled one is never imported."""
    names = []
    for info in ctx.extensions.available():
        if info.enabled and info.loaded and "ui" in info.hooks and info.is_tab == tab:
            names.append(info.name)
    return names


def build(ctx: AppContext) -> ExtensionsComponents:
    """The settings panels (inside the caller's tab)."""
    gr.Markdown("Extensions run in the order they are enabled. Changes apply at once and are saved. "
                "Start with `--extensions a b c` to choose them on the command line.")
    order = gr.Markdown(order_markdown(ctx), elem_id="ext-order")
    built = {n for n in ctx.extensions.enabled() if ctx.extensions.info(n).loaded}  # ui() built at start-up
    panels: list[ExtensionPanel] = []
    unshown: list[Problem] = []
    for info in ctx.extensions.available():
        name = info.name
        try:
            specs = ctx.extensions.param_specs(name)
            values = ctx.extensions.get_params(name)
        except Exception as exc:  # noqa: BLE001 - a broken extension is listed, never stops the page
            specs, values = {}, {}
            unshown.append(Problem.of("extension", info.location,
                                      f"extension {name!r}: its settings cannot be shown: {exc}"))
        with gr.Group(elem_id=f"ext-panel-{name}"):
            with gr.Row():
                enabled = gr.Checkbox(value=info.enabled, label=info.display_name,
                                      elem_id=f"ext-enabled-{name}", scale=4, interactive=True)
                up = gr.Button("↑", size="sm", elem_id=f"ext-up-{name}", scale=0, min_width=40)
                down = gr.Button("↓", size="sm", elem_id=f"ext-down-{name}", scale=0, min_width=40)
                reset = gr.Button("Reset settings", size="sm", elem_id=f"ext-reset-{name}", scale=0,
                                  min_width=120)
            gr.Markdown(description_markdown(ctx, name), elem_id=f"ext-about-{name}")
            comps: dict[str, gr.components.Component] = {}
            for key, spec in ((k, s) for k, s in specs.items() if s.editable):
                try:
                    comps[key] = param_component(spec, values.get(key, spec.default), elem_id=f"ext-{name}-{key}")
                except Exception as exc:  # noqa: BLE001 - e.g. a slider whose min is above its max
                    unshown.append(Problem.of("extension", info.location,
                                              f"extension {name!r}: setting {key!r} cannot be shown: {exc}"))
            status = gr.Markdown(status_markdown(ctx, name, name in built), elem_id=f"ext-status-{name}")
        panels.append(ExtensionPanel(name, enabled, up, down, reset, status, comps))
    ctx.problems.report("extension settings panels", unshown)
    failures = gr.Markdown(failures_markdown(ctx), elem_id="ext-failures")
    refresh = gr.Button("Refresh", size="sm", elem_id="ext-refresh")
    return ExtensionsComponents(panels, order, failures, refresh)


# ------------------------------------------------------------------------------------ handlers


@lookup
def snapshot(ctx: AppContext, view: ExtensionsView) -> list[Any]:
    """The enabled order, the failures, each panel's status and checkbox, each ui() area shown or not."""
    enabled = set(ctx.extensions.enabled())
    return [order_markdown(ctx), failures_markdown(ctx),
            *[status_markdown(ctx, n, n in view.with_area) for n in view.names],
            *[gr.update(value=n in enabled) for n in view.names],
            *[gr.update(visible=n in enabled) for n in view.with_area]]


@action
def toggle(ctx: AppContext, view: ExtensionsView, name: str, enabled: bool) -> list[Any]:
    """Enable or disable ``name`` at once; one that cannot be enabled gets a warning and stays off."""
    try:
        if enabled:
            ctx.extensions.enable(name)
        else:
            ctx.extensions.disable(name)
    except UserFacingError as exc:
        gr.Warning(str(exc))
    return snapshot(ctx, view)


@action
def move(ctx: AppContext, view: ExtensionsView, name: str, delta: int) -> list[Any]:
    """Move an enabled extension ``delta`` places in the order its hooks run (a disabled one stays)."""
    order = ctx.extensions.enabled()
    if name in order:
        i = order.index(name)
        j = max(0, min(len(order) - 1, i + delta))
        order.insert(j, order.pop(i))
        ctx.extensions.set_enabled(order)
    return snapshot(ctx, view)


def _kind(ctx: AppContext, name: str, key: str) -> str:
    spec = ctx.extensions.param_specs(name)[key]
    return "choice" if spec.choices is not None else spec.type


def _shown(value: Any, kind: str) -> Any:
    return to_text(value) if kind == "list" and isinstance(value, list) else value


@action
def change(ctx: AppContext, name: str, key: str, value: Any) -> Any:
    """A setting changed: saved at once; a value it refuses gets a warning and the stored value back."""
    kind = _kind(ctx, name, key)
    try:
        ctx.extensions.set_param(name, key, from_component(kind, value))
        return gr.update()
    except ParamError as exc:
        gr.Warning(str(exc))
        return gr.update(value=_shown(ctx.extensions.get_params(name)[key], kind))


@action
def reset(ctx: AppContext, name: str, keys: tuple[str, ...]) -> list[Any]:
    """Every setting of ``name`` back to its default; the values of ``keys``, as shown."""
    ctx.extensions.reset_params(name)
    values = ctx.extensions.get_params(name)
    return [_shown(values[k], _kind(ctx, name, k)) for k in keys]


def wire(ctx: AppContext, c: ExtensionsComponents, demo: gr.Blocks) -> list[Any]:
    """Returns the events after which the extensions' problems may have changed (switches, Refresh)."""
    view = ExtensionsView(tuple(p.name for p in c.panels), tuple(p.name for p in c.panels if p.name in c.areas))
    outputs = [c.order, c.failures, *[p.status for p in c.panels], *[p.enabled for p in c.panels],
               *[c.areas[n] for n in view.with_area]]
    on(demo.load, bind(snapshot, ctx, view), None, outputs)
    changes = [on(c.refresh.click, bind(snapshot, ctx, view), None, outputs)]
    for panel in c.panels:
        changes.append(on(panel.enabled.input, bind(toggle, ctx, view, panel.name), panel.enabled, outputs))
        on(panel.up.click, bind(move, ctx, view, panel.name, -1), None, outputs)
        on(panel.down.click, bind(move, ctx, view, panel.name, +1), None, outputs)
        for key, comp in panel.params.items():
            on(comp.change, bind(change, ctx, panel.name, key), comp, comp)
        if panel.params:
            on(panel.reset.click, bind(reset, ctx, panel.name, tuple(panel.params)), None, list(panel.params.values()))
    return changes
