"""Lorebook activation: keys, scan depth, selective/constant, case, budget, order, position."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.shared_fixtures import SERAPHINA, seraphina_card
from webui.chat.cards import load_character
from webui.chat.character import Lorebook, LorebookEntry
from webui.chat.lorebook import activate_entries, group_by_position

FILLER = "Hello there."  # mentions no key of any book below


def words(text: str) -> int:
    return len(text.split())


def names(entries: list[LorebookEntry]) -> list[str]:
    return [e.name for e in entries]


def entry(name: str, keys: list[str], **fields: Any) -> LorebookEntry:
    fields.setdefault("content", f"{name} lore")
    return LorebookEntry(name=name, keys=keys, **fields)


def active(book: Lorebook, history: list[str], **kwargs: Any) -> list[str]:
    return names(activate_entries(book, history, count_tokens=words, **kwargs))


# ------------------------------------------------------------------------------------ Seraphina


@pytest.fixture
def seraphina_book() -> Lorebook:
    seraphina_card()
    book = load_character(SERAPHINA).character_book
    assert book is not None and book.scan_depth is None  # so the default depth (4) applies
    return book


def seraphina_ids(book: Lorebook, history: list[str], **kwargs: Any) -> list[int | str | None]:
    return [e.id for e in activate_entries(book, history, count_tokens=words, **kwargs)]


def test_seraphina_entries_activate_on_their_keys(seraphina_book: Lorebook) -> None:
    assert seraphina_ids(seraphina_book, [FILLER, "Who are the Shadowfangs?"]) == [1]
    assert seraphina_ids(seraphina_book, ["Is this glade a refuge?", FILLER]) == [2]
    assert seraphina_ids(seraphina_book, ["Tell me about ELDORIA.", "What is your power?"]) == [0, 3]
    assert seraphina_ids(seraphina_book, [FILLER, FILLER]) == []
    assert seraphina_ids(seraphina_book, []) == []


def test_seraphina_scan_depth(seraphina_book: Lorebook) -> None:
    inside = ["Tell me of the glade.", FILLER, FILLER, FILLER]  # 4th message from the end
    outside = ["Tell me of the glade.", FILLER, FILLER, FILLER, FILLER]  # 5th from the end
    assert seraphina_ids(seraphina_book, inside) == [2]
    assert seraphina_ids(seraphina_book, outside) == []
    assert seraphina_ids(seraphina_book, outside, scan_depth_default=5) == [2]


def test_seraphina_budget_cuts_entries(seraphina_book: Lorebook) -> None:
    history = ["The beasts came from the forest, and your magic saved me in this glade."]
    assert seraphina_ids(seraphina_book, history) == [0, 1, 2, 3]
    sizes = {e.id: words(e.content) for e in seraphina_book.entries}
    budget = sizes[0] + sizes[1]  # room for the first two only (equal priority: book order)
    assert seraphina_ids(seraphina_book, history, token_budget_default=budget) == [0, 1]


# -------------------------------------------------------------------------------- key matching


def test_disabled_constant_and_plain_entries() -> None:
    book = Lorebook(
        entries=[
            entry("off", ["dragon"], enabled=False),
            entry("always", [], constant=True),
            entry("always-off", [], constant=True, enabled=False),
            entry("dragon", ["dragon"]),
        ]
    )
    assert active(book, []) == ["always"]
    assert active(book, ["A dragon!"]) == ["always", "dragon"]


def test_selective_needs_a_secondary_key() -> None:
    book = Lorebook(
        entries=[
            entry("sel", ["dragon"], selective=True, secondary_keys=["fire", "smoke"]),
            entry("sel-no-secondary", ["dragon"], selective=True),
            entry("not-sel", ["dragon"], secondary_keys=["never-mentioned"]),
        ]
    )
    assert active(book, ["A dragon!"]) == ["sel-no-secondary", "not-sel"]
    assert active(book, ["A dragon!", "I smell smoke"]) == ["sel", "sel-no-secondary", "not-sel"]
    assert active(book, ["Only smoke here"]) == []


def test_case_sensitivity() -> None:
    book = Lorebook(entries=[entry("cs", ["Dragon"], case_sensitive=True), entry("ci", ["Dragon"])])
    assert active(book, ["a dragon"]) == ["ci"]
    assert active(book, ["a Dragon"]) == ["cs", "ci"]
    assert active(book, ["a DRAGON"]) == ["ci"]


def test_substring_by_default_whole_words_on_request() -> None:
    book = Lorebook(entries=[entry("cat", ["cat"]), entry("cat-ww", ["cat"], extensions={"match_whole_words": True})])
    assert active(book, ["concatenate"]) == ["cat"]
    assert active(book, ["a cat."]) == ["cat", "cat-ww"]
    assert active(book, ["concatenate"], whole_words=True) == []
    overridden = Lorebook(entries=[entry("sub", ["cat"], extensions={"match_whole_words": False})])
    assert active(overridden, ["concatenate"], whole_words=True) == ["sub"]


def test_regex_keys_and_empty_keys() -> None:
    book = Lorebook(
        entries=[
            entry("re", [r"dragons?\b\s+\d+"], use_regex=True),
            entry("bad-re", ["(unclosed"], use_regex=True),
            entry("empty", ["", "  "]),
            entry("literal", [r"dragons?"]),  # not a regex: matches only that literal text
        ]
    )
    assert active(book, ["There were DRAGONS 3"]) == ["re"]
    assert active(book, ["(unclosed and dragons? yes"]) == ["literal"]


# ----------------------------------------------------------------------------------- scan depth


def test_book_scan_depth_overrides_default_and_zero_scans_nothing() -> None:
    history = ["dragon", FILLER, FILLER]
    book = Lorebook(scan_depth=3, entries=[entry("d", ["dragon"]), entry("c", [], constant=True)])
    assert active(book, history, scan_depth_default=1) == ["d", "c"]
    shallow = book.model_copy(update={"scan_depth": 2})
    assert active(shallow, history, scan_depth_default=10) == ["c"]
    zero = book.model_copy(update={"scan_depth": 0})
    assert active(zero, ["dragon"]) == ["c"]


def test_entry_scan_depth_extension() -> None:
    book = Lorebook(entries=[entry("deep", ["dragon"], extensions={"scan_depth": 5}), entry("d", ["dragon"])])
    assert active(book, ["dragon", FILLER, FILLER], scan_depth_default=1) == ["deep"]


def test_recursive_scanning() -> None:
    entries = [entry("a", ["dragon"], content="The dragon guards the crown."), entry("b", ["crown"])]
    assert active(Lorebook(entries=entries), ["a dragon"]) == ["a"]
    assert active(Lorebook(entries=entries, recursive_scanning=True), ["a dragon"]) == ["a", "b"]


# ---------------------------------------------------------------------------- order and budget


def test_result_sorted_by_insertion_order() -> None:
    book = Lorebook(
        entries=[
            entry("late", ["x"], insertion_order=300),
            entry("early", ["x"], insertion_order=-5),
            entry("mid-1", ["x"], insertion_order=100),
            entry("mid-2", ["x"], insertion_order=100),
        ]
    )
    assert active(book, ["x"]) == ["early", "mid-1", "mid-2", "late"]


def test_budget_keeps_constants_then_highest_priority() -> None:
    book = Lorebook(
        entries=[
            entry("low", ["x"], priority=1, content="one two three", insertion_order=1),
            entry("high", ["x"], priority=9, content="one two three", insertion_order=2),
            entry("const", [], constant=True, priority=0, content="one two three", insertion_order=3),
        ]
    )
    assert active(book, ["x"], token_budget_default=9) == ["low", "high", "const"]
    assert active(book, ["x"], token_budget_default=8) == ["high", "const"]
    assert active(book, ["x"], token_budget_default=3) == ["const"]
    assert active(book, ["x"], token_budget_default=2) == []


def test_budget_without_priority_ranks_by_insertion_order_and_stops_at_first_misfit() -> None:
    book = Lorebook(
        entries=[
            entry("small-early", ["x"], insertion_order=1, content="a"),
            entry("big-late", ["x"], insertion_order=50, content="a b c d e"),
        ]
    )
    # big-late ranks higher (larger insertion order); it does not fit, so nothing after it is tried.
    assert active(book, ["x"], token_budget_default=4) == []
    assert active(book, ["x"], token_budget_default=5) == ["big-late"]


def test_book_token_budget_overrides_default_and_zero_means_unset() -> None:
    book = Lorebook(token_budget=2, entries=[entry("e", ["x"], content="a b c")])
    assert active(book, ["x"], token_budget_default=100) == []
    assert active(book.model_copy(update={"token_budget": 0}), ["x"], token_budget_default=3) == ["e"]


def test_group_by_position() -> None:
    entries = [
        entry("b1", ["x"]),
        entry("a1", ["x"], position="after_char"),
        entry("odd", ["x"], position="somewhere"),
        entry("a2", ["x"], position="after_char"),
    ]
    groups = group_by_position(entries)
    assert names(groups["before_char"]) == ["b1", "odd"]
    assert names(groups["after_char"]) == ["a1", "a2"]
    assert group_by_position([]) == {"before_char": [], "after_char": []}
