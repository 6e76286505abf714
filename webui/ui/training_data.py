"""The Training tab's data side: the base model line, the data source, the chat filters, the preview,
and the request a form makes (``make_request``), which the run side starts.

The preview renders rows exactly as the trainer will (``webui.training.render``): the base model's
chat template applied, the trained tokens marked. Its tokenizer is loaded once per base model and
kept in a ``TokenizerCache`` that ``training_tab.wire`` makes (no module-level state).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import gradio as gr

from webui.context import AppContext
from webui.engine.protocol import is_url
from webui.errors import UserFacingError
from webui.training.base_model import cache_folder, load_config, resolve_base
from webui.training.chat_data import ChatSummary, chats_dataset, list_chats, preference_dataset
from webui.training.data_formats import read_dataset
from webui.training.defaults import ModelDefaults, model_defaults, size_defaults
from webui.training.render import TokenizedSet, render, segments, tokenize_sft
from webui.training.types import ChatSelection, Dataset, Hyperparams, Method, TrainRequest
from webui.ui.events import action, lookup
from webui.ui.session import current_user_id

ANY_CHARACTER = ""
REMOTE_MESSAGE = ("The loaded model is served by a remote server, which cannot be trained here. "
                  "Load a local model (a folder or a .gguf file) in the Model tab, then train on it.")
NO_MODEL_MESSAGE = "No model is loaded. Load the model to train on in the Model tab."
PREVIEW_EXAMPLES = 3
DEFAULT_LABELS = ["Learning rate (0: {})", "LoRA rank (0: {})", "LoRA alpha (0: {})"]
FORM_FIELDS = ["source", "method", "data_file", "character", "search", "since", "until", "chats", "replies", "name"]
HYPER_FIELDS = ["epochs", "max_steps", "learning_rate", "rank", "alpha", "batch_size", "max_length", "val_fraction",
                "val_file", "train_on", "dropout", "grad_accum", "target_modules", "beta", "quantization", "dtype",
                "gradient_checkpointing", "seed", "eval_steps"]


def base_model_path(ctx: AppContext) -> str:
    """The loaded model's path, the base a run trains on; refuses a remote engine or no model."""
    spec = ctx.engine.spec
    info = ctx.engine.load_info
    if spec is None or info is None:
        raise UserFacingError(NO_MODEL_MESSAGE)
    if info.loader == "remote" or is_url(spec.path):
        raise UserFacingError(REMOTE_MESSAGE)
    return spec.path


def base_model_markdown(ctx: AppContext) -> str:
    try:
        path = base_model_path(ctx)
    except UserFacingError as exc:
        return f"**Base model:** {exc}"
    name = ctx.engine.load_info.name if ctx.engine.load_info else Path(path).name
    return (f"**Base model:** {name}, the loaded model (`{path}`). "
            "To train another, load it in the Model tab first.")


def character_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [("Any character", ANY_CHARACTER), *((n, n) for n in ctx.characters.names())]


def hyper_defaults(ctx: AppContext, bases: BaseModelCache, method: Method = "sft") -> list[Any]:
    """[learning rate, rank, alpha] labels naming this model's defaults, once known (the first
    preview reads them: a model's size takes seconds to read, too long for opening the tab). A
    field left at 0 trains with the default."""
    try:
        known = bases.peek(base_model_path(ctx))
    except UserFacingError:
        known = None
    if known is None:
        return [gr.update(label=label.format("this model's default")) for label in DEFAULT_LABELS]
    values = size_defaults(known.defaults.n_params, method)
    return [gr.update(label=label.format(f"default {value:g}")) for label, value in zip(DEFAULT_LABELS, values)]


@lookup
def on_tab_select(ctx: AppContext, bases: BaseModelCache) -> list[Any]:
    """The tab was opened: the model may have changed since, and characters may have been added."""
    return [base_model_markdown(ctx), gr.update(choices=character_choices(ctx)), *hyper_defaults(ctx, bases)]


@lookup
def on_source(source: str) -> list[Any]:
    """Show the file upload or the chat filters; preferences always train with DPO on the replies."""
    chats = source in ("chats", "preferences")
    method = gr.update(value="dpo", interactive=False) if source == "preferences" else (
        gr.update(value="sft", interactive=False) if source == "chats" else gr.update(interactive=True))
    return [gr.update(visible=not chats), gr.update(visible=chats), method,
            gr.update(value="assistant") if chats else gr.update()]


def _date(text: str | None, label: str) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise UserFacingError(f"{label} must be a date like 2025-01-31, not {text!r}.") from None


def _ids(values: list[Any] | None) -> list[int]:
    return [int(v) for v in values or []]


def chat_selection(ctx: AppContext, request: gr.Request | None, character: str | None, search: str | None,
                   since: str | None, until: str | None, chats: list[Any] | None = None,
                   replies: list[Any] | None = None) -> ChatSelection:
    """The filters as a ``ChatSelection`` for this request's user; ``chats``/``replies``: ticked ids
    (None: every chat the filters match)."""
    selection = ChatSelection(
        user_id=current_user_id(ctx, request), character=(character or "").strip() or None,
        search=(search or "").strip() or None, since=_date(since, "From"), until=_date(until, "To"),
    )
    if selection.since and selection.until and selection.since > selection.until:
        raise UserFacingError("The From date is after the To date.")
    if chats is not None:
        selection.conversation_ids = _ids(chats)
        if not selection.conversation_ids:
            raise UserFacingError("Tick at least one chat (press Find chats to list them).")
    if replies:
        selection.message_ids = _ids(replies)
    return selection


def _chat_label(chat: ChatSummary) -> str:
    parts = [chat.title or "Untitled", chat.character, chat.updated_at.strftime("%Y-%m-%d"),
             f"{chat.n_messages} messages"]
    return " · ".join(p for p in parts if p)


@action
def find_chats(ctx: AppContext, character: str, search: str, since: str, until: str, source: str,
               request: gr.Request) -> list[Any]:
    """List the chats the filters match, all ticked; [chats, found line, replies (cleared)]."""
    found = list_chats(ctx.repo, chat_selection(ctx, request, character, search, since, until))
    choices = [(_chat_label(c), str(c.id)) for c in found]
    if not found:
        line = "No chat matches these filters."
    elif source == "preferences":
        line = (f"{len(found)} chats. Preference pairs come from replies you regenerated: the version you kept "
                "against the ones you moved away from.")
    else:
        line = f"{len(found)} chats match; untick the ones to leave out."
    return [gr.update(choices=choices, value=[v for _, v in choices]), line, gr.update(choices=[], value=[])]


@action
def list_replies(ctx: AppContext, chats: list[str], request: gr.Request) -> Any:
    """The assistant replies of the ticked chats, none ticked (tick some to train only on them)."""
    if not chats:
        raise UserFacingError("Tick at least one chat first.")
    user_id = current_user_id(ctx, request)
    choices: list[tuple[str, str]] = []
    for conv_id in _ids(chats):
        title = ctx.repo.get_conversation(conv_id, user_id).title or "Untitled"
        for m in ctx.repo.messages(conv_id, user_id):
            if m.role == "assistant" and m.content.strip():
                snippet = " ".join(m.content.split())
                choices.append((f"{title}: {snippet[:90]}{'…' if len(snippet) > 90 else ''}", str(m.id)))
    return gr.update(choices=choices, value=[])


def _number(value: Any, label: str, *, integer: bool = False, minimum: float | None = None) -> Any:
    if value is None or value == "":
        return None
    try:
        number = int(value) if integer and float(value) == int(value) else float(value)
    except (TypeError, ValueError):
        raise UserFacingError(f"{label} must be a number.") from None
    if integer and not isinstance(number, int):
        raise UserFacingError(f"{label} must be a whole number.")
    if minimum is not None and number < minimum:
        raise UserFacingError(f"{label} must be at least {minimum:g}.")
    return number


def _dropout(value: float) -> float:
    if value >= 1:
        raise UserFacingError("LoRA dropout is a fraction below 1 (0.05 is usual).")
    return value


def hyperparams(values: dict[str, Any]) -> Hyperparams:
    """The form's hyperparameters (``HYPER_FIELDS``); an empty field means this model's default."""
    n = _number
    max_steps = n(values["max_steps"], "Max steps", integer=True, minimum=0) or None
    epochs = n(values["epochs"], "Epochs", minimum=0) or 0.0
    if not max_steps and epochs <= 0:
        raise UserFacingError("Set the epochs or the max steps above zero.")
    modules = [m.strip() for m in (values["target_modules"] or "").replace(",", " ").split() if m.strip()]
    return Hyperparams(
        epochs=epochs, max_steps=max_steps,
        learning_rate=n(values["learning_rate"], "Learning rate", minimum=0) or None,
        rank=n(values["rank"], "LoRA rank", integer=True, minimum=0) or None,
        alpha=n(values["alpha"], "LoRA alpha", integer=True, minimum=0) or None,
        dropout=_dropout(n(values["dropout"], "LoRA dropout", minimum=0) or 0.0),
        batch_size=n(values["batch_size"], "Batch size", integer=True, minimum=1) or 1,
        grad_accum=n(values["grad_accum"], "Gradient accumulation", integer=True, minimum=1) or 1,
        max_length=n(values["max_length"], "Max length", integer=True, minimum=8) or 512,
        target_modules=modules or None, val_fraction=float(values["val_fraction"] or 0.0),
        train_on=values["train_on"] or "assistant", beta=n(values["beta"], "DPO beta", minimum=0) or 0.1,
        quantization=values["quantization"] or "none", dtype=values["dtype"] or "auto",
        gradient_checkpointing=bool(values["gradient_checkpointing"]),
        seed=n(values["seed"], "Seed", integer=True) or 0,
        eval_steps=n(values["eval_steps"], "Evaluate every", integer=True, minimum=0) or None,
    )


def make_request(ctx: AppContext, request: gr.Request | None, *form: Any, need_name: bool = True) -> TrainRequest:
    """The form (``TrainingComponents.form()`` order) as a ``TrainRequest``; one clear message if it
    cannot be one. The data file is the uploaded copy's path (the run keeps the rows it read)."""
    values = dict(zip([*FORM_FIELDS, *HYPER_FIELDS], form, strict=True))
    source, method = values["source"], values["method"]
    base = base_model_path(ctx)
    if source == "file" and not values["data_file"]:
        raise UserFacingError("Upload a training file first (JSONL, JSON, CSV, Parquet or .txt).")
    name = (values["name"] or "").strip()
    if need_name and not name:
        raise UserFacingError("Name the adapter first.")
    train = TrainRequest(name=name, base_model=base, hyper=hyperparams(values),
                         method="dpo" if source == "preferences" else ("sft" if source == "chats" else method))
    if source == "file":
        train.data_file = str(values["data_file"])
    else:
        train.chats = chat_selection(ctx, request, values["character"], values["search"], values["since"],
                                     values["until"], values["chats"] if values["chats"] else None,
                                     values["replies"])
    if values["val_file"]:
        train.validation_file = str(values["val_file"])
    return train


def read_data(ctx: AppContext, train: TrainRequest) -> Dataset:
    """The rows the request trains on (what the run will read), or one clear message."""
    if train.data_file:
        return read_dataset(Path(train.data_file), method=train.method)
    assert train.chats is not None
    build = preference_dataset if train.method == "dpo" else chats_dataset
    return build(ctx.repo, ctx.characters, train.chats, personas=ctx.personas, user_name=ctx.settings.user_name)


@dataclass(frozen=True)
class BaseInfo:
    """What the preview needs of a base model: its tokenizer, and its default LoRA settings."""

    tokenizer: Any
    defaults: ModelDefaults


class BaseModelCache:
    """``BaseInfo`` per base model path, read once (seconds for a GGUF) and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, BaseInfo] = {}

    def peek(self, path: str) -> BaseInfo | None:
        return self._known.get(path)

    def get(self, path: str, data_dir: Path) -> BaseInfo:
        from transformers import AutoTokenizer

        with self._lock:
            if path not in self._known:
                source = resolve_base(path)
                cached = cache_folder(source, data_dir) if source.is_gguf else None
                if cached is not None and (cached / "config.json").is_file():  # a run dequantized it already
                    tokenizer = AutoTokenizer.from_pretrained(cached)
                else:
                    tokenizer = AutoTokenizer.from_pretrained(source.folder, **source.from_pretrained_kwargs())
                self._known[path] = BaseInfo(tokenizer, model_defaults(load_config(source)))
            return self._known[path]


def counts_markdown(dataset: Dataset, counts: TokenizedSet, max_length: int) -> str:
    line = (f"**{counts.n_examples}** {'pairs' if dataset.kind == 'preference' else 'examples'} · "
            f"**{counts.n_tokens}** tokens · **{counts.n_trained_tokens}** trained · "
            f"**{counts.n_truncated}** truncated (over {max_length} tokens)")
    if counts.n_dropped:
        line += f" · **{counts.n_dropped}** left out (nothing to train on once truncated)"
    return f"{line}  \n{dataset.format} data from {dataset.source}"


def preference_preview(rows: list[dict[str, Any]], tokenizer: Any, *, max_length: int,
                       limit: int) -> tuple[TokenizedSet, list[list[tuple[str, str | None]]]]:
    """Counts and segments of preference pairs: the prompt as the template renders it (up to where
    the reply starts), then the chosen and the rejected answer, each of which DPO scores."""
    counts = TokenizedSet()
    shown = []
    for row in rows:
        prompt = render(row["prompt"], tokenizer, add_generation_prompt=True)
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        answers = [len(tokenizer(row[k], add_special_tokens=False)["input_ids"]) for k in ("chosen", "rejected")]
        counts.n_examples += 1
        counts.n_tokens += n_prompt + sum(answers)
        counts.n_trained_tokens += sum(answers)
        counts.n_truncated += int(n_prompt + max(answers) > max_length)
        if len(shown) < limit:
            shown.append([(prompt, None), (row["chosen"], "chosen"), ("\n   versus   \n", None),
                          (row["rejected"], "rejected")])
    return counts, shown


@action
def show_preview(ctx: AppContext, bases: BaseModelCache, request: gr.Request, *form: Any) -> list[Any]:
    """[counts, highlighted examples, *default labels]: the first examples rendered as the
    trainer sees them, with the counts over the whole dataset."""
    train = make_request(ctx, request, *form, need_name=False)
    dataset = read_data(ctx, train)
    tokenizer = bases.get(train.base_model, ctx.settings.data_dir).tokenizer
    hyper = train.hyper
    if dataset.kind == "preference":
        counts, examples = preference_preview(dataset.rows, tokenizer, max_length=hyper.max_length,
                                              limit=PREVIEW_EXAMPLES)
    else:
        counts = tokenize_sft(dataset.rows, tokenizer, max_length=hyper.max_length, train_on=hyper.train_on)
        examples = segments(counts, tokenizer, PREVIEW_EXAMPLES)
    shown: list[tuple[str, str | None]] = []
    for i, example in enumerate(examples):
        if i:
            shown.append((f"\n\n——— example {i + 1} ———\n\n", None))
        shown.extend(example)
    return [counts_markdown(dataset, counts, hyper.max_length), shown, *hyper_defaults(ctx, bases, train.method)]
