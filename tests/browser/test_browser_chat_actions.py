"""Browser tests (real app, real model, real Chromium) of chat actions: opening a chat restores its
generation parameters, Continue, Impersonate, full-text search, export and import (ours and Oobabooga)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.browser_utils import (
    BOT,
    LIVE,
    bot_texts,
    new_chat,
    reply_finished,
    send_message,
    user_texts,
    wait_for,
    wait_until_stable,
)
from tests.support.chat_ui import open_import_export, tool
from tests.support.chat_ui import versions as shown_versions
from tests.support.server_utils import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = 60  # seconds; generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    yield from served_app(tmp_path_factory, "browser-actions")


def loaded(page) -> None:  # type: ignore[no-untyped-def]
    """Wait for the page-load event (it opens the most recent chat), then mount the Parameters tab once
    (Gradio renders a tab's controls on its first visit; afterwards they stay in the page, hidden)."""
    page.wait_for_selector("#chat-input textarea")
    wait_for(lambda: "SmolLM2" in page.inner_text("#model-info"), timeout=T, what="the page-load event")
    page.get_by_role("tab", name="Parameters").click()
    page.wait_for_selector("#param-temperature input[type=number]")
    page.get_by_role("tab", name="Chat").click()


@pytest.fixture
def page(app, browser):  # type: ignore[no-untyped-def]
    pg = browser.new_page()
    pg.goto(app.url)
    loaded(pg)
    yield pg
    pg.close()


def set_params(page, **values: float) -> None:  # type: ignore[no-untyped-def]
    """Type values into the Parameters tab's number boxes (Enter commits each), then go back to the chat."""
    page.get_by_role("tab", name="Parameters").click()
    for name, value in values.items():
        box = page.locator(f"#param-{name} input[type=number]")
        box.fill(str(value))
        box.press("Enter")
    wait_for(lambda: params_shown(page, *values) == {k: float(v) for k, v in values.items()}, what="parameters set")
    page.get_by_role("tab", name="Chat").click()


def params_shown(page, *names: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The Parameters tab's values as shown (readable while the tab is hidden)."""
    values = page.evaluate(
        "names => names.map(n => document.querySelector(`#param-${n} input[type=number]`).value)", list(names)
    )
    return {n: float(v) for n, v in zip(names, values)}


def open_chat_id(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.eval_on_selector("#chat-list input:checked", "e => e.value"))


def open_from_sidebar(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("#chat-list").get_by_label(title, exact=True).first.check()  # the newest of that title
    wait_for(lambda: page.input_value("#rename-box textarea") == title, timeout=T, what=f"chat {title!r} opened")


def stored_bot_texts(page) -> list[str] | None:  # type: ignore[no-untyped-def]
    """The bot's messages in the chat once no reply streams (None while the live bubble shows one).

    One script run reads both, so a bubble appearing between two reads cannot pass for a finished
    reply (``reply_finished`` then ``bot_texts`` could see "finished" just before the bubble shows).
    """
    return page.evaluate(
        """([bot, live]) => {
            const bubble = document.querySelector(live);
            if (bubble && bubble.offsetParent !== null) return null;
            return [...document.querySelectorAll(bot)].map(e => e.innerText);
        }""",
        [BOT, LIVE],
    )


def chat_turn(page, text: str) -> str:  # type: ignore[no-untyped-def]
    """Send ``text`` and wait for the finished reply (shown from the database); returns it as shown."""
    n = len(bot_texts(page))
    send_message(page, text)
    wait_for(lambda: user_texts(page)[-1:] == [text], timeout=T, what="the user's message")
    def finished() -> list[str] | None:  # the stored reply is in the chat and its text is rendered
        texts = stored_bot_texts(page)
        return texts if texts is not None and len(texts) == n + 1 and texts[-1].strip() else None

    wait_for(lambda: finished() is not None, timeout=T, what="the reply")
    return (finished() or [""])[-1]


def stored_messages(data_dir: Path, conv_id: int) -> list[tuple[str, str, int]]:
    """(role, active text, number of versions) of each message of a chat, from the database."""
    db = sqlite3.connect(data_dir / "webui.db")
    try:
        return db.execute(
            "select m.role, v.content, (select count(*) from message_versions w where w.message_id = m.id) "
            "from messages m join message_versions v on v.message_id = m.id and v.idx = m.active_version "
            "where m.conversation_id = ? order by m.position", (conv_id,),
        ).fetchall()
    finally:
        db.close()


# -- A: opening a chat restores the parameters stored with it ---------------------------------


def test_opening_a_chat_restores_its_parameters(app, page) -> None:
    new_chat(page)
    set_params(page, temperature=0.33, max_new_tokens=17)
    chat_turn(page, "Chat A: name three colours.")
    chat_a = open_chat_id(page)

    new_chat(page)  # a new chat starts from the current values
    assert params_shown(page, "temperature", "max_new_tokens") == {"temperature": 0.33, "max_new_tokens": 17}
    set_params(page, temperature=1.25, max_new_tokens=9)
    chat_turn(page, "Chat B: name three animals.")

    # a reload reopens the most recent chat (B, written to last) with its parameters
    page.reload()
    loaded(page)
    wait_for(lambda: page.input_value("#rename-box textarea") == "Chat B: name three animals.", what="B reopened")
    wait_for(lambda: params_shown(page, "temperature", "max_new_tokens") == {"temperature": 1.25, "max_new_tokens": 9},
             what="chat B's parameters after a reload")

    open_from_sidebar(page, "Chat A: name three colours.")
    assert open_chat_id(page) == chat_a
    wait_for(lambda: params_shown(page, "temperature", "max_new_tokens") == {"temperature": 0.33, "max_new_tokens": 17},
             what="chat A's parameters restored")
    page.get_by_role("tab", name="Parameters").click()  # what a person sees there
    assert page.input_value("#param-temperature input[type=number]") == "0.33"
    assert page.input_value("#param-max_new_tokens input[type=number]") == "17"
    page.get_by_role("tab", name="Chat").click()

    open_from_sidebar(page, "Chat B: name three animals.")
    wait_for(lambda: params_shown(page, "temperature", "max_new_tokens") == {"temperature": 1.25, "max_new_tokens": 9},
             what="chat B's parameters restored")

    # a chat without stored parameters (never answered) leaves the controls as they are
    new_chat(page)
    assert params_shown(page, "temperature", "max_new_tokens") == {"temperature": 1.25, "max_new_tokens": 9}
    open_from_sidebar(page, "Chat A: name three colours.")
    wait_for(lambda: params_shown(page, "temperature") == {"temperature": 0.33}, what="chat A again")
    open_from_sidebar(page, "New chat")
    assert params_shown(page, "temperature", "max_new_tokens") == {"temperature": 0.33, "max_new_tokens": 17}


# -- B: chat actions ---------------------------------------------------------------------------


def test_continue_extends_the_same_reply(app, page) -> None:
    new_chat(page)
    set_params(page, temperature=0, max_new_tokens=8)  # greedy; the reply is cut by length
    first = chat_turn(page, "Write a long story about a brave knight and a dragon.")
    conv = open_chat_id(page)
    stored_first = stored_messages(app.data_dir, conv)
    assert [m[0] for m in stored_first] == ["assistant", "user", "assistant"]

    tool(page, 2, "continue").click()  # the button on the last reply
    wait_for(lambda: (stored_bot_texts(page) or [])[1:] not in ([], [first]), timeout=T, what="the continued reply")
    assert reply_finished(page) and len(bot_texts(page)) == 2
    wait_for(lambda: shown_versions(page) == ["1/1/a", "1/1/u", "1/1/a"], what="still one version of each message")
    wait_for(lambda: len(bot_texts(page)[-1]) > len(first), what="the continued reply drawn")
    extended = bot_texts(page)[-1]
    assert len(extended) > len(first) and extended.startswith(first.rstrip()), (first, extended)

    stored = stored_messages(app.data_dir, conv)
    assert len(stored) == 3  # no new message ...
    role, text, versions = stored[-1]
    assert role == "assistant" and versions == 1  # ... and no new version: the same reply, longer
    assert text.startswith(stored_first[-1][1]) and len(text) > len(stored_first[-1][1])


def test_impersonate_writes_the_users_next_message_into_the_box(app, page) -> None:
    new_chat(page)
    set_params(page, temperature=0, max_new_tokens=16)
    chat_turn(page, "Hi! Ask me about my favourite food.")
    conv = open_chat_id(page)
    before = stored_messages(app.data_dir, conv)
    bots, users = bot_texts(page), user_texts(page)
    assert page.input_value("#chat-input textarea") == ""

    page.click("#impersonate")
    wait_for(lambda: page.input_value("#chat-input textarea").strip() != "", timeout=T, what="text in the input box")
    written = wait_until_stable(lambda: page.input_value("#chat-input textarea"))
    assert written.strip()
    assert (bot_texts(page), user_texts(page)) == (bots, users)  # nothing was added to the chat
    assert stored_messages(app.data_dir, conv) == before


def test_search_lists_only_the_chat_with_the_word(app, page) -> None:
    set_params(page, max_new_tokens=1)  # the replies do not matter here
    new_chat(page)
    chat_turn(page, "My pet zebraquokka likes apples.")
    new_chat(page)
    chat_turn(page, "The pineapplemoose sings at night.")

    page.fill("#chat-search textarea", "ZEBRAQUOKKA")  # case-insensitive
    results = page.locator("#search-results")
    wait_for(lambda: results.is_visible() and "Found in 1 chat(s)" in results.inner_text(), timeout=T, what="results")
    text = results.inner_text()
    assert "My pet zebraquokka likes apples." in text and "pineapplemoose" not in text.lower()

    page.fill("#chat-search textarea", "pineapplemoose")
    wait_for(lambda: "The pineapplemoose sings at night." in results.inner_text(), timeout=T, what="other results")
    assert "zebraquokka" not in results.inner_text().lower()

    # choosing a result opens that chat
    page.fill("#chat-search textarea", "zebraquokka")
    wait_for(lambda: "zebraquokka" in results.inner_text().lower(), timeout=T, what="results again")
    results.locator("label").first.click()
    wait_for(lambda: page.input_value("#rename-box textarea") == "My pet zebraquokka likes apples.", what="chat opened")
    assert "My pet zebraquokka likes apples." in user_texts(page)

    page.fill("#chat-search textarea", "")
    wait_for(lambda: not results.is_visible(), what="results hidden when the search is cleared")


def test_export_then_import_ours_and_oobabooga(app, page, tmp_path: Path) -> None:
    new_chat(page)
    set_params(page, temperature=0.42, max_new_tokens=6)
    title = "Exportable: what is a tulip?"
    reply = chat_turn(page, title)
    conv = open_chat_id(page)

    open_import_export(page)
    page.click("#export-chat")
    link = page.locator("#export-file a[download]")
    link.wait_for(timeout=T * 1000)
    with page.expect_download() as download:
        link.click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert download.value.suggested_filename.endswith(".json")
    assert data["format"] == "webui-chat" and data["title"] == title
    assert [m["role"] for m in data["messages"]] == ["assistant", "user", "assistant"]
    assert data["messages"][1]["versions"] == [title]
    assert [m[1] for m in stored_messages(app.data_dir, conv)] == [
        m["versions"][m["active_version"]] for m in data["messages"]
    ]
    assert data["messages"][2]["versions"][0].split()[0] in reply
    assert data["settings"]["params"]["temperature"] == 0.42

    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(data), encoding="utf-8")
    set_params(page, temperature=1.5)  # the import brings the chat's own parameters back
    page.set_input_files("#import-chat input[type=file]", str(exported))
    wait_for(lambda: page.inner_text("#chat-list").count(title) == 2, timeout=T, what="the imported chat listed")
    wait_for(
        lambda: open_chat_id(page) != conv and page.input_value("#rename-box textarea") == title,
        what="imported chat open",
    )
    imported = open_chat_id(page)
    wait_for(lambda: user_texts(page) == [title] and len(bot_texts(page)) == 2, what="imported messages shown")
    assert stored_messages(app.data_dir, imported) == stored_messages(app.data_dir, conv)
    wait_for(lambda: params_shown(page, "temperature") == {"temperature": 0.42}, what="imported chat's parameters")

    ooba = tmp_path / "ooba.json"
    pairs = [["<|BEGIN-VISIBLE-CHAT|>", "Greetings, traveller of Oobaland."],
             ["Tell me about the oobaflower.", "The oobaflower blooms at dawn."],
             ["And at dusk?", "It closes its petals."]]
    ooba.write_text(json.dumps({"internal": pairs, "visible": pairs}), encoding="utf-8")
    page.set_input_files("#import-chat input[type=file]", str(ooba))
    wait_for(
        lambda: "Tell me about the oobaflower." in page.inner_text("#chat-list"),
        timeout=T,
        what="Oobabooga chat listed",
    )
    wait_for(lambda: user_texts(page) == ["Tell me about the oobaflower.", "And at dusk?"]
             and bot_texts(page) == ["Greetings, traveller of Oobaland.", "The oobaflower blooms at dawn.",
                                     "It closes its petals."],
             what="Oobabooga messages shown")
    assert page.input_value("#rename-box textarea") == "Tell me about the oobaflower."
