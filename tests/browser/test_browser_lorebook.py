"""Browser test (real app, real Chromium): edit a character's lorebook entries in the Characters tab and
see the prompt builder use them (through ``POST /v1/internal/chat-prompt``, the same code as a turn)."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.support.browser_utils import open_app_page, wait_for
from tests.support.server_utils import served_app
from tests.support.shared_fixtures import seraphina_card

pytestmark = pytest.mark.browser

T = 60_000  # ms; generous for a loaded 2-core machine
ADDED = "Zanzibar is the spice port where the QUILLFEATHER-7781 archive is kept."
EDITED = "Zanzibar's archive moved to the lighthouse of MARIGOLD-4410."
GLADE = "The glade is warded by the OAKEN-3302 circle of stones."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    yield from served_app(tmp_path_factory, "browser-lorebook")


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = open_app_page(browser, app.url, T / 1000)  # page.answers: what to answer the next confirm() dialogs
    yield pg
    pg.close()


def box(elem_id: str) -> str:
    return f"#{elem_id} textarea, #{elem_id} input"


def prompt(app, text: str) -> str:  # type: ignore[no-untyped-def]
    body = {"messages": [{"role": "user", "content": text}], "character": "Seraphina"}
    response = httpx.post(f"{app.url}/v1/internal/chat-prompt", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["prompt"]


def wait_prompt(app, text: str, shows: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the prompt for ``text`` holds ``shows``. A save writes the file before the server's
    character library is reloaded, so the file on disk is not the moment the prompt changes."""
    wait_for(lambda: shows in prompt(app, text), timeout=T / 1000, what=f"{shows!r} in the prompt")


def stored_entries(app) -> list[dict]:  # type: ignore[no-untyped-def]
    card = yaml.safe_load((app.data_dir / "characters" / "Seraphina.yaml").read_text(encoding="utf-8"))
    return card["data"]["character_book"]["entries"]


def wait_lore(page, count: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("n => document.querySelector('#char-lore').innerText.includes(n + ' entries')",
                           arg=count, timeout=T)


def wait_refused(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """A Save that changed nothing: the warning toast, and the reason kept under the form."""
    page.get_by_text(text).first.wait_for(state="visible", timeout=T)
    wait_info(page, f"Not saved: {text}")


def wait_info(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the line under the entry form holds ``text``: the outcome of a Save or Delete, shown
    there with the event's own outputs (a toast arrives before them, so it is no sign they landed)."""
    page.wait_for_function("t => document.querySelector('#lore-entry-info').innerText.includes(t)", arg=text, timeout=T)


def pick_entry(page, label: str) -> None:  # type: ignore[no-untyped-def]
    page.click("#lore-entry input")
    page.get_by_role("option", name=label).first.click()


def edit_content(page, app, label: str, index: int, *, shown: str, new: str, ask: str) -> None:  # type: ignore[no-untyped-def]
    """Open entry ``label`` (its content shows ``shown``), replace its content with ``new``, save,
    and wait until entry ``index`` on disk holds it and the prompt for ``ask`` shows it."""
    pick_entry(page, label)
    page.wait_for_function(f"() => document.querySelector('{box('lore-content')}').value.includes('{shown}')",
                           timeout=T)
    page.fill(box("lore-content"), new)
    assert "Saved lorebook entry" not in page.inner_text("#lore-entry-info")  # opening an entry clears it
    page.click("#lore-save-entry")
    wait_info(page, f"Saved lorebook entry {index + 1} ")
    assert stored_entries(app)[index]["content"] == new
    wait_prompt(app, ask, new)


def test_lorebook_entries_add_edit_delete_reach_the_prompt(app, page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Characters").click()
    page.set_input_files("#character-upload input[type=file]", str(seraphina_card()))
    page.wait_for_function(f"() => document.querySelector('{box('char-name')}').value === 'Seraphina'", timeout=T)
    wait_lore(page, 4)
    original = stored_entries(app)
    page.locator("#char-lorebook").get_by_text("Lorebook", exact=True).first.click()
    page.wait_for_selector("#lore-keys", state="visible", timeout=T)
    assert page.input_value(box("lore-keys")) == "eldoria, wood, forest, magical forest"  # the first entry is open
    assert "QUILLFEATHER" not in prompt(app, "Have you been to Zanzibar?")

    # bad input: a warning, and nothing is lost (form kept, character unchanged)
    page.click("#lore-new-entry")
    page.wait_for_function(f"() => document.querySelector('{box('lore-keys')}').value === ''", timeout=T)
    page.fill(box("lore-content"), ADDED)
    page.click("#lore-save-entry")
    wait_refused(page, "An entry needs at least one key")
    page.fill(box("lore-keys"), "zanzibar, spice port")
    page.fill("#lore-order input", "1.5")
    page.click("#lore-save-entry")
    wait_refused(page, "Insertion order must be a whole number, not 1.5")
    assert (
        page.input_value(box("lore-content")) == ADDED and page.input_value(box("lore-keys")) == "zanzibar, spice port"
    )
    assert len(stored_entries(app)) == 4

    # add the entry; then the character's own Save keeps it
    page.fill("#lore-order input", "100")
    page.click("#lore-save-entry")
    wait_lore(page, 5)
    page.wait_for_function("() => /Entry 5 of 5/.test(document.querySelector('#lore-entry-info').innerText)", timeout=T)
    yaml_file = app.data_dir / "characters" / "Seraphina.yaml"
    before = yaml_file.stat().st_mtime_ns
    page.click("#save-character")
    wait_for(lambda: yaml_file.stat().st_mtime_ns != before, timeout=T / 1000, what="the character's Save")
    page.get_by_text("Saved Seraphina to").first.wait_for(state="visible", timeout=T)
    added = stored_entries(app)[4]
    assert added["keys"] == ["zanzibar", "spice port"] and added["content"] == ADDED and added["id"] == 4
    assert ADDED in prompt(app, "Have you been to Zanzibar?")
    assert ADDED not in prompt(app, "Where is the glade?")

    # edit it: open it from the list, change the content
    pick_entry(page, "3. glade, safe haven, refuge")
    page.wait_for_function(f"() => document.querySelector('{box('lore-keys')}').value === 'glade, safe haven, refuge'",
                           timeout=T)
    edit_content(page, app, "5. zanzibar, spice port", 4, shown="QUILLFEATHER", new=EDITED,
                 ask="Have you been to Zanzibar?")
    text = prompt(app, "Have you been to Zanzibar?")
    assert EDITED in text and ADDED not in text

    # edit one of the card's own entries: SillyTavern's per-entry extensions stay as they were
    edit_content(
        page, app, "3. glade, safe haven, refuge", 2, shown="forest glade", new=GLADE, ask="Where is the glade?"
    )
    glade = stored_entries(app)[2]
    assert glade["extensions"] == original[2]["extensions"] and glade["id"] == original[2]["id"]
    assert glade["keys"] == original[2]["keys"]
    assert GLADE in prompt(app, "Where is the glade?")

    # delete the added entry: cancelling the confirm keeps it, OK removes it
    pick_entry(page, "5. zanzibar, spice port")
    page.wait_for_function(f"() => document.querySelector('{box('lore-content')}').value.includes('MARIGOLD')",
                           timeout=T)
    page.answers.append(False)  # type: ignore[attr-defined]
    page.click("#lore-delete-entry")
    wait_for(lambda: len(page.dialogs) == 1, timeout=T / 1000, what="the confirm dialog")  # type: ignore[attr-defined]
    page.wait_for_timeout(500)
    assert len(stored_entries(app)) == 5 and EDITED in prompt(app, "Have you been to Zanzibar?")
    page.answers.append(True)  # type: ignore[attr-defined]
    page.click("#lore-delete-entry")
    wait_lore(page, 4)
    assert len(page.dialogs) == 2 and "Delete this lorebook entry?" in page.dialogs[-1]  # type: ignore[attr-defined]
    entries = stored_entries(app)
    assert [e["id"] for e in entries] == [0, 1, 2, 3]
    text = prompt(app, "Have you been to Zanzibar?")
    assert "MARIGOLD" not in text and "QUILLFEATHER" not in text
    assert GLADE in prompt(app, "Where is the glade?")  # the other edit is still there
