"""The Characters tab: list, create / edit / duplicate / delete, upload any card, export V2/V3; its lorebook
(``lorebook_editor``); personas."""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from webui.chat.cards import export_card_json, export_card_png, load_character_bytes
from webui.chat.character import Character
from webui.context import AppContext
from webui.errors import UserFacingError
from webui.storage.repository import NotFound
from webui.ui import chat_view as view
from webui.ui import lorebook_editor
from webui.ui.chat_tab import ChatComponents
from webui.ui.events import ACTION, LOOKUP
from webui.ui.lorebook_editor import lore_markdown
from webui.ui.session import current_user_id

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


def build(ctx: AppContext) -> CharacterComponents:
    with gr.Row():
        choice = gr.Dropdown(choices=ctx.characters.names(), value=None, label="Character", elem_id="character-choice", scale=3)
        upload = gr.File(label="Import a card (.png, .json, .yaml)", file_types=[".png", ".json", ".yaml", ".yml"],
                         type="filepath", elem_id="character-upload", scale=2)
    with gr.Row():
        with gr.Column(scale=3):
            fields = [gr.Textbox(label=label, lines=lines, elem_id=f"char-{name.replace('_', '-')}") for name, label, lines in TEXT_FIELDS]
            lorebook = lorebook_editor.build()
        with gr.Column(scale=1):
            avatar = gr.Image(label="Avatar", type="pil", image_mode="RGBA", elem_id="char-avatar", height=240)
            lore_info = gr.Markdown(elem_id="char-lore")
            save_btn = gr.Button("Save", variant="primary", elem_id="save-character")
            duplicate_btn = gr.Button("Duplicate", elem_id="duplicate-character")
            delete_btn = gr.Button("Delete", variant="stop", elem_id="delete-character")
            export_kind = gr.Radio(["V2 PNG", "V3 PNG", "V2 JSON", "V3 JSON"], value="V2 PNG", label="Export as", elem_id="export-kind")
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
    return CharacterComponents(choice, fields, avatar, lore_info, save_btn, duplicate_btn, delete_btn, upload, export_kind,
                               export_btn, export_file, persona_choice, persona_name, persona_description, persona_avatar,
                               persona_save_btn, persona_delete_btn, lorebook)


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


def wire(ctx: AppContext, c: CharacterComponents, chat: ChatComponents, demo: gr.Blocks) -> None:
    def refresh_choices(selected: str | None) -> list[Any]:
        names = ctx.characters.names()
        return [gr.update(choices=names, value=selected), gr.update(choices=names)]

    def show(name: str | None) -> list[Any]:
        char = ctx.characters.get(name) if name and ctx.characters.has(name) else None
        return [*form_values(char), _image(char.avatar_png if char else None), lore_markdown(char),
                *lorebook_editor.values(char)]

    form_outputs = [*c.fields, c.avatar, c.lore_info, *c.lorebook.outputs()]
    c.choice.input(show, c.choice, form_outputs, **LOOKUP)
    lorebook_editor.wire(ctx, c.lorebook, c.choice, c.lore_info)

    def save(selected: str | None, avatar: Any, *values: Any) -> list[Any]:
        base = ctx.characters.get(selected) if selected and ctx.characters.has(selected) else None
        try:
            char = ctx.characters.save(character_from_form(base, list(values), _png_bytes(avatar)), replacing=selected)
        except UserFacingError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"Saved {char.name} to {ctx.characters.user_dir}.")
        return refresh_choices(char.name)

    c.save_btn.click(save, [c.choice, c.avatar, *c.fields], [c.choice, chat.character], **ACTION)

    def duplicate(selected: str | None) -> list[Any]:
        if not selected or not ctx.characters.has(selected):
            raise gr.Error("Choose a character to duplicate.")
        base = ctx.characters.get(selected)
        name = f"{base.name} (copy)"
        n = 2
        while ctx.characters.has(name):
            name, n = f"{base.name} (copy {n})", n + 1
        char = ctx.characters.save(base.model_copy(update={"name": name}))
        return [*refresh_choices(char.name), *show(char.name)]

    c.duplicate_btn.click(duplicate, c.choice, [c.choice, chat.character, *form_outputs], **ACTION)

    def delete(selected: str | None) -> list[Any]:
        if not selected:
            raise gr.Error("Choose a character to delete.")
        try:
            ctx.characters.delete(selected)
        except UserFacingError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"Deleted {selected}.")
        return [*refresh_choices(None), *show(None)]

    c.delete_btn.click(
        delete, c.choice, [c.choice, chat.character, *form_outputs],
        js="(n) => { if (!confirm('Delete character ' + n + '?')) throw new Error('cancelled'); return n; }", **ACTION,
    )

    def upload(path: str | None) -> list[Any]:
        if not path:
            return [gr.update(), gr.update(), *([gr.update()] * len(form_outputs)), None]
        name = Path(path).name
        try:
            char = load_character_bytes(Path(path).read_bytes(), name)
            char = ctx.characters.save(char)
        except UserFacingError as exc:
            raise gr.Error(f"Could not import {name}: {exc}") from exc
        gr.Info(f"Imported {char.name}.")
        return [*refresh_choices(char.name), *show(char.name), None]

    c.upload.upload(upload, c.upload, [c.choice, chat.character, *form_outputs, c.upload], **ACTION)

    def export(selected: str | None, kind: str) -> Any:
        if not selected or not ctx.characters.has(selected):
            raise gr.Error("Choose a character to export.")
        char = ctx.characters.get(selected)
        spec = "v3" if kind.startswith("V3") else "v2"
        folder = Path(tempfile.mkdtemp(prefix="webui-card-"))
        slug = re.sub(r"[^\w-]+", "_", char.name).strip("_") or "character"
        if kind.endswith("PNG"):
            path = folder / f"{slug}.{spec}.png"
            path.write_bytes(export_card_png(char, spec))  # type: ignore[arg-type]
        else:
            import json

            path = folder / f"{slug}.{spec}.json"
            path.write_text(json.dumps(export_card_json(char, spec), ensure_ascii=False, indent=2), encoding="utf-8")  # type: ignore[arg-type]
        return gr.update(value=str(path), visible=True)

    c.export_btn.click(export, [c.choice, c.export_kind], c.export_file, **ACTION)

    # -- personas ----------------------------------------------------------------------
    def persona_names(uid: int | None) -> list[str]:
        return [p.name for p in ctx.personas.list(uid)] if ctx.personas else []

    def show_persona(name: str | None, request: gr.Request) -> list[Any]:
        rec = ctx.personas.get(name or "", current_user_id(ctx, request)) if ctx.personas else None
        return [rec.name if rec else "", rec.description if rec else "", _image(rec.avatar if rec else None)]

    c.persona_choice.input(show_persona, c.persona_choice, [c.persona_name, c.persona_description, c.persona_avatar], **LOOKUP)

    def save_persona(name: str, description: str, avatar: Any, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        if ctx.personas is None:
            raise gr.Error("Personas are not available.")
        try:
            rec = ctx.personas.save(name, description, _png_bytes(avatar), uid)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"Saved persona {rec.name}.")
        return [gr.update(choices=persona_names(uid), value=rec.name), gr.update(choices=view.persona_choices(ctx, uid))]

    c.persona_save_btn.click(save_persona, [c.persona_name, c.persona_description, c.persona_avatar],
                             [c.persona_choice, chat.persona], **ACTION)

    def delete_persona(name: str | None, request: gr.Request) -> list[Any]:
        uid = current_user_id(ctx, request)
        if not name or ctx.personas is None:
            raise gr.Error("Choose a persona to delete.")
        try:
            ctx.personas.delete(name, uid)
        except NotFound as exc:
            raise gr.Error(str(exc)) from exc
        return [gr.update(choices=persona_names(uid), value=None), gr.update(choices=view.persona_choices(ctx, uid)), "", "", None]

    c.persona_delete_btn.click(delete_persona, c.persona_choice,
                               [c.persona_choice, chat.persona, c.persona_name, c.persona_description, c.persona_avatar],
                               **ACTION)

    def on_load(request: gr.Request) -> Any:
        return gr.update(choices=persona_names(current_user_id(ctx, request)))

    demo.load(on_load, None, c.persona_choice, **LOOKUP)

