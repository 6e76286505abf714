"""The lorebook (Character Card V2/V3 ``character_book``) editor inside the Characters tab.

Book settings (name, description, scan depth, token budget, recursive scanning) and one entry at a
time: pick it in *Entry*, edit it, *Save entry*; *New entry* starts a blank one; *Delete entry* asks
first. Every change is written into the saved character at once (as SillyTavern's World Info editor
does), so the prompt builder, *Export card* and the character's own *Save* all see it.

An edit changes only the fields the form shows: an entry's ``extensions`` (SillyTavern's
per-entry settings), its ``id`` and any unknown fields stay as they were. Keys left as shown keep
their exact list (so a key holding a comma survives). Bad input (no keys on an entry that is not
constant, a number that is not whole, an invalid regular expression) gets a warning and changes
nothing, neither on disk nor in the form. The line under the form keeps the outcome of the last Save or
Delete in view (the toast fades).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.chat.character import Character, Lorebook, LorebookEntry
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.ui.events import action, bind, lookup, on

POSITIONS = ["before_char", "after_char"]
# The entry form, in order: (LorebookEntry field, kind). Kinds: text, keys, bool, int, opt_int, position.
ENTRY_FIELDS = [
    ("name", "text"),
    ("comment", "text"),
    ("keys", "keys"),
    ("secondary_keys", "keys"),
    ("content", "text"),
    ("enabled", "bool"),
    ("constant", "bool"),
    ("selective", "bool"),
    ("case_sensitive", "bool"),
    ("use_regex", "bool"),
    ("insertion_order", "int"),
    ("priority", "opt_int"),
    ("position", "position"),
]
# Writes are actions (gr.Info / gr.Warning only reach the page from queued events: see
# webui/ui/events.py), run one at a time so two of them never interleave their read-modify-write of
# the character file.
WRITE: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "lorebook-write", "show_progress": "hidden"}
NO_CHARACTER = "Choose a saved character first (or save the new one): the lorebook is stored in it."
CONFIRM_DELETE_JS = (
    "(...args) => { if (!confirm('Delete this lorebook entry? This cannot be undone.')) "
    "throw new Error('cancelled'); return args; }"
)


class LorebookInputError(UserFacingError):
    """A lorebook form value that cannot be saved; the message says what to change."""


# ------------------------------------------------------------------------------ pure functions


def split_keys(text: str | None) -> list[str]:
    """Keys typed as ``a, b, c`` (commas or new lines separate), blanks and repeats dropped."""
    out: list[str] = []
    for part in re.split(r"[,\n]", text or ""):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def join_keys(keys: list[str]) -> str:
    return ", ".join(keys)


def _whole_number(value: Any, label: str, *, optional: bool = False, minimum: int | None = None) -> int | None:
    """``value`` (a gr.Number float, an int or a string) as an int; else a LorebookInputError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise LorebookInputError(f"{label} must be a whole number; it is empty.")
    if isinstance(value, bool):
        raise LorebookInputError(f"{label} must be a whole number, not {value!r}.")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise LorebookInputError(f"{label} must be a whole number, not {value!r}.") from None
    if not number.is_integer():
        raise LorebookInputError(f"{label} must be a whole number, not {value}.")
    if minimum is not None and number < minimum:
        raise LorebookInputError(f"{label} must be {minimum} or more, not {int(number)}.")
    return int(number)


def entry_form_values(entry: LorebookEntry | None) -> list[Any]:
    """The entry form's values (ENTRY_FIELDS order) for ``entry``; a new entry's defaults for None."""
    entry = entry if entry is not None else LorebookEntry()
    out: list[Any] = []
    for name, kind in ENTRY_FIELDS:
        value = getattr(entry, name)
        if kind == "keys":
            value = join_keys(value)
        elif kind == "bool":
            value = bool(value)
        out.append(value)
    return out


def entry_from_form(base: LorebookEntry | None, values: list[Any], *, new_id: int | str | None = None) -> LorebookEntry:
    """The entry the form describes, over ``base`` (its extensions, id and unknown fields kept).

    ``new_id`` is the id of a new entry (``base`` None). Raises LorebookInputError for input that
    cannot be saved.
    """
    if len(values) != len(ENTRY_FIELDS):
        raise ValueError(f"expected {len(ENTRY_FIELDS)} values, got {len(values)}")
    form = dict(zip((name for name, _kind in ENTRY_FIELDS), values))
    old = base if base is not None else LorebookEntry(id=new_id)
    data: dict[str, Any] = {}
    for name, kind in ENTRY_FIELDS:
        value = form[name]
        if kind == "text":
            data[name] = value or ""
        elif kind == "keys":
            text = value or ""
            # unchanged text keeps the exact list (a key may hold a comma, e.g. a regex like a{1,3})
            data[name] = list(getattr(old, name)) if text == join_keys(getattr(old, name)) else split_keys(text)
        elif kind == "bool":
            data[name] = bool(value)
        elif kind == "int":
            data[name] = _whole_number(value, "Insertion order")
        elif kind == "opt_int":
            data[name] = _whole_number(value, "Priority", optional=True)
        elif kind == "position":
            data[name] = value or old.position or POSITIONS[0]
    if old.case_sensitive is None and not data["case_sensitive"]:
        data["case_sensitive"] = None  # "not set" stays not set (matching is case-insensitive either way)
    if not data["keys"] and not data["constant"]:
        raise LorebookInputError(
            "An entry needs at least one key (comma separated), or tick Constant to insert it always."
        )
    if data["use_regex"]:
        for key in [*data["keys"], *data["secondary_keys"]]:
            try:
                re.compile(key)
            except re.error as exc:
                raise LorebookInputError(f"Key {key!r} is not a valid regular expression: {exc}.") from None
    return old.model_copy(update=data, deep=True)


def book_form_values(book: Lorebook | None) -> list[Any]:
    """[name, description, scan_depth, token_budget, recursive_scanning] for ``book``."""
    book = book if book is not None else Lorebook()
    return [book.name, book.description, book.scan_depth, book.token_budget, book.recursive_scanning]


def book_from_form(base: Lorebook | None, name: str, description: str, scan_depth: Any, token_budget: Any,
                   recursive: bool) -> Lorebook:
    """``base`` (entries, extensions, unknown fields kept) with the book settings from the form."""
    update = {
        "name": name or "",
        "description": description or "",
        "scan_depth": _whole_number(scan_depth, "Scan depth", optional=True, minimum=0),
        "token_budget": _whole_number(token_budget, "Token budget", optional=True, minimum=0),
        "recursive_scanning": bool(recursive),
    }
    return (base if base is not None else Lorebook()).model_copy(update=update, deep=True)


def next_entry_id(book: Lorebook | None) -> int:
    """One more than the largest integer id in ``book`` (0 for an empty book)."""
    ids = [e.id for e in book.entries if isinstance(e.id, int) and not isinstance(e.id, bool)] if book else []
    return max(ids, default=-1) + 1


def with_entry(char: Character, index: int | None, entry: LorebookEntry) -> Character:
    """``char`` with ``entry`` replacing entry ``index`` (None: appended; a new book if it had none)."""
    book = char.character_book.model_copy(deep=True) if char.character_book else Lorebook()
    if index is None:
        book.entries.append(entry)
    else:
        book.entries[index] = entry
    return char.model_copy(update={"character_book": book})


def without_entry(char: Character, index: int) -> Character:
    """``char`` with lorebook entry ``index`` removed (the book itself stays)."""
    if char.character_book is None:
        return char
    book = char.character_book.model_copy(deep=True)
    del book.entries[index]
    return char.model_copy(update={"character_book": book})


def entry_title(entry: LorebookEntry) -> str:
    title = entry.name.strip() or entry.comment.strip() or join_keys(entry.keys[:3]) or "(no keys)"
    return title if len(title) <= 48 else title[:47] + "…"


def entry_choices(book: Lorebook | None) -> list[tuple[str, str]]:
    """Entry dropdown choices: (label, index as a string)."""
    out = []
    for i, entry in enumerate(book.entries if book else []):
        flags = (" · constant" if entry.constant else "") + ("" if entry.enabled else " · off")
        out.append((f"{i + 1}. {entry_title(entry)}{flags}", str(i)))
    return out


def lore_markdown(char: Character | None) -> str:
    if char is None or not char.character_book or not char.character_book.entries:
        return "No lorebook."
    n = len(char.character_book.entries)
    return f"Lorebook: {n} entr{'y' if n == 1 else 'ies'} (kept on save and export)."


def entry_info(char: Character | None, index: int | None, status: str = "") -> str:
    """The line under the entry form; ``status``: how the last Save or Delete went (kept in view,
    where a toast fades)."""
    if char is None:
        line = "Choose or save a character to edit its lorebook."
    elif index is None:
        line = "New entry: fill it in and press *Save entry*."
    else:
        entry = char.character_book.entries[index]  # type: ignore[union-attr]
        kept = ", ".join(sorted(entry.extensions)) or "none"
        line = f"Entry {index + 1} of {len(char.character_book.entries)} · id {entry.id} · extensions kept: {kept}"  # type: ignore[union-attr]
    return f"{line}  \n{status}" if status else line


def not_saved(message: str) -> str:
    return f"**Not saved:** {message}"


def _snapshot(entry: LorebookEntry | None) -> dict[str, Any] | None:
    return entry.model_dump(mode="json") if entry is not None else None


# ----------------------------------------------------------------------------------------- UI


@dataclass
class LorebookComponents:
    book_fields: list[Any]  # name, description, scan_depth, token_budget, recursive_scanning
    book_save_btn: gr.Button
    entry_choice: gr.Dropdown
    new_btn: gr.Button
    entry_fields: list[Any]  # ENTRY_FIELDS order
    entry_info: gr.Markdown
    save_btn: gr.Button
    delete_btn: gr.Button
    loaded: gr.State  # the entry as it was opened (None: a new entry), to notice a changed book

    def outputs(self) -> list[Any]:
        """What ``values`` fills, in order."""
        return [*self.book_fields, self.entry_choice, *self.entry_fields, self.entry_info, self.loaded]


def build() -> LorebookComponents:
    with gr.Accordion("Lorebook", open=False, elem_id="char-lorebook"):
        gr.Markdown("Entries whose keys appear in the last messages go into the prompt. Changes here are saved "
                    "into the character at once (pick a saved character first).")
        with gr.Row():
            book_name = gr.Textbox(label="Lorebook name", elem_id="lore-book-name", scale=2)
            scan_depth = gr.Number(label="Scan depth (empty = 4 messages)", elem_id="lore-scan-depth", scale=1)
            token_budget = gr.Number(label="Token budget (empty = 2048)", elem_id="lore-token-budget", scale=1)
        with gr.Row(equal_height=True):
            book_description = gr.Textbox(label="Lorebook description", elem_id="lore-book-description", scale=3)
            recursive = gr.Checkbox(label="Recursive scanning", info="inserted entries can activate others",
                                    elem_id="lore-recursive", scale=1)
            book_save_btn = gr.Button("Save lorebook settings", elem_id="lore-save-book", scale=1)
        with gr.Row():
            entry_choice = gr.Dropdown(choices=[], value=None, label="Entry", elem_id="lore-entry", scale=4)
            new_btn = gr.Button("New entry", elem_id="lore-new-entry", scale=1)
        with gr.Row():
            name = gr.Textbox(label="Name", elem_id="lore-name")
            comment = gr.Textbox(label="Comment (your note)", elem_id="lore-comment")
        keys = gr.Textbox(label="Keys (comma separated; any one activates the entry)", elem_id="lore-keys")
        secondary = gr.Textbox(label="Secondary keys (comma separated; with Selective one of them must match too)",
                               elem_id="lore-secondary-keys")
        content = gr.Textbox(label="Content (inserted into the prompt)", lines=5, elem_id="lore-content")
        with gr.Row():
            enabled = gr.Checkbox(value=True, label="Enabled", elem_id="lore-enabled")
            constant = gr.Checkbox(label="Constant (always inserted)", elem_id="lore-constant")
            selective = gr.Checkbox(label="Selective", elem_id="lore-selective")
            case_sensitive = gr.Checkbox(label="Case sensitive", elem_id="lore-case-sensitive")
            use_regex = gr.Checkbox(label="Keys are regular expressions", elem_id="lore-use-regex")
        with gr.Row():
            order = gr.Number(value=100, label="Insertion order (larger = later in the prompt)", elem_id="lore-order")
            priority = gr.Number(label="Priority (empty = insertion order; lowest dropped first over budget)",
                                 elem_id="lore-priority")
            position = gr.Radio(POSITIONS, value=POSITIONS[0], label="Position (relative to the description)",
                                elem_id="lore-position")
        info = gr.Markdown(elem_id="lore-entry-info")
        with gr.Row():
            save_btn = gr.Button("Save entry", variant="primary", elem_id="lore-save-entry")
            delete_btn = gr.Button("Delete entry", variant="stop", elem_id="lore-delete-entry")
        loaded = gr.State(None)
    entry_fields = [name, comment, keys, secondary, content, enabled, constant, selective, case_sensitive, use_regex,
                    order, priority, position]
    return LorebookComponents([book_name, book_description, scan_depth, token_budget, recursive], book_save_btn,
                              entry_choice, new_btn, entry_fields, info, save_btn, delete_btn, loaded)


def _entry_updates(char: Character | None, index: int | None, status: str = "") -> list[Any]:
    """Dropdown, entry fields, info and snapshot for entry ``index`` of ``char`` (None: a new entry)."""
    book = char.character_book if char else None
    entry = book.entries[index] if book is not None and index is not None else None
    values = entry_form_values(entry)
    pos = values[-1]
    values[-1] = gr.update(value=pos, choices=POSITIONS if pos in POSITIONS else [*POSITIONS, pos])
    choice = gr.update(choices=entry_choices(book), value=None if index is None else str(index))
    return [choice, *values, entry_info(char, index, status), _snapshot(entry)]


def values(char: Character | None) -> list[Any]:
    """Everything the editor shows for ``char`` (its first entry opened), in ``outputs()`` order."""
    book = char.character_book if char else None
    return [*book_form_values(book), *_entry_updates(char, 0 if book and book.entries else None)]


# ------------------------------------------------------------------------------------ handlers
# ``selected``: the Characters tab's character dropdown; ``index``: the Entry dropdown (an index as a
# string, None for a new entry); ``loaded``: the entry as it was opened. Entry handlers return
# ``_entry_updates`` (the writes add the character's lorebook summary), in ``LorebookComponents.outputs()``
# order from the Entry dropdown on.

ENTRY_INFO_AT = 1 + len(ENTRY_FIELDS)  # where the info line is in ``_entry_updates``
WRITE_OUTPUTS = ENTRY_INFO_AT + 3  # ``_entry_updates`` and the lorebook summary


def _saved(ctx: AppContext, selected: str | None) -> Character | None:
    return ctx.characters.get(selected) if selected and ctx.characters.has(selected) else None


def stored_index(char: Character | None, index: str | None) -> int | None:
    """The Entry dropdown's value as an index, if ``char`` has that entry."""
    if char is None or index in (None, "") or not char.character_book:
        return None
    i = int(index)  # type: ignore[arg-type]
    return i if i < len(char.character_book.entries) else None


def _refused(ctx: AppContext, message: str, selected: str | None, index: str | None) -> list[Any]:
    """A Save or Delete that changed nothing: a warning, and the reason under the form; the form
    itself is left as the user typed it."""
    gr.Warning(message)
    shown: list[Any] = [gr.update()] * WRITE_OUTPUTS
    char = _saved(ctx, selected)
    shown[ENTRY_INFO_AT] = entry_info(char, stored_index(char, index), not_saved(message))
    return shown


def _current(ctx: AppContext, selected: str | None, index: str | None,
             loaded: dict[str, Any] | None) -> tuple[Character, int | None]:
    """The stored character and the opened entry's index; LorebookInputError if either is gone or changed."""
    char = _saved(ctx, selected)
    if char is None:
        raise LorebookInputError(NO_CHARACTER)
    if index in (None, ""):
        return char, None
    i = int(index)  # type: ignore[arg-type]
    entries = char.character_book.entries if char.character_book else []
    if i >= len(entries) or _snapshot(entries[i]) != loaded:
        raise LorebookInputError("This lorebook changed since the entry was opened (another tab?). "
                                 "Pick the entry again; your text is still in the form.")
    return char, i


def _store(ctx: AppContext, char: Character, index: int | None, message: str, selected: str | None,
           opened: str | None) -> list[Any]:
    try:
        saved = ctx.characters.save(char)
    except UserFacingError as exc:  # e.g. the data dir is not writable: keep the form as it is
        return _refused(ctx, str(exc), selected, opened)
    gr.Info(message)
    return [*_entry_updates(saved, index, f"{message} ({time.strftime('%H:%M:%S')})"), lore_markdown(saved)]


@lookup
def open_entry(ctx: AppContext, selected: str | None, index: str | None) -> list[Any]:
    char = _saved(ctx, selected)
    return _entry_updates(char, stored_index(char, index))


@lookup
def new_entry(ctx: AppContext, selected: str | None) -> list[Any]:
    return _entry_updates(_saved(ctx, selected), None)


@action
def save_entry(ctx: AppContext, selected: str | None, index: str | None, loaded: dict[str, Any] | None,
               *form: Any) -> list[Any]:
    """Save the form as the opened entry (or append a new one); refused with a warning for bad input."""
    try:
        char, i = _current(ctx, selected, index, loaded)
        base = char.character_book.entries[i] if i is not None else None  # type: ignore[union-attr]
        entry = entry_from_form(base, list(form), new_id=next_entry_id(char.character_book))
    except LorebookInputError as exc:
        return _refused(ctx, str(exc), selected, index)
    char = with_entry(char, i, entry)
    i = i if i is not None else len(char.character_book.entries) - 1  # type: ignore[union-attr]
    return _store(ctx, char, i, f"Saved lorebook entry {i + 1} ({entry_title(entry)}) in {char.name}.", selected, index)


@action
def delete_entry(ctx: AppContext, selected: str | None, index: str | None, loaded: dict[str, Any] | None) -> list[Any]:
    """Delete the opened entry and open the one now at its place (or the last)."""
    try:
        char, i = _current(ctx, selected, index, loaded)
        if i is None:
            raise LorebookInputError("Pick an entry to delete (a new entry is not saved yet).")
    except LorebookInputError as exc:
        return _refused(ctx, str(exc), selected, index)
    title = entry_title(char.character_book.entries[i])  # type: ignore[union-attr]
    left = without_entry(char, i)
    n = len(left.character_book.entries) if left.character_book else 0
    message = f"Deleted lorebook entry {i + 1} ({title}) from {char.name}."
    return _store(ctx, left, min(i, n - 1) if n else None, message, selected, index)


@action
def save_book(ctx: AppContext, selected: str | None, *form: Any) -> Any:
    """Save the book settings; the lorebook summary (unchanged, with a warning, when refused)."""
    char = _saved(ctx, selected)
    try:
        if char is None:
            raise LorebookInputError(NO_CHARACTER)
        book = book_from_form(char.character_book, *form)
        saved = ctx.characters.save(char.model_copy(update={"character_book": book}))
    except UserFacingError as exc:  # LorebookInputError or a failed write
        gr.Warning(str(exc))
        return gr.update()
    gr.Info(f"Saved the lorebook settings of {saved.name}.")
    return lore_markdown(saved)


def wire(ctx: AppContext, c: LorebookComponents, choice: gr.Dropdown, lore_info: gr.Markdown) -> None:
    """``choice``: the Characters tab's character dropdown; ``lore_info``: its lorebook summary."""
    shown = [c.entry_choice, *c.entry_fields, c.entry_info, c.loaded]  # what ``_entry_updates`` fills
    opened = [choice, c.entry_choice, c.loaded]
    on(c.entry_choice.input, bind(open_entry, ctx), [choice, c.entry_choice], shown)
    on(c.new_btn.click, bind(new_entry, ctx), choice, shown)
    on(c.save_btn.click, bind(save_entry, ctx), [*opened, *c.entry_fields], [*shown, lore_info], **WRITE)
    on(c.delete_btn.click, bind(delete_entry, ctx), opened, [*shown, lore_info], js=CONFIRM_DELETE_JS, **WRITE)
    on(c.book_save_btn.click, bind(save_book, ctx), [choice, *c.book_fields], lore_info, **WRITE)
