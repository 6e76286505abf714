"""A server reachable without accounts (``--listen``, a Space): every browser acts for its own
identity, so no handler shows, changes, exports or streams another browser's chats or personas, and
the keyless API reads none of them. Handlers are called directly (fake engine, real database)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from tests.support.ui_context import param_values, ui_context
from webui.api.auth import Authenticator
from webui.browser_identity import COOKIE_NAME, USER_PREFIX
from webui.context import AppContext
from webui.server import create_api_app, create_app
from webui.ui import backup, characters_tab, chat_list, chat_messages, chat_tab
from webui.ui import chat_view as view
from webui.ui.live_reply import LiveReplies
from webui.ui.session import NOBODY, current_user_id, reply_owner

SECRET = "My bank PIN is 4921"
CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3}


@pytest.fixture
def ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data", ["Noted", "."], listen=True) as ctx:
        assert ctx.browsers is not None
        yield ctx


def visitor(ctx: AppContext, page: str, cookie: str | None = None) -> Any:
    """A stand-in for a browser's gr.Request: its identity cookie (a new one unless given), a page."""
    assert ctx.browsers is not None
    value = cookie if cookie is not None else ctx.browsers.new_cookie_value()
    return SimpleNamespace(username=None, session_hash=page, cookies={COOKIE_NAME: value})


def send(ctx: AppContext, conv_id: int | None, text: str, request: Any) -> tuple[int, str]:
    replies = LiveReplies()
    _, _, conv_id, token = chat_tab.prepare(ctx, replies, conv_id, text, "Assistant", view.NO_PERSONA, "chat", 0, "",
                                            request, *param_values(max_new_tokens=4))
    turn = replies.claim(token, reply_owner(ctx, request))
    assert turn is not None
    return conv_id, list(turn.start())[-1].text


def listed(ctx: AppContext, request: Any) -> list[str]:
    return [title for title, _ in chat_list.on_load(ctx, None, request)[0]["choices"]]


def test_each_browser_sees_only_its_own_chats(ctx: AppContext) -> None:
    a, b = visitor(ctx, "page-a"), visitor(ctx, "page-b")
    conv_id, reply = send(ctx, None, SECRET, a)
    assert reply == "Noted."
    assert listed(ctx, a) == [SECRET] and listed(ctx, b) == []
    assert listed(ctx, visitor(ctx, "page-a2", a.cookies[COOKIE_NAME])) == [SECRET]  # a reload keeps it
    assert chat_list.search(ctx, "PIN", a)["choices"] and chat_list.search(ctx, "PIN", b)["choices"] == []
    assert current_user_id(ctx, a) != current_user_id(ctx, b)
    assert ctx.repo.list_conversations(None) == []  # nothing lands in the local single-user history

    refused = [
        lambda: chat_list.open_chat(ctx, None, conv_id, b),
        lambda: chat_list.open_found(ctx, None, conv_id, b),
        lambda: chat_list.rename(ctx, conv_id, "mine now", b),
        lambda: chat_list.export(ctx, conv_id, b),
        lambda: send(ctx, conv_id, "and the rest?", b),
        lambda: chat_tab.set_setting(ctx, "mode", conv_id, "instruct", b),
        lambda: chat_tab.show_prompt(ctx, conv_id, b, *param_values()),
        lambda: chat_messages.save_edit(ctx, conv_id, 0, "edited", b),
        lambda: chat_messages.delete_message(ctx, conv_id, 0, b),
        lambda: chat_messages.branch(ctx, None, conv_id, 0, b),
    ]
    for attempt in refused:
        with pytest.raises(gr.Error):
            attempt()
    chat_list.delete(ctx, None, conv_id, b)  # "already gone" for B: nothing happens to A's chat
    assert [m.content for m in ctx.repo.messages(conv_id, current_user_id(ctx, a))][-2:] == [SECRET, "Noted."]
    assert listed(ctx, a) == [SECRET]


def test_a_tampered_cookie_is_a_new_identity_not_the_original(ctx: AppContext) -> None:
    a = visitor(ctx, "page-a")
    send(ctx, None, SECRET, a)
    value = a.cookies[COOKIE_NAME]
    forged = visitor(ctx, "page-x", ("B" if value[0] == "A" else "A") + value[1:])
    unsigned = visitor(ctx, "page-y", value.split(".")[0] + ".")
    for request in (forged, unsigned, visitor(ctx, "page-z", "")):
        assert listed(ctx, request) == [] and chat_list.search(ctx, "PIN", request)["choices"] == []
        assert current_user_id(ctx, request) != current_user_id(ctx, a)
    # without a cookie the identity lasts one page load, and a request with neither is refused
    assert current_user_id(ctx, forged) == current_user_id(ctx, visitor(ctx, "page-x", "bad"))
    with pytest.raises(gr.Error, match="reload"):
        current_user_id(ctx, SimpleNamespace(username=None, session_hash="", cookies={}))
    with pytest.raises(gr.Error, match="reload"):
        current_user_id(ctx, None)


def test_personas_are_per_browser(ctx: AppContext) -> None:
    a, b = visitor(ctx, "page-a"), visitor(ctx, "page-b")
    characters_tab.save_persona(ctx, "Secret Agent", "Works at the bank.", None, a)
    assert characters_tab.persona_choice_update(ctx, a)["choices"] == ["Secret Agent"]
    assert characters_tab.persona_choice_update(ctx, b)["choices"] == []
    assert characters_tab.show_persona(ctx, "Secret Agent", b)[1] == ""


def test_the_backup_of_a_browser_holds_only_its_own_chats_and_no_server_files(ctx: AppContext) -> None:
    a, b = visitor(ctx, "page-a"), visitor(ctx, "page-b")
    send(ctx, None, SECRET, a)
    send(ctx, None, "B's own question", b)
    (ctx.settings.data_dir / "settings.yaml").write_text("user_name: Operator\n")
    archive = backup.export_everything(ctx, b)["value"]
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        chats = [json.loads(zf.read(n)) for n in names if n.startswith("chats/")]
    assert [c["title"] for c in chats] == ["B's own question"]
    assert "settings.yaml" not in names and not any("identity" in n for n in names)
    # importing it as a new browser gives that browser the chat, nobody else
    c = visitor(ctx, "page-c")
    backup.import_everything(ctx, archive, c)
    assert listed(ctx, c) == ["B's own question"] and listed(ctx, a) == [SECRET]
    assert (ctx.settings.data_dir / "settings.yaml").read_text() == "user_name: Operator\n"


def test_a_live_reply_streams_only_to_the_browser_that_asked(ctx: AppContext) -> None:
    a, b = visitor(ctx, "page-a"), visitor(ctx, "page-b")
    replies = LiveReplies()
    token = chat_tab.prepare(ctx, replies, None, SECRET, "Assistant", view.NO_PERSONA, "chat", 0, "", a,
                             *param_values(max_new_tokens=4))[3]
    assert replies.claim(token, reply_owner(ctx, b)) is None
    assert replies.claim(token, None) is None  # no cookie at all: not the owner either
    turn = replies.claim(token, reply_owner(ctx, a))  # still there for its owner
    assert turn is not None and list(turn.start())[-1].text == "Noted."


def test_local_without_accounts_stays_the_single_user_app(tmp_path: Path, fake_backend: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    with ui_context(tmp_path / "data") as ctx:
        assert ctx.browsers is None
        request = SimpleNamespace(username=None, session_hash="p", cookies={})
        assert current_user_id(ctx, request) is None and current_user_id(ctx, None) is None
        assert reply_owner(ctx, request) is None


def test_a_visitor_who_only_looks_adds_no_user_row(ctx: AppContext) -> None:
    a, b = visitor(ctx, "page-a"), visitor(ctx, "page-b")
    cookieless = [SimpleNamespace(username=None, session_hash=f"page-{n}", cookies={}) for n in range(5)]
    for request in (a, b, *cookieless):  # page loads, searches, persona lists: reads only
        assert listed(ctx, request) == [] and chat_list.search(ctx, "PIN", request)["choices"] == []
        assert characters_tab.persona_choice_update(ctx, request)["choices"] == []
        assert current_user_id(ctx, request) == NOBODY
    assert ctx.repo.users() == {}
    # the first thing saved creates the identity's row, and only that one
    send(ctx, None, SECRET, a)
    characters_tab.save_persona(ctx, "Secret Agent", "Works at the bank.", None, b)
    assert sorted(ctx.repo.users()) == sorted(USER_PREFIX + str(ctx.browsers.identity(v.cookies[COOKIE_NAME]))
                                              for v in (a, b))  # type: ignore[union-attr]
    assert current_user_id(ctx, a) not in (None, NOBODY) and listed(ctx, a) == [SECRET]
    # nothing can be saved for an identity without a row: the database refuses the owner
    with pytest.raises(Exception, match="(?i)foreign key"):
        ctx.repo.create_conversation("Orphan", "Assistant", NOBODY)


# -- over HTTP: requests from other sites -----------------------------------------------------


@pytest.fixture
def web(ctx: AppContext) -> Iterator[TestClient]:
    """The real app (API, identity middleware, Gradio UI) as the browser reaches it."""
    with TestClient(create_app(ctx), base_url="https://someone-demo.hf.space") as client:
        yield client


def http_search(web: TestClient, query: str, cookie: str, **headers: str) -> Any:
    """The chat search event over Gradio's HTTP API (as the page calls it), with ``cookie`` sent."""
    deps = web.get("/config").json()["dependencies"]
    index = next(i for i, dep in enumerate(deps) if dep.get("api_name") == "search")
    response = web.post("/gradio_api/run/predict", headers={"cookie": f"{COOKIE_NAME}={cookie}", **headers},
                        json={"data": [query], "fn_index": index, "session_hash": "an-attackers-page"})
    assert response.status_code == 200, response.text
    return response


SAME_ORIGIN = [{"origin": "https://someone-demo.hf.space", "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"},
               {"origin": "https://someone-demo.hf.space"},  # a browser without Sec-Fetch-* headers
               {"origin": "https://public.example", "x-forwarded-host": "public.example"}]  # behind a proxy
CROSS_ORIGIN = [{"origin": "https://evil.example", "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"},
                {"origin": "https://evil.example"},
                {"origin": "https://other-space.hf.space", "sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
                {"origin": "null"},
                # a page's own origin cannot be claimed: the browser's Sec-Fetch-Site says where it came from
                {"origin": "https://someone-demo.hf.space", "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"}]


def test_another_site_cannot_use_a_visitors_cookie_to_read_their_chats(ctx: AppContext, web: TestClient) -> None:
    a = visitor(ctx, "page-a")
    send(ctx, None, SECRET, a)
    cookie = a.cookies[COOKIE_NAME]
    for headers in SAME_ORIGIN:  # the page itself, also inside the huggingface.co iframe
        found = http_search(web, "PIN", cookie, **headers)
        assert [c[0] for c in found.json()["data"][0]["choices"]] == [f"{SECRET} — {SECRET}"], headers
        assert "set-cookie" not in found.headers
    for headers in CROSS_ORIGIN:
        found = http_search(web, "PIN", cookie, **headers)
        assert found.json()["data"][0]["choices"] == [] and "4921" not in json.dumps(found.json()["data"]), headers
        assert "set-cookie" not in found.headers  # the visitor's own cookie is not replaced either
    assert listed(ctx, a) == [SECRET] and ctx.repo.users() == {  # the attempts added no identity
        USER_PREFIX + str(ctx.browsers.identity(cookie)): current_user_id(ctx, a)}  # type: ignore[union-attr]


# -- the API without a key --------------------------------------------------------------------


@pytest.fixture
def api(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_api_app(ctx)) as client:
        yield client


def test_the_keyless_api_of_a_reachable_server_generates_but_reads_no_chat(ctx: AppContext, api: TestClient) -> None:
    a = visitor(ctx, "page-a")
    conv_id, _ = send(ctx, None, SECRET, a)
    characters_tab.save_persona(ctx, "Secret Agent", "Works at the bank.", None, a)

    ok = api.post("/v1/chat/completions", json=CHAT)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "Noted."
    assert "conversation_id" not in ok.json() or ok.json()["conversation_id"] is None

    gone = api.post("/v1/chat/completions", json={**CHAT, "conversation_id": conv_id})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "conversation_not_found"
    saved = api.post("/v1/chat/completions", json={**CHAT, "save": True})
    assert saved.status_code == 403 and saved.json()["error"]["code"] == "chat_saving_disabled"
    persona = api.post("/v1/chat/completions", json={**CHAT, "persona": "Secret Agent"})
    assert persona.status_code == 404 and persona.json()["error"]["code"] == "persona_not_found"
    # the browser's own cookie does not turn the API into that browser
    with_cookie = api.post("/v1/chat/completions", json={**CHAT, "conversation_id": conv_id},
                           cookies={COOKIE_NAME: a.cookies[COOKIE_NAME]})
    assert with_cookie.status_code == 404
    assert [m.content for m in ctx.repo.messages(conv_id, current_user_id(ctx, a))][-2:] == [SECRET, "Noted."]
    assert ctx.repo.list_conversations(None) == []


def test_the_start_up_line_says_how_the_app_is_protected() -> None:
    def line(accounts: dict[str, str], keys: dict[str, str | None], reachable: bool) -> str:
        return Authenticator(accounts, keys, lambda name: 1, reachable=reachable).protection()

    assert line({}, {}, False) == "Local only: single-user. API: open."
    assert line({}, {}, True).startswith("Reachable from other machines: each browser gets its own private chat "
                                         "history (no accounts configured; add --auth for logins).")
    assert "cannot save, read or continue chats" in line({}, {}, True)
    assert line({"a": "1", "b": "2"}, {}, True).startswith("Accounts: 2 (login required).")
    assert line({}, {"k": None}, True).endswith("API: key required.")
