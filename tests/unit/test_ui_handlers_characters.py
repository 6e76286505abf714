"""The Characters tab's handlers (characters, personas, the lorebook editor), called directly: what
they save, what they show, and the message a user gets when they refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tests.support.ui_context import ui_context, user
from webui.context import AppContext
from webui.ui import characters_tab as tab
from webui.ui import lorebook_editor as lore
from webui.ui.characters_tab import TEXT_FIELDS

FIELD = [name for name, _label, _lines in TEXT_FIELDS]


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data") as ctx:
        yield ctx


def form(**values: Any) -> list[Any]:
    return [values.get(name, "") for name in FIELD]


def test_save_duplicate_delete(ui_ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    mine, chat_list = tab.save(ui_ctx, None, None,
                               *form(name=" Ada ", description="A mathematician.", tags="math, poetry"))
    assert mine["value"] == "Ada" and "Ada" in mine["choices"] and chat_list["choices"] == mine["choices"]
    assert ui_ctx.characters.get("Ada").tags == ["math", "poetry"] and "Saved Ada" in capsys.readouterr().out
    shown = tab.show(ui_ctx, "Ada")
    assert shown[FIELD.index("description")] == "A mathematician." and shown[FIELD.index("tags")] == "math, poetry"

    first = tab.duplicate(ui_ctx, "Ada")
    second = tab.duplicate(ui_ctx, "Ada")
    assert (first[0]["value"], second[0]["value"]) == ("Ada (copy)", "Ada (copy 2)")
    assert second[2 + FIELD.index("description")] == "A mathematician."  # the copy is shown

    deleted = tab.delete(ui_ctx, "Ada (copy)")
    first_left = deleted[0]["choices"][0]  # the form always shows a character: the first one left
    assert deleted[0]["value"] == first_left and "Ada (copy)" not in deleted[0]["choices"]
    assert deleted[2 + FIELD.index("name")] == first_left


def test_character_errors_reach_the_user(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="needs a name"):
        tab.save(ui_ctx, None, None, *form(description="no name"))
    with pytest.raises(gr.Error, match="Choose a character to duplicate"):
        tab.duplicate(ui_ctx, None)
    with pytest.raises(gr.Error, match="Choose a character to delete"):
        tab.delete(ui_ctx, "")
    with pytest.raises(gr.Error, match="shipped characters are read-only"):
        tab.delete(ui_ctx, "Assistant")
    with pytest.raises(gr.Error, match="Choose a character to export"):
        tab.export(ui_ctx, "Nobody", "V2 PNG")


def test_upload_and_export(ui_ctx: AppContext, tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{ not a card", encoding="utf-8")
    with pytest.raises(gr.Error, match="Could not import broken.json: "):
        tab.upload(ui_ctx, str(bad))
    assert tab.upload(ui_ctx, None)[-1] is None  # the box was cleared: nothing to do

    card = tmp_path / "card.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0",
                                "data": {"name": "Zed", "description": "From a card.", "first_mes": "Hi."}}),
                    encoding="utf-8")
    imported = tab.upload(ui_ctx, str(card))
    assert imported[0]["value"] == "Zed" and imported[-1] is None and ui_ctx.characters.has("Zed")

    exported = Path(tab.export(ui_ctx, "Zed", "V3 JSON")["value"])
    assert exported.name == "Zed.v3.json" and json.loads(exported.read_text(encoding="utf-8"))["data"]["name"] == "Zed"
    assert Path(tab.export(ui_ctx, "Zed", "V2 PNG")["value"]).read_bytes()[:4] == b"\x89PNG"


def test_personas(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="needs a name"):  # the store's ValueError, shown
        tab.save_persona(ui_ctx, "  ", "nobody", None, None)
    with pytest.raises(gr.Error, match="Choose a persona to delete"):
        tab.delete_persona(ui_ctx, None, None)
    with pytest.raises(gr.Error):
        tab.delete_persona(ui_ctx, "Never saved", None)

    mine, chat_personas = tab.save_persona(ui_ctx, "Sam", "A sailor.", None, user("alice"))
    assert mine == gr.update(choices=["Sam"], value="Sam") and "Sam" in chat_personas["choices"]
    assert tab.show_persona(ui_ctx, "Sam", user("alice"))[:2] == ["Sam", "A sailor."]
    assert tab.show_persona(ui_ctx, "Sam", user("bob"))[:2] == ["", ""]  # personas are per account
    assert tab.persona_choice_update(ui_ctx, user("bob"))["choices"] == []
    cleared = tab.delete_persona(ui_ctx, "Sam", user("alice"))
    assert cleared[0]["choices"] == [] and cleared[2:] == ["", "", None]


ENTRY = [name for name, _kind in lore.ENTRY_FIELDS]


def entry_form(**values: Any) -> list[Any]:
    form_values = dict(zip(ENTRY, lore.entry_form_values(None)))
    form_values.update(values)
    return [form_values[name] for name in ENTRY]


def test_lorebook_entries_are_saved_into_the_character(ui_ctx: AppContext) -> None:
    tab.save(ui_ctx, None, None, *form(name="Ada"))
    saved = lore.save_entry(ui_ctx, "Ada", None, None, *entry_form(keys="engine", content="The analytical engine."))
    assert len(saved) == lore.WRITE_OUTPUTS and saved[-1].startswith("Lorebook: 1 entry")
    assert "Saved lorebook entry 1" in saved[lore.ENTRY_INFO_AT]
    book = ui_ctx.characters.get("Ada").character_book
    assert book is not None and book.entries[0].keys == ["engine"]

    opened = lore.open_entry(ui_ctx, "Ada", "0")
    snapshot = opened[-1]
    edited = lore.save_entry(ui_ctx, "Ada", "0", snapshot, *entry_form(keys="engine, Babbage", content="Edited."))
    assert ui_ctx.characters.get("Ada").character_book.entries[0].content == "Edited."  # type: ignore[union-attr]
    assert lore.new_entry(ui_ctx, "Ada")[0]["value"] is None

    with pytest.warns(UserWarning, match="changed since the entry was opened"):  # an outdated form is refused
        stale = lore.save_entry(ui_ctx, "Ada", "0", snapshot, *entry_form(keys="x"))
    assert "Not saved" in stale[lore.ENTRY_INFO_AT] and stale[0] == gr.update()

    deleted = lore.delete_entry(ui_ctx, "Ada", "0", edited[-2])
    assert deleted[-1] == "No lorebook." and ui_ctx.characters.get("Ada").character_book.entries == []  # type: ignore[union-attr]


def test_lorebook_refusals(ui_ctx: AppContext) -> None:
    with pytest.warns(UserWarning, match="Choose a saved character first"):
        refused = lore.save_entry(ui_ctx, None, None, None, *entry_form(keys="a"))
    assert "Not saved" in refused[lore.ENTRY_INFO_AT]
    tab.save(ui_ctx, None, None, *form(name="Ada"))
    with pytest.warns(UserWarning, match="at least one key"):
        lore.save_entry(ui_ctx, "Ada", None, None, *entry_form(keys=""))
    with pytest.warns(UserWarning, match="Pick an entry to delete"):
        lore.delete_entry(ui_ctx, "Ada", None, None)
    with pytest.warns(UserWarning, match="Scan depth must be a whole number"):
        assert lore.save_book(ui_ctx, "Ada", "Book", "", 2.5, None, False) == gr.update()
    assert lore.save_book(ui_ctx, "Ada", "Book", "About Ada", 3, None, True).startswith("No lorebook")
    book = ui_ctx.characters.get("Ada").character_book
    assert book is not None and (book.name, book.scan_depth, book.recursive_scanning) == ("Book", 3, True)
