"""The Characters tab: list, create / edit / duplicate / delete, upload any card, export V2/V3; its lorebook
(``lorebook_editor``); personas."""

from __future__ import annotations

import io
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from webui.chat.cards import export_card_json, export_card_png, load_character_bytes
from webui.chat.character import Character
from webui.context import AppContext
from webui.errors import CharacterError, UserFacingError
from webui.ui import character_gallery, chat_list, lorebook_editor
from webui.ui import chat_view as view
from webui.ui.chat_components import ChatComponents, open_outputs, open_values
from webui.ui.events import action, bind, lookup, on
from webui.ui.lorebook_editor import lore_markdown
from webui.ui.session import current_user_id, saving_user_id

GREETING_SEPARATOR = "\n---\n"
# Editable text fields, in form order: (Character field, label, lines).
TEXT_FIELDS = [
    ("name", "Name", 1),
    ("description", "Description", 5),
    ("personality", "Personality", 2),
    ("scenario", "Scenario", 2),
    ("first_mes", "First message (greeting)", 3),
    ("alternate_greetings", "Alternate greetings (separate with a line holding ---)", 3),
    ("mes_example", "Example dialogue (blocks start with <START>)", 4),
    ("system_prompt", "System prompt ({{original}} = the default)", 2),
    ("post_history_instructions", "Post-history instructions ({{original}} = the default)", 2),
    ("creator_notes", "Creator's notes (shown in the UI, never in a prompt)", 2),
    ("tags", "Tags (comma separated)", 1),
    ("creator", "Creator", 1),
]


@dataclass
class CharacterComponents:
    choice: gr.Dropdown
    fields: list[gr.Textbox]
    avatar: gr.Image
    lore_info: gr.Markdown
    save_btn: gr.Button
    duplicate_btn: gr.Button
    delete_btn: gr.Button
    upload: gr.File
    export_kind: gr.Radio
    export_btn: gr.Button
    export_file: gr.File
    persona_choice: gr.Dropdown
    persona_name: gr.Textbox
    persona_description: gr.Textbox
    persona_avatar: gr.Image
    persona_save_btn: gr.Button
    persona_delete_btn: gr.Button
    lorebook: lorebook_editor.LorebookComponents
    gallery: character_gallery.GalleryComponents | None = None


def build(ctx: AppContext) -> CharacterComponents:
    """The gallery first, then the form, which always shows a character (the first one at start)."""
    gallery = character_gallery.build(ctx)
    names = ctx.characters.names()
    first = _saved(ctx, names[0]) if names else None
    with gr.Row():
        choice = gr.Dropdown(choices=names, value=first.name if first else None, label="Character",
                             elem_id="character-choice", scale=3)
        upload = gr.File(label="Import a card (.png, .json, .yaml)", file_types=[".png", ".json", ".yaml", ".yml"],
                         type="filepath", elem_id="character-upload", scale=2, height=120)
    with gr.Row():
        with gr.Column(scale=3):
            fields = [gr.Textbox(value, label=label, lines=lines, elem_id=f"char-{name.replace('_', '-')}")
                      for (name, label, lines), value in zip(TEXT_FIELDS, form_values(first))]
            lorebook = lorebook_editor.build()
        with gr.Column(scale=1):
            avatar = gr.Image(_image(first.avatar_png) if first else None, label="Avatar", type="pil",
                              image_mode="RGBA", elem_id="char-avatar", height=240)
            lore_info = gr.Markdown(elem_id="char-lore")
            save_btn = gr.Button("Save", variant="primary", elem_id="save-character")
            duplicate_btn = gr.Button("Duplicate", elem_id="duplicate-character")
            delete_btn = gr.Button("Delete", variant="stop", elem_id="delete-character")
            export_kind = gr.Radio(["V2 PNG", "V3 PNG", "V2 JSON", "V3 JSON"], value="V2 PNG", label="Export as",
                                   elem_id="export-kind")
            export_btn = gr.Button("Export card", elem_id="export-character")
            export_file = gr.File(label="Card", visible=False, interactive=False, elem_id="character-file")
    gr.Markdown("### Personas — who you are in a chat (`{{user}}` becomes the persona's name)")
    with gr.Row():
        persona_choice = gr.Dropdown(choices=[p for p in view.persona_choices(ctx, None) if p != view.NO_PERSONA],
                                     value=None, label="Persona", elem_id="persona-choice", scale=2)
        persona_name = gr.Textbox(label="Name", elem_id="persona-name", scale=2)
    with gr.Row():
        persona_description = gr.Textbox(label="Description", lines=3, elem_id="persona-description", scale=3)
        persona_avatar = gr.Image(label="Avatar", type="pil", elem_id="persona-avatar", height=160, scale=1)
    with gr.Row():
        persona_save_btn = gr.Button("Save persona", variant="primary", elem_id="save-persona")
        persona_delete_btn = gr.Button("Delete persona", variant="stop", elem_id="delete-persona")
    return CharacterComponents(choice, fields, avatar, lore_info, save_btn, duplicate_btn, delete_btn, upload,
                               export_kind, export_btn, export_file, persona_choice, persona_name, persona_description,
                               persona_avatar, persona_save_btn, persona_delete_btn, lorebook, gallery)


def _png_bytes(image: Any) -> bytes | None:
    if image is None:
        return None
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _image(png: bytes | None) -> Any:
    if not png:
        return None
    from PIL import Image

    return Image.open(io.BytesIO(png))


def form_values(char: Character | None) -> list[Any]:
    if char is None:
        return ["" for _ in TEXT_FIELDS]
    out = []
    for name, _label, _lines in TEXT_FIELDS:
        value = getattr(char, name)
        if name == "alternate_greetings":
            value = GREETING_SEPARATOR.join(value)
        elif name == "tags":
            value = ", ".join(value)
        out.append(value)
    return out


def character_from_form(base: Character | None, values: list[Any], avatar: bytes | None) -> Character:
    """The edited character: form fields over ``base`` (lorebook, extensions, V3 extras kept)."""
    data: dict[str, Any] = {}
    for (name, _label, _lines), value in zip(TEXT_FIELDS, values):
        value = value or ""
        if name == "alternate_greetings":
            value = [g.strip() for g in re.split(r"\n\s*---\s*\n", value) if g.strip()]
        elif name == "tags":
            value = [t.strip() for t in value.split(",") if t.strip()]
        data[name] = value.strip() if isinstance(value, str) and name == "name" else value
    if base is None:
        return Character(**data, avatar_png=avatar)
    return base.model_copy(update={**data, "avatar_png": avatar if avatar is not None else base.avatar_png})


# -- characters -------------------------------------------------------------------------------
CONFIRM_DELETE_JS = "(n) => { if (!confirm('Delete character ' + n + '?')) throw new Error('cancelled'); return n; }"
# Handlers return, in order: the Characters tab's dropdown and the Chat tab's character dropdown
# (``_choices``), then the form (``show``: ``form_outputs``), as their registrations list them.


def _saved(ctx: AppContext, name: str | None) -> Character | None:
    return ctx.characters.get(name) if name and ctx.characters.has(name) else None


def _choices(ctx: AppContext, selected: str | None) -> list[Any]:
    names = ctx.characters.names()
    return [gr.update(choices=names, value=selected), gr.update(choices=names)]


@lookup
def show(ctx: AppContext, name: str | None) -> list[Any]:
    """The form for character ``name`` (empty for None or an unknown name), lorebook editor included."""
    char = _saved(ctx, name)
    return [*form_values(char), _image(char.avatar_png if char else None), lore_markdown(char),
            *lorebook_editor.values(char)]


@action
def save(ctx: AppContext, selected: str | None, avatar: Any, *values: Any) -> list[Any]:
    """Save the form over the selected character (its lorebook and extras kept), or as a new one."""
    char = ctx.characters.save(character_from_form(_saved(ctx, selected), list(values), _png_bytes(avatar)),
                               replacing=selected)
    gr.Info(f"Saved {char.name} to {ctx.characters.user_dir}.")
    return _choices(ctx, char.name)


@action
def duplicate(ctx: AppContext, selected: str | None) -> list[Any]:
    """Save a copy named "<name> (copy)" (or "(copy 2)", ...) and show it."""
    base = _saved(ctx, selected)
    if base is None:
        raise UserFacingError("Choose a character to duplicate.")
    name = f"{base.name} (copy)"
    n = 2
    while ctx.characters.has(name):
        name, n = f"{base.name} (copy {n})", n + 1
    char = ctx.characters.save(base.model_copy(update={"name": name}))
    return [*_choices(ctx, char.name), *show(ctx, char.name)]


@action
def delete(ctx: AppContext, selected: str | None) -> list[Any]:
    if not selected:
        raise UserFacingError("Choose a character to delete.")
    ctx.characters.delete(selected)
    gr.Info(f"Deleted {selected}.")
    names = ctx.characters.names()
    first = names[0] if names else None  # the form always shows a character while there is one
    return [*_choices(ctx, first), *show(ctx, first)]


@action
def upload(ctx: AppContext, path: str | None) -> list[Any]:
    """Import an uploaded card, show it, and clear the upload box."""
    if not path:
        return [gr.update(), gr.update(), *([gr.update()] * len(show(ctx, None))), None]
    name = Path(path).name
    try:
        char = ctx.characters.save(load_character_bytes(Path(path).read_bytes(), name))
    except UserFacingError as exc:
        raise CharacterError(f"Could not import {name}: {exc}") from exc
    gr.Info(f"Imported {char.name}.")
    return [*_choices(ctx, char.name), *show(ctx, char.name), None]


@action
def export(ctx: AppContext, selected: str | None, kind: str) -> Any:
    """The selected character as a card file (``kind``: "V2 PNG", "V3 JSON", ...) to download."""
    char = _saved(ctx, selected)
    if char is None:
        raise UserFacingError("Choose a character to export.")
    spec = "v3" if kind.startswith("V3") else "v2"
    folder = Path(tempfile.mkdtemp(prefix="webui-card-"))
    slug = re.sub(r"[^\w-]+", "_", char.name).strip("_") or "character"
    if kind.endswith("PNG"):
        path = folder / f"{slug}.{spec}.png"
        path.write_bytes(export_card_png(char, spec))  # type: ignore[arg-type]
    else:
        path = folder / f"{slug}.{spec}.json"
        path.write_text(json.dumps(export_card_json(char, spec), ensure_ascii=False, indent=2), encoding="utf-8")  # type: ignore[arg-type]
    return gr.update(value=str(path), visible=True)


# -- personas ---------------------------------------------------------------------------------


def persona_names(ctx: AppContext, uid: int | None) -> list[str]:
    return [p.name for p in ctx.personas.list(uid)] if ctx.personas else []


@lookup
def persona_choice_update(ctx: AppContext, request: gr.Request | None) -> Any:
    """Page load: this user's personas."""
    return gr.update(choices=persona_names(ctx, current_user_id(ctx, request)))


@lookup
def show_persona(ctx: AppContext, name: str | None, request: gr.Request | None) -> list[Any]:
    """[name, description, avatar] of persona ``name`` (empty when there is none)."""
    rec = ctx.personas.get(name or "", current_user_id(ctx, request)) if ctx.personas else None
    return [rec.name if rec else "", rec.description if rec else "", _image(rec.avatar if rec else None)]


@action(catch=(ValueError,))  # PersonaRepository.save: ValueError("A persona needs a name.")
def save_persona(ctx: AppContext, name: str, description: str, avatar: Any, request: gr.Request | None) -> list[Any]:
    """Save the persona; [the Characters tab's persona list, the Chat tab's]."""
    uid = saving_user_id(ctx, request)
    if ctx.personas is None:
        raise UserFacingError("Personas are not available.")
    rec = ctx.personas.save(name, description, _png_bytes(avatar), uid)
    gr.Info(f"Saved persona {rec.name}.")
    return [gr.update(choices=persona_names(ctx, uid), value=rec.name),
            gr.update(choices=view.persona_choices(ctx, uid))]


@action
def delete_persona(ctx: AppContext, name: str | None, request: gr.Request | None) -> list[Any]:
    """Delete the persona; both persona lists, and the persona form emptied."""
    uid = current_user_id(ctx, request)
    if not name or ctx.personas is None:
        raise UserFacingError("Choose a persona to delete.")
    ctx.personas.delete(name, uid)
    return [gr.update(choices=persona_names(ctx, uid), value=None), gr.update(choices=view.persona_choices(ctx, uid)),
            "", "", None]


# -- the gallery ------------------------------------------------------------------------------


@lookup
def filter_gallery(ctx: AppContext, query: str) -> str:
    return character_gallery.cards_html(ctx, query)


@action
def gallery_chat(ctx: AppContext, params: Any, evt: gr.EventData, request: gr.Request | None) -> list[Any]:
    """A card's Chat: a new chat with that character, opened in the Chat tab: [chat list, *open_values]."""
    name = str(evt._data.get("name") or "") if isinstance(evt._data, dict) else ""
    if not ctx.characters.has(name):
        raise UserFacingError(f"There is no character named {name!r} any more.")
    return chat_list.new_chat(ctx, params, name, view.NO_PERSONA, "chat", 0, request)


@action
def gallery_edit(ctx: AppContext, evt: gr.EventData) -> list[Any]:
    """A card's Edit: the character in the form: [dropdown, *form]."""
    name = str(evt._data.get("name") or "") if isinstance(evt._data, dict) else ""
    if not ctx.characters.has(name):
        raise UserFacingError(f"There is no character named {name!r} any more.")
    return [gr.update(value=name), *show(ctx, name)]


def _wire_gallery(ctx: AppContext, c: CharacterComponents, chat: ChatComponents, demo: gr.Blocks,
                  form_outputs: list[Any], reloads: list[Any]) -> None:
    g = c.gallery
    if g is None:
        return
    on(g.search.change, bind(filter_gallery, ctx), g.search, g.cards, trigger_mode="always_last")
    on(g.cards.click, bind(gallery_click, ctx, chat.params), None, [chat.chat_list, *open_outputs(chat), c.choice,
                                                                   *form_outputs])
    for event in reloads:
        on(event.then, bind(filter_gallery, ctx), g.search, g.cards)
    on(demo.load, bind(filter_gallery, ctx), g.search, g.cards)


@action
def gallery_click(ctx: AppContext, params: Any, evt: gr.EventData, request: gr.Request | None) -> list[Any]:
    """A card's button: Chat opens a new chat with the character (the form unchanged), Edit shows it
    in the form (the chat unchanged). Returns [chat list, *open_values, dropdown, *form]."""
    act = evt._data.get("action") if isinstance(evt._data, dict) else None
    n_open = len(open_values(ctx, params, None, None))
    n_form = len(TEXT_FIELDS) + 2 + len(lorebook_editor.values(None))
    if act == "chat":
        return [*gallery_chat(ctx, params, evt, request), *[gr.skip()] * (1 + n_form)]
    return [*[gr.skip()] * (1 + n_open), *gallery_edit(ctx, evt)]


def wire(ctx: AppContext, c: CharacterComponents, chat: ChatComponents, demo: gr.Blocks) -> list[Any]:
    """``chat``: the Chat tab, whose character and persona lists follow saves and deletes. Returns
    the events that reload the character files (the Problems list follows them)."""
    form_outputs = [*c.fields, c.avatar, c.lore_info, *c.lorebook.outputs()]
    lists = [c.choice, chat.character]
    on(c.choice.input, bind(show, ctx), c.choice, form_outputs)
    lorebook_editor.wire(ctx, c.lorebook, c.choice, c.lore_info)
    reloads = [
        on(c.save_btn.click, bind(save, ctx), [c.choice, c.avatar, *c.fields], lists),
        on(c.duplicate_btn.click, bind(duplicate, ctx), c.choice, [*lists, *form_outputs]),
        on(c.delete_btn.click, bind(delete, ctx), c.choice, [*lists, *form_outputs], js=CONFIRM_DELETE_JS),
        on(c.upload.upload, bind(upload, ctx), c.upload, [*lists, *form_outputs, c.upload]),
    ]
    on(c.export_btn.click, bind(export, ctx), [c.choice, c.export_kind], c.export_file)
    _wire_gallery(ctx, c, chat, demo, form_outputs, reloads)

    persona_form = [c.persona_name, c.persona_description, c.persona_avatar]
    on(c.persona_choice.input, bind(show_persona, ctx), c.persona_choice, persona_form)
    on(c.persona_save_btn.click, bind(save_persona, ctx), persona_form, [c.persona_choice, chat.persona])
    on(c.persona_delete_btn.click, bind(delete_persona, ctx), c.persona_choice,
       [c.persona_choice, chat.persona, *persona_form])
    on(demo.load, bind(persona_choice_update, ctx), None, c.persona_choice)
    return reloads
