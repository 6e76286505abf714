"""The Chat tab's handlers (sidebar, chat area, message panel), called directly with the fake engine
and a real database: what each returns for the page, and the message a user gets when it refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tests.support.ui_context import param_values, ui_context, user
from webui.context import AppContext
from webui.ui import chat_list, chat_messages, chat_tab
from webui.ui import chat_view as view
from webui.ui.live_reply import LiveReplies

N_OPEN = 11  # open_values without the Parameters tab (params=None)


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data") as ctx:
        yield ctx


def new_chat(ctx: AppContext, request: Any = None, character: str = "Assistant") -> int:
    values = chat_list.new_chat(ctx, None, character, view.NO_PERSONA, "chat", 0, request)
    return values[0]["value"]


def send(ctx: AppContext, conv_id: int | None, text: str, request: Any = None) -> tuple[int, str]:
    """Send as the page does: prepare registers the turn, the page's stream runs it."""
    replies = LiveReplies()
    _, box, conv_id, token = chat_tab.prepare(ctx, replies, conv_id, text, "Assistant", view.NO_PERSONA, "chat", 0, "",
                                              request, *param_values(max_new_tokens=8))
    assert box == "" and token
    turn = replies.claim(token)
    assert turn is not None
    final = list(turn.start())[-1]
    return conv_id, final.text


def test_new_chat_is_listed_selected_and_opened(ui_ctx: AppContext) -> None:
    values = chat_list.new_chat(ui_ctx, None, "Assistant", view.NO_PERSONA, "chat", 0, None)
    conv = ui_ctx.repo.list_conversations(None)[0]
    assert values[0]["value"] == conv.id and (conv.title, conv.id) in values[0]["choices"]
    opened = values[1:]
    assert len(opened) == N_OPEN and opened[0] == conv.id and opened[2] == conv.title
    assert opened[3]["value"] == "Assistant" and opened[5] == "chat"


def test_rename_and_its_errors(ui_ctx: AppContext) -> None:
    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_list.rename(ui_ctx, None, "x", None)
    conv_id = new_chat(ui_ctx)
    update = chat_list.rename(ui_ctx, conv_id, "Trip plans", None)
    assert update["value"] == conv_id and ("Trip plans", conv_id) in update["choices"]
    assert ui_ctx.repo.get_conversation(conv_id).title == "Trip plans"


def test_one_account_cannot_touch_another_ones_chat(ui_ctx: AppContext) -> None:
    """The repository's NotFound (not the user's chat) reaches the user as a gr.Error, not a crash."""
    alice_chat = new_chat(ui_ctx, user("alice"))
    with pytest.raises(gr.Error):
        chat_list.rename(ui_ctx, alice_chat, "mine now", user("bob"))
    with pytest.raises(gr.Error, match="That chat no longer exists"):
        chat_list.open_chat(ui_ctx, None, alice_chat, user("bob"))
    assert chat_list.search(ui_ctx, "anything", user("bob"))["choices"] == []
    assert ui_ctx.repo.get_conversation(alice_chat, ui_ctx.repo.ensure_user("alice")).title == "New chat"


def test_delete_opens_the_most_recent_chat_left(ui_ctx: AppContext) -> None:
    first, second = new_chat(ui_ctx), new_chat(ui_ctx)
    values = chat_list.delete(ui_ctx, None, second, None)
    assert values[0]["value"] == first and values[1] == first
    assert [c.id for c in ui_ctx.repo.list_conversations(None)] == [first]
    again = chat_list.delete(ui_ctx, None, second, None)  # already gone: no error
    assert again[0]["value"] == first
    last = chat_list.delete(ui_ctx, None, first, None)
    assert last[0]["value"] is None and last[1] is None and len(last) == 1 + N_OPEN


def test_send_shows_the_message_then_the_stored_reply(ui_ctx: AppContext) -> None:
    replies = LiveReplies()
    shown, box, conv_id, token = chat_tab.prepare(ui_ctx, replies, None, "Hello <b>there</b>", "Assistant",
                                                  view.NO_PERSONA, "chat", 0, "", None, *param_values())
    assert box == "" and token and conv_id is not None  # a chat was started for the first message
    assert shown[-1] == {"role": "user", "content": "Hello &lt;b&gt;there&lt;/b&gt;"}
    list(replies.claim(token).start())  # type: ignore[union-attr]
    after = chat_tab.after_turn(ui_ctx, replies, conv_id, token, None)
    # the Assistant's greeting, the message, the reply
    assert [m["role"] for m in after[0]] == ["assistant", "user", "assistant"]
    assert after[0][2]["content"] == "Hello there!"
    assert after[2]["value"] == conv_id and after[-1] == "Hello <b>there</b>"  # the chat is named after it
    assert after[3] == gr.skip()  # the turn never streamed through the page: no speed line for it


def test_send_validation(ui_ctx: AppContext) -> None:
    replies = LiveReplies()
    nothing = chat_tab.prepare(ui_ctx, replies, None, "   ", "Assistant", view.NO_PERSONA, "chat", 0, "", None,
                               *param_values())
    assert nothing[2:] == (None, "") and ui_ctx.repo.list_conversations(None) == []  # nothing sent, no chat made
    bad = list(param_values())
    bad[1] = -1.0  # temperature
    with pytest.raises(gr.Error, match="temperature"):
        chat_tab.prepare(ui_ctx, replies, None, "hi", "Assistant", view.NO_PERSONA, "chat", 0, "", None, *bad)
    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_tab.begin_regenerate(ui_ctx, replies, None, "", None, *param_values())
    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_tab.begin_continue(ui_ctx, replies, None, None, *param_values())
    with pytest.raises(gr.Error, match="Open a chat first"):
        list(chat_tab.impersonate(ui_ctx, None, "", None, *param_values()))
    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_tab.show_prompt(ui_ctx, None, None, *param_values())


def test_regenerate_and_continue_hide_the_last_reply_while_it_is_rewritten(ui_ctx: AppContext) -> None:
    conv_id, reply = send(ui_ctx, None, "hi")
    replies = LiveReplies()
    shown, token = chat_tab.begin_regenerate(ui_ctx, replies, conv_id, "", None, *param_values())
    assert [m["role"] for m in shown] == ["assistant", "user"] and token  # greeting, message
    list(replies.claim(token).start())  # type: ignore[union-attr]
    assert ui_ctx.repo.messages(conv_id)[-1].version_count == 2
    shown, token = chat_tab.begin_continue(ui_ctx, replies, conv_id, None, *param_values())
    assert [m["role"] for m in shown] == ["assistant", "user"] and replies.claim(token).initial == reply  # type: ignore[union-attr]


def test_prompt_and_impersonate(ui_ctx: AppContext) -> None:
    conv_id, _ = send(ui_ctx, None, "What is the capital of France?")
    assert "What is the capital of France?" in chat_tab.show_prompt(ui_ctx, conv_id, None, *param_values())
    written = list(chat_tab.impersonate(ui_ctx, conv_id, "I", None, *param_values()))
    assert written and written[-1].startswith("I")


def test_chat_settings_are_stored_with_the_open_chat(ui_ctx: AppContext) -> None:
    chatbot, greeting, _notes = chat_tab.set_character(ui_ctx, None, "Assistant", None)
    assert chatbot == gr.update() and greeting["value"] == 0  # no chat open: only the choices change
    conv_id = new_chat(ui_ctx)
    assert chat_tab.set_setting(ui_ctx, "mode", None, "instruct", None) == gr.update()
    chat_tab.set_setting(ui_ctx, "mode", conv_id, "instruct", None)
    chat_tab.set_setting(ui_ctx, "persona", conv_id, view.NO_PERSONA, None)
    settings = ui_ctx.repo.get_conversation(conv_id).settings
    assert settings["mode"] == "instruct" and settings.get("persona") is None


def test_search_export_import(ui_ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    assert chat_list.search(ui_ctx, "  ", None)["visible"] is False
    conv_id, _ = send(ui_ctx, None, "zanzibar spice")
    found = chat_list.search(ui_ctx, "zanzibar", None)
    assert found["visible"] and found["choices"][0][1] == conv_id and found["label"] == "Found in 1 chat(s)"
    assert chat_list.search(ui_ctx, "nowhere", None)["label"] == "No message contains that"

    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_list.export(ui_ctx, None, None)
    exported = json.loads(Path(chat_list.export(ui_ctx, conv_id, None)["value"]).read_text(encoding="utf-8"))
    assert exported["title"] == "zanzibar spice" and len(exported["messages"]) == 3

    with pytest.raises(gr.Error):
        chat_list.import_chat(ui_ctx, None, b"not json", None)
    assert chat_list.import_chat(ui_ctx, None, None, None) == [*[gr.update()] * (1 + N_OPEN), None]  # box cleared
    values = chat_list.import_chat(ui_ctx, None, json.dumps(exported).encode(), None)
    assert values[-1] is None and values[1] == values[0]["value"] != conv_id
    assert "Imported 3 messages" in capsys.readouterr().out  # gr.Info, outside a Gradio event
    found = chat_list.open_found(ui_ctx, None, conv_id, None)
    assert found[0]["value"] == conv_id and found[1] == conv_id


def test_actions_on_a_message(ui_ctx: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    empty = ui_ctx.repo.create_conversation("Empty", "Assistant").id
    with pytest.raises(gr.Error, match="Open a chat first"):
        chat_messages.save_edit(ui_ctx, None, None, "x", None)
    with pytest.raises(gr.Error, match="no messages"):
        chat_messages.delete_message(ui_ctx, empty, None, None)

    conv_id, _ = send(ui_ctx, None, "hi")
    edit = gr.EditData(None, {"index": 1, "value": "hello &lt;b&gt;", "previous_value": "hi"})
    shown = chat_messages.edited(ui_ctx, conv_id, edit, None)  # Gradio's in-place edit
    assert ui_ctx.repo.messages(conv_id)[1].content == "hello <b>" and shown[1]["content"] == "hello &lt;b&gt;"
    assert chat_view_versions(ui_ctx, conv_id) == "1/1/a,1/1/u,1/1/a"

    chat_messages.switch(ui_ctx, +1, conv_id, None, None)  # one version: it stays, and says so (gr.Info)
    assert ui_ctx.repo.messages(conv_id)[-1].active_version == 0
    assert "only one version" in capsys.readouterr().out

    branched = chat_messages.message_action(ui_ctx, None, conv_id, gr.EventData(None, {"action": "branch",
                                                                                        "index": 1}), None)
    new_id = branched[0]["value"]
    assert new_id != conv_id and [m.content for m in ui_ctx.repo.messages(new_id)][1:] == ["hello <b>"]
    assert len(branched) == 1 + N_OPEN + 1 and branched[1] == new_id
    assert branched[-1] == chat_view_versions(ui_ctx, new_id) == "1/1/a,1/1/u"  # the tools follow the new chat

    deleted = chat_messages.message_action(ui_ctx, None, conv_id, gr.EventData(None, {"action": "delete",
                                                                                       "index": 2}), None)
    assert len(deleted) == 1 + N_OPEN + 1 and len(deleted[2]) == 2 and deleted[1] == gr.skip()
    assert deleted[-1] == chat_view_versions(ui_ctx, conv_id) == "1/1/a,1/1/u"
    with pytest.raises(gr.Error, match="Unknown message action"):
        chat_messages.message_action(ui_ctx, None, conv_id, gr.EventData(None, {"action": "rm -rf"}), None)


def chat_view_versions(ctx: AppContext, conv_id: int) -> str:
    return chat_messages.versions(ctx, conv_id, None)

