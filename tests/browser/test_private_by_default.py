"""Private by default: the real app started as on a Hugging Face Space (``SPACE_ID`` set, so it
listens on all interfaces) with no accounts, and two visitors in two browser contexts. A's chat with
a secret is never shown to B: not in the list, not after a reload, not through search or the backup
export, not by asking the API or the live-reply stream for it directly. A still has it after a reload."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.browser_utils import open_app_page, reply_finished, send_message, user_texts, wait_for
from tests.support.chat_ui import open_import_export
from tests.support.gradio_session import GradioSession
from tests.support.server_utils import RunningApp, start_app
from webui.browser_identity import COOKIE_NAME, SECRET_FILE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "My bank PIN is 4921"
T = 90


def chat_titles(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#chat-list label").all_inner_texts()


def chat_turn(page, text: str) -> None:  # type: ignore[no-untyped-def]
    send_message(page, text)
    wait_for(lambda: text in user_texts(page), timeout=T, what="the message shown")
    wait_for(lambda: reply_finished(page) and any(t.startswith(text[:20]) for t in chat_titles(page)), timeout=T,
             what="the reply to end and the chat to be listed")


def identity_cookie(context) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c["name"]: c["value"] for c in context.cookies() if c["name"] == COOKIE_NAME}


def reload(page) -> None:  # type: ignore[no-untyped-def]
    page.reload()
    page.wait_for_selector("#chat-input textarea")
    wait_for(lambda: "SmolLM2" in page.inner_text("#model-info"), timeout=T, what="the page-load event")


def downloaded(page, button: str, link: str) -> Path:  # type: ignore[no-untyped-def]
    page.click(button)
    anchor = page.locator(f"{link} a[download]")
    anchor.wait_for(timeout=T * 1000)
    with page.expect_download() as download:
        anchor.click()
    return Path(download.value.path())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    running = start_app(tmp_path_factory.mktemp("private") / "data", env={"SPACE_ID": "someone/demo-space"})
    yield running  # type: ignore[misc]
    running.stop()


def test_each_browser_has_its_own_private_history(app: RunningApp, browser) -> None:  # type: ignore[no-untyped-def]
    assert ("Reachable from other machines: each browser gets its own private chat history "
            "(no accounts configured; add --auth for logins)") in app.log()
    assert stat.S_IMODE((app.data_dir / SECRET_FILE).stat().st_mode) == 0o600

    ctx_a, ctx_b = browser.new_context(), browser.new_context()  # two visitors
    try:
        a = open_app_page(ctx_a, app.url)
        chat_turn(a, SECRET)
        a_conv = int(a.evaluate("() => document.querySelector('#chat-list input:checked').value"))
        cookie_a = identity_cookie(ctx_a)
        assert cookie_a, "A's browser got no identity cookie"

        b = open_app_page(ctx_b, app.url)
        assert identity_cookie(ctx_b) and identity_cookie(ctx_b) != cookie_a
        assert chat_titles(b) == [] and SECRET not in b.content()
        chat_turn(b, "What is a good name for a cat?")
        reload(b)
        wait_for(lambda: chat_titles(b) != [], timeout=T, what="B's chat listed after a reload")
        assert [t for t in chat_titles(b) if "PIN" in t] == [] and len(chat_titles(b)) == 1

        # search: A's words are not found, B's own are
        b.fill("#chat-search textarea", "bank PIN")
        results = b.locator("#search-results")
        wait_for(lambda: results.is_visible() and "No message contains that" in results.inner_text(), timeout=T,
                 what="no search results for A's words")
        b.fill("#chat-search textarea", "cat")
        wait_for(lambda: "Found in 1 chat(s)" in results.inner_text(), timeout=T, what="B's own chat found")
        b.fill("#chat-search textarea", "")

        # export: the open chat, and "Backup: everything", hold B's chat only
        open_import_export(b)  # the sidebar's "Import / export"
        single = json.loads(downloaded(b, "#export-chat", "#export-file").read_text(encoding="utf-8"))
        assert single["title"].startswith("What is a good name") and "4921" not in json.dumps(single)
        b.click("#backup")
        with zipfile.ZipFile(downloaded(b, "#export-everything", "#export-everything-file")) as zf:
            contents = {name: zf.read(name) for name in zf.namelist()}
        assert any(name.startswith("chats/") for name in contents)
        assert not any(b"4921" in data for data in contents.values())
        assert "settings.yaml" not in contents and SECRET_FILE not in contents

        # B's direct attempts at A's chat
        cookie_b = identity_cookie(ctx_b)
        for cookies in ({}, cookie_b):
            body = {"messages": [{"role": "user", "content": "Repeat the chat."}], "max_tokens": 4,
                    "conversation_id": a_conv}
            answer = httpx.post(f"{app.url}/v1/chat/completions", json=body, cookies=cookies, timeout=T)
            assert answer.status_code == 404 and "4921" not in answer.text
        for cookies in ({}, cookie_b):  # the search event itself, by a client that keeps a cookie or none
            ui = GradioSession(app.url, f"b-search-{len(cookies)}", cookies)
            found = ui.run("search", {"chat-search": "4921"})
            done = next(m for m in found if m.get("msg") == "process_completed")
            update = done["output"]["data"][ui.element_index("search", "search-results")]
            assert update["choices"] == [] and "4921" not in json.dumps(done["output"])

        # a reply A registered streams to A's browser only (B holding the token gets 404, A still gets it)
        as_a = GradioSession(app.url, "a-hash", cookie_a)
        token = str(as_a.output("prepare", "live-token", as_a.run("prepare", {"chat-input": "One more thing"})))
        stolen = httpx.get(f"{app.url}/live-reply/{token}", cookies=cookie_b, timeout=T)
        assert stolen.status_code == 404
        assert any(p.get("done") for _, p in as_a.read_live_reply(token))

        # A, after a reload, still has the chat and its secret
        reload(a)
        wait_for(lambda: any(t.startswith(SECRET) for t in chat_titles(a)), timeout=T, what="A's chat after reload")
        a.locator("#chat-list label", has_text=SECRET).click()
        wait_for(lambda: SECRET in user_texts(a), timeout=T, what="A's chat opened")
        assert SECRET not in b.content()
    finally:
        ctx_a.close()
        ctx_b.close()
