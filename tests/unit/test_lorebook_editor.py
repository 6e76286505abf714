"""The lorebook editor's pure functions: entry <-> form values, validation, book settings, extensions kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.shared_fixtures import SERAPHINA, seraphina_card
from webui.chat.cards import export_card_json, load_character, load_character_bytes, save_character_yaml
from webui.chat.character import Character, Lorebook, LorebookEntry
from webui.chat.lorebook import activate_entries
from webui.ui.lorebook_editor import (
    ENTRY_FIELDS,
    LorebookInputError,
    book_form_values,
    book_from_form,
    entry_choices,
    entry_form_values,
    entry_from_form,
    lore_markdown,
    next_entry_id,
    split_keys,
    with_entry,
    without_entry,
)

FIELD = [name for name, _kind in ENTRY_FIELDS]


def form(entry: LorebookEntry | None = None, **changes: Any) -> list[Any]:
    values = dict(zip(FIELD, entry_form_values(entry)))
    values.update(changes)
    return [values[name] for name in FIELD]


def rich_entry() -> LorebookEntry:
    return LorebookEntry.model_validate({
        "keys": ["zanzibar", "spice island"], "secondary_keys": ["port"], "content": "Old lore.", "name": "Zanzibar",
        "comment": "a note", "enabled": False, "constant": False, "selective": True, "case_sensitive": True,
        "insertion_order": 7, "priority": 3, "position": "after_char", "id": 42, "use_regex": False,
        "extensions": {"position": 4, "depth": 2, "probability": 80, "match_whole_words": True,
                       "nested": {"a": [1, 2]}},
        "st_uid": "unknown-field-kept",
    })


def test_split_keys() -> None:
    assert split_keys(" zanzibar, Spice Island ,,\nport, zanzibar ") == ["zanzibar", "Spice Island", "port"]
    assert split_keys("") == [] and split_keys(None) == []


def test_form_values_round_trip_unchanged() -> None:
    entry = rich_entry()
    values = entry_form_values(entry)
    assert dict(zip(FIELD, values)) == {
        "name": "Zanzibar", "comment": "a note", "keys": "zanzibar, spice island", "secondary_keys": "port",
        "content": "Old lore.", "enabled": False, "constant": False, "selective": True, "case_sensitive": True,
        "use_regex": False, "insertion_order": 7, "priority": 3, "position": "after_char",
    }
    assert entry_from_form(entry, values) == entry  # saving an untouched form changes nothing


def test_edit_keeps_extensions_id_and_unknown_fields() -> None:
    entry = rich_entry()
    edited = entry_from_form(entry, form(entry, content="New lore.", keys="zanzibar, stone town", enabled=True,
                                         insertion_order=12.0, priority=None, position="before_char"))
    assert edited.content == "New lore." and edited.keys == ["zanzibar", "stone town"] and edited.enabled
    assert edited.insertion_order == 12 and isinstance(edited.insertion_order, int)
    assert edited.priority is None and edited.position == "before_char"
    assert edited.extensions == {"position": 4, "depth": 2, "probability": 80, "match_whole_words": True,
                                 "nested": {"a": [1, 2]}}
    assert edited.id == 42 and edited.model_dump()["st_uid"] == "unknown-field-kept"
    assert entry.content == "Old lore." and entry.extensions["nested"] == {"a": [1, 2]}  # the base is not changed
    edited.extensions["nested"]["a"].append(3)
    assert entry.extensions["nested"] == {"a": [1, 2]}  # no shared mutable state


def test_new_entry_defaults_and_id() -> None:
    entry = entry_from_form(None, form(None, keys="zanzibar", content="Lore."), new_id=5)
    assert entry.id == 5 and entry.keys == ["zanzibar"] and entry.enabled and entry.insertion_order == 100
    assert entry.position == "before_char" and entry.case_sensitive is None and entry.priority is None
    assert entry.extensions == {}
    book = Lorebook(entries=[LorebookEntry(id=3), LorebookEntry(id="x"), LorebookEntry(id=None)])
    assert next_entry_id(book) == 4 and next_entry_id(Lorebook()) == 0 and next_entry_id(None) == 0


def test_unchanged_keys_text_keeps_keys_with_commas() -> None:
    entry = LorebookEntry(keys=["a{1,3}b", "plain"], use_regex=True, content="x")
    assert entry_from_form(entry, form(entry, content="y")).keys == ["a{1,3}b", "plain"]
    assert entry_from_form(entry, form(entry, keys="plain, other")).keys == ["plain", "other"]


def test_case_sensitive_none_stays_none_and_true_false_are_kept() -> None:
    unset = LorebookEntry(keys=["k"])
    assert entry_from_form(unset, form(unset)).case_sensitive is None
    assert entry_from_form(unset, form(unset, case_sensitive=True)).case_sensitive is True
    off = LorebookEntry(keys=["k"], case_sensitive=False)
    assert entry_from_form(off, form(off)).case_sensitive is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keys": " , "}, "at least one key"),
        ({"insertion_order": 1.5}, "Insertion order must be a whole number"),
        ({"insertion_order": None}, "Insertion order must be a whole number; it is empty"),
        ({"insertion_order": "ten"}, "Insertion order must be a whole number"),
        ({"priority": 2.25}, "Priority must be a whole number"),
        ({"use_regex": True, "keys": "zan(zibar"}, "not a valid regular expression"),
    ],
)
def test_bad_input_is_refused_with_a_message(changes: dict[str, Any], message: str) -> None:
    entry = rich_entry()
    before = entry.model_dump()
    with pytest.raises(LorebookInputError, match=message):
        entry_from_form(entry, form(entry, **changes))
    assert entry.model_dump() == before


def test_constant_entry_needs_no_keys() -> None:
    entry = entry_from_form(None, form(None, keys="", constant=True, content="Always."), new_id=0)
    assert entry.keys == [] and entry.constant
    assert [e.content for e in activate_entries(Lorebook(entries=[entry]), ["hi"], count_tokens=len)] == ["Always."]


def test_book_settings() -> None:
    base = Lorebook(name="Old", scan_depth=3, extensions={"x": 1}, entries=[LorebookEntry(keys=["k"])])
    assert book_form_values(base) == ["Old", "", 3, None, False]
    book = book_from_form(base, "New", "About", 6.0, None, True)
    assert (book.name, book.description, book.scan_depth, book.token_budget, book.recursive_scanning) == (
        "New", "About", 6, None, True)
    assert book.entries == base.entries and book.extensions == {"x": 1}
    assert book_from_form(base, "New", "", None, "", False).scan_depth is None
    with pytest.raises(LorebookInputError, match="Scan depth must be 0 or more"):
        book_from_form(base, "New", "", -1, None, False)
    with pytest.raises(LorebookInputError, match="Token budget must be a whole number"):
        book_from_form(base, "New", "", None, 10.5, False)
    assert book_from_form(None, "B", "", None, None, False).entries == []


def test_add_replace_delete_and_labels() -> None:
    char = Character(name="C")
    assert lore_markdown(char) == "No lorebook." and entry_choices(char.character_book) == []
    first = entry_from_form(None, form(None, keys="zanzibar, port", content="one"), new_id=0)
    char = with_entry(char, None, first)
    second = entry_from_form(None, form(None, keys="", constant=True, name="Always", enabled=False), new_id=1)
    char = with_entry(char, None, second)
    assert entry_choices(char.character_book) == [("1. zanzibar, port", "0"), ("2. Always · constant · off", "1")]
    assert lore_markdown(char) == "Lorebook: 2 entries (kept on save and export)."
    replaced = with_entry(char, 0, first.model_copy(update={"content": "two"}))
    assert [e.content for e in replaced.character_book.entries] == ["two", ""]
    assert char.character_book.entries[0].content == "one"  # the original is untouched
    left = without_entry(replaced, 0)
    assert [e.name for e in left.character_book.entries] == ["Always"]
    assert len(replaced.character_book.entries) == 2


def test_edited_seraphina_entry_reaches_export_prompt_and_yaml(tmp_path: Path) -> None:
    seraphina_card()
    char = load_character_bytes(SERAPHINA.read_bytes(), "Seraphina.png")
    glade = char.character_book.entries[2]
    st_extensions = dict(glade.extensions)
    assert st_extensions  # SillyTavern's per-entry settings
    edited = entry_from_form(glade, form(glade, content="The glade is warded by QUILL-7781.", keys="glade, zanzibar"))
    char = with_entry(char, 2, edited)
    new = entry_from_form(None, form(None, keys="lighthouse", content="A lighthouse."),
                          new_id=next_entry_id(char.character_book))
    char = with_entry(char, None, new)

    for spec in ("v2", "v3"):
        entries = export_card_json(char, spec)["data"]["character_book"]["entries"]
        assert entries[2]["content"] == "The glade is warded by QUILL-7781."
        assert entries[2]["extensions"] == st_extensions and entries[2]["id"] == 2
        assert entries[4]["keys"] == ["lighthouse"] and entries[4]["id"] == 4
    path = tmp_path / "Seraphina.yaml"
    save_character_yaml(char, path)
    again = load_character(path)
    assert again.character_book == char.character_book
    active = activate_entries(again.character_book, ["Tell me of zanzibar"], count_tokens=len)
    assert [e.content for e in active] == ["The glade is warded by QUILL-7781."]
