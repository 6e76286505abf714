"""The Training tab: train a LoRA adapter on the loaded model from a file, your chats or your preferences.

The layout is here; the handlers are in ``training_data`` (base model, data source, chat filters,
preview, the request) and ``training_runs`` (start, the live progress, stop/resume, results, apply).
Runs are child processes managed by ``ctx.training`` (``webui.training.runs.RunManager``); the page
polls their status with a ``gr.Timer`` that is active only while the shown run is running, so an idle
page costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from webui.context import AppContext
from webui.ui import icons
from webui.ui import training_data as data
from webui.ui import training_runs as runs
from webui.ui.events import bind, on

POLL_SECONDS = 1.5  # how often the page reads a running run's status
TRAINED_COLOR = "#86efac"
SOURCES = [("File", "file"), ("Chats from the history", "chats"), ("Train on my preferences", "preferences")]
METHODS = [("Supervised (SFT)", "sft"), ("Preferences (DPO)", "dpo")]
TRAIN_ON = [("The assistant's replies", "assistant"), ("Everything", "all")]
CONFIRM_DELETE = "(run) => (run && confirm('Delete this run and its checkpoints?')) ? [run] : [null]"
BUTTON_ICONS = {"train-find": "search", "train-list-replies": "search", "train-refresh": "refresh",
                "train-stop": "stop", "train-resume": "continue", "train-delete": "trash", "train-apply": "load"}


def page_css() -> str:
    """The Training tab's button icons (webui.ui.icons)."""
    return "\n" + icons.button_css(BUTTON_ICONS)


@dataclass
class TrainingComponents:
    base_model: gr.Markdown
    source: gr.Radio
    method: gr.Radio
    file_box: gr.Group
    data_file: gr.File
    chats_box: gr.Group
    character: gr.Dropdown
    search: gr.Textbox
    since: gr.Textbox
    until: gr.Textbox
    find_btn: gr.Button
    found: gr.Markdown
    chats: gr.CheckboxGroup
    replies_btn: gr.Button
    replies: gr.CheckboxGroup
    preview_btn: gr.Button
    counts: gr.Markdown
    preview: gr.HighlightedText
    name: gr.Textbox
    epochs: gr.Number
    max_steps: gr.Number
    learning_rate: gr.Number
    rank: gr.Number
    alpha: gr.Number
    batch_size: gr.Number
    max_length: gr.Number
    val_fraction: gr.Slider
    val_file: gr.File
    train_on: gr.Radio
    dropout: gr.Number
    grad_accum: gr.Number
    target_modules: gr.Textbox
    beta: gr.Number
    quantization: gr.Radio
    dtype: gr.Radio
    gradient_checkpointing: gr.Checkbox
    seed: gr.Number
    eval_steps: gr.Number
    train_btn: gr.Button
    run_select: gr.Dropdown
    progress: gr.HTML
    loss_plot: gr.LinePlot
    stop_btn: gr.Button
    resume_btn: gr.Button
    delete_btn: gr.Button
    results: gr.Markdown
    samples: gr.Dataframe
    apply_btn: gr.Button
    applied: gr.Markdown
    runs_table: gr.Dataframe
    refresh_btn: gr.Button
    timer: gr.Timer

    def form(self) -> list[gr.components.Component]:
        """The inputs a request is made from, in ``training_data.make_request``'s order."""
        return [self.source, self.method, self.data_file, self.character, self.search, self.since, self.until,
                self.chats, self.replies, self.name, *self.hyper()]

    def hyper(self) -> list[gr.components.Component]:
        """The hyperparameter inputs, in ``training_data.HYPER_FIELDS`` order."""
        return [self.epochs, self.max_steps, self.learning_rate, self.rank, self.alpha, self.batch_size,
                self.max_length, self.val_fraction, self.val_file, self.train_on, self.dropout, self.grad_accum,
                self.target_modules, self.beta, self.quantization, self.dtype, self.gradient_checkpointing,
                self.seed, self.eval_steps]

    def run_view(self) -> list[gr.components.Component]:
        """What ``training_runs.show_run`` fills, in its order."""
        return [self.progress, self.loss_plot, self.results, self.samples, self.stop_btn, self.resume_btn,
                self.apply_btn, self.runs_table, self.timer]


def _data_section(ctx: AppContext) -> dict[str, gr.components.Component]:
    c: dict[str, gr.components.Component] = {}
    c["base_model"] = gr.Markdown(data.base_model_markdown(ctx), elem_id="train-base-model")
    with gr.Row():
        c["source"] = gr.Radio(SOURCES, value="file", label="Data", elem_id="train-source", scale=3)
        c["method"] = gr.Radio(METHODS, value="sft", label="Method", elem_id="train-method", scale=2,
                               info="DPO needs preference pairs: {prompt, chosen, rejected}.")
    with gr.Group(visible=True, elem_id="train-file-box") as c["file_box"]:
        c["data_file"] = gr.File(
            label="Training data: JSONL, JSON, CSV, Parquet or .txt", elem_id="train-file",
            file_types=[".jsonl", ".json", ".csv", ".parquet", ".txt"], type="filepath",
        )
    with gr.Group(visible=False, elem_id="train-chats-box") as c["chats_box"]:
        with gr.Row():
            c["character"] = gr.Dropdown(data.character_choices(ctx), value="", label="Character",
                                         elem_id="train-character", allow_custom_value=True)
            c["search"] = gr.Textbox(label="Containing", placeholder="words in any message", elem_id="train-search")
            c["since"] = gr.Textbox(label="From", placeholder="YYYY-MM-DD", elem_id="train-since")
            c["until"] = gr.Textbox(label="To", placeholder="YYYY-MM-DD", elem_id="train-until")
        c["find_btn"] = gr.Button("Find chats", size="sm", elem_id="train-find")
        c["found"] = gr.Markdown(elem_id="train-found")
        c["chats"] = gr.CheckboxGroup([], label="Whole chats (untick the ones to leave out)", elem_id="train-chats")
        with gr.Accordion("Only some replies", open=False):
            c["replies_btn"] = gr.Button("List the replies of the ticked chats", size="sm",
                                         elem_id="train-list-replies")
            c["replies"] = gr.CheckboxGroup(
                [], label="Tick replies to train only on them (each with the chat before it)", elem_id="train-replies",
            )
    with gr.Row():
        c["preview_btn"] = gr.Button("Preview", elem_id="train-preview-btn", scale=0, min_width=120)
        c["counts"] = gr.Markdown(elem_id="train-counts")
    c["preview"] = gr.HighlightedText(
        label="As the model sees it (highlighted: the tokens it learns)", elem_id="train-preview",
        color_map={"trained": TRAINED_COLOR, "chosen": TRAINED_COLOR, "rejected": "#fca5a5"},
        show_legend=True, show_inline_category=False, combine_adjacent=True,
    )
    return c


def _hyper_section() -> dict[str, gr.components.Component]:
    c: dict[str, gr.components.Component] = {}
    with gr.Row():
        c["epochs"] = gr.Number(3, label="Epochs", elem_id="train-epochs")
        c["max_steps"] = gr.Number(0, label="Max steps (0: by epochs)", precision=0,
                                   elem_id="train-max-steps")
        lr_label, rank_label, alpha_label = (label.format("this model's default") for label in data.DEFAULT_LABELS)
        c["learning_rate"] = gr.Number(0, label=lr_label, elem_id="train-lr")
        c["rank"] = gr.Number(0, label=rank_label, precision=0, elem_id="train-rank")
        c["alpha"] = gr.Number(0, label=alpha_label, precision=0, elem_id="train-alpha")
    with gr.Row():
        c["batch_size"] = gr.Number(4, label="Batch size", precision=0, elem_id="train-batch")
        c["max_length"] = gr.Number(512, label="Max length (tokens)", precision=0,
                                    elem_id="train-max-length")
        c["val_fraction"] = gr.Slider(0, 0.5, value=0.1, step=0.01, label="Validation fraction",
                                      elem_id="train-val-fraction")
        c["train_on"] = gr.Radio(TRAIN_ON, value="assistant", label="Loss on", elem_id="train-on")
    with gr.Accordion("Advanced", open=False, elem_id="train-advanced"):
        c["val_file"] = gr.File(label="Validation file (instead of a fraction)", elem_id="train-val-file", height=120,
                                file_types=[".jsonl", ".json", ".csv", ".parquet", ".txt"], type="filepath")
        with gr.Row():
            c["dropout"] = gr.Number(0.05, label="LoRA dropout", elem_id="train-dropout")
            c["grad_accum"] = gr.Number(1, label="Gradient accumulation", precision=0,
                                        elem_id="train-grad-accum")
            c["beta"] = gr.Number(0.1, label="DPO beta", elem_id="train-beta")
            c["seed"] = gr.Number(0, label="Seed", precision=0, elem_id="train-seed")
            c["eval_steps"] = gr.Number(0, label="Evaluate every (steps; 0: 10 times a run)", precision=0,
                                        elem_id="train-eval-steps")
        c["target_modules"] = gr.Textbox(label="Target modules", elem_id="train-target-modules",
                                         placeholder="Empty: found from the architecture (e.g. q_proj, v_proj)")
        with gr.Row():
            c["quantization"] = gr.Radio([("None", "none"), ("4-bit QLoRA (CUDA)", "4bit")], value="none",
                                         label="Base weights", elem_id="train-quantization")
            c["dtype"] = gr.Radio(["auto", "float32", "bfloat16"], value="auto", label="Precision",
                                  elem_id="train-dtype")
            c["gradient_checkpointing"] = gr.Checkbox(False, label="Gradient checkpointing",
                                                      elem_id="train-grad-ckpt")
    return c


def _run_section() -> dict[str, gr.components.Component]:
    c: dict[str, gr.components.Component] = {}
    with gr.Row():
        c["run_select"] = gr.Dropdown([], value=None, label="Run", elem_id="train-run", scale=4)
        c["refresh_btn"] = gr.Button("Refresh", size="sm", elem_id="train-refresh", scale=0, min_width=90)
    c["progress"] = gr.HTML(runs.progress_html(None), elem_id="train-progress")
    c["loss_plot"] = gr.LinePlot(None, x="step", y="loss", color="series", elem_id="train-loss", height=280,
                                 label="Loss (blue: training, orange: validation)", color_map=runs.SERIES_COLORS,
                                 colors_in_legend=[])  # the label says it: the legend would be cut off
    with gr.Row():
        c["stop_btn"] = gr.Button("Stop (keeps a checkpoint)", variant="stop", elem_id="train-stop",
                                  interactive=False)
        c["resume_btn"] = gr.Button("Resume", elem_id="train-resume", interactive=False)
        c["delete_btn"] = gr.Button("Delete run", elem_id="train-delete")
    c["results"] = gr.Markdown(elem_id="train-results")
    c["samples"] = gr.Dataframe(headers=["Prompt", "Base model", "With the adapter"], value=[], wrap=True,
                                interactive=False, label="Held-out prompts: the base model and the adapter answer",
                                column_widths=["24%", "38%", "38%"], elem_id="train-samples")
    with gr.Row():
        c["apply_btn"] = gr.Button("Apply to the loaded model", variant="primary", elem_id="train-apply",
                                   interactive=False)
        c["applied"] = gr.Markdown(elem_id="train-applied")
    c["runs_table"] = gr.Dataframe(headers=runs.RUN_COLUMNS, value=[], interactive=False, wrap=True,
                                   label="Runs", elem_id="train-runs")
    return c


def build(ctx: AppContext) -> TrainingComponents:
    """Lay out the Training tab (inside the caller's ``gr.Tab``)."""
    parts = _data_section(ctx)
    with gr.Accordion("Adapter and hyperparameters", open=True):
        parts["name"] = gr.Textbox(label="Adapter name", placeholder="my-adapter", elem_id="train-name",
                                   info="Saved in the data dir's loras/ folder under this name.")
        parts.update(_hyper_section())
    parts["train_btn"] = gr.Button("Train", variant="primary", elem_id="train-start")
    parts.update(_run_section())
    parts["timer"] = gr.Timer(POLL_SECONDS, active=False)
    return TrainingComponents(**parts)  # type: ignore[arg-type]


def wire(ctx: AppContext, c: TrainingComponents, demo: gr.Blocks, tab: gr.Tab,
         model_info: gr.Markdown | None = None) -> None:
    """``tab`` is the Training tab (selecting it refreshes the base model line and the defaults);
    ``model_info`` is the Chat tab's model line, refreshed after Apply."""
    bases = data.BaseModelCache()  # the base model's tokenizer and defaults, read once per model
    defaults = [c.learning_rate, c.rank, c.alpha]
    on(demo.load, bind(runs.on_page_load, ctx, bases), None, [c.base_model, c.run_select, *defaults, *c.run_view()])
    on(tab.select, bind(data.on_tab_select, ctx, bases), None, [c.base_model, c.character, *defaults])
    on(c.source.input, data.on_source, c.source, [c.file_box, c.chats_box, c.method, c.train_on])
    on(c.find_btn.click, bind(data.find_chats, ctx), [c.character, c.search, c.since, c.until, c.source],
       [c.chats, c.found, c.replies])
    on(c.replies_btn.click, bind(data.list_replies, ctx), c.chats, c.replies)
    on(c.preview_btn.click, bind(data.show_preview, ctx, bases), c.form(), [c.counts, c.preview, *defaults],
       concurrency_limit=1, concurrency_id="train-preview", show_progress_on=c.preview)
    on(c.train_btn.click, bind(runs.start_run, ctx), c.form(), [c.run_select, *c.run_view()],
       concurrency_limit=1, concurrency_id="train-start", show_progress_on=c.progress)
    shown = [c.run_select]
    on(c.timer.tick, bind(runs.poll, ctx), shown, c.run_view(), show_progress="hidden")  # no flicker per tick
    on(c.run_select.input, bind(runs.show_selected, ctx), shown, c.run_view())
    on(c.refresh_btn.click, bind(runs.refresh, ctx), shown, [c.run_select, *c.run_view()])
    quiet = {"show_progress_on": c.progress}  # one spinner (and one error mark), not one per output
    on(c.stop_btn.click, bind(runs.stop_run, ctx), shown, c.run_view(), **quiet)
    on(c.resume_btn.click, bind(runs.resume_run, ctx), shown, c.run_view(), **quiet)
    on(c.delete_btn.click, bind(runs.delete_run, ctx), shown, [c.run_select, *c.run_view()], js=CONFIRM_DELETE,
       **quiet)
    applied = [c.applied, *([model_info] if model_info is not None else [])]
    on(c.apply_btn.click, bind(runs.apply_adapter, ctx, model_info is not None), shown, applied,
       concurrency_limit=1, concurrency_id="model-load")
