"""An output_modifier written for text-generation-webui (its extension imports ``modules``) changes
only what the chat draws, as upstream keeps its result as the message's ``visible`` text: the stored
reply, later prompts and the API get the model's text. This app's own extensions' output_modifier
still changes the stored reply. ChatService and the Chat tab's handlers with the fake model, a real
database and the real extension manager; ``tgw_colors`` (tests/support/upstream_style_extensions)
wraps each word in a coloured ``<span>`` as upstream's perplexity_colors wraps each token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from tests.support.extensions import manager_for, write_ext
from tests.support.ui_context import param_values, ui_context
from webui.chat.service import ChatService
from webui.context import AppContext
from webui.generation.params import GenerationParams
from webui.plugins import ExtensionManager
from webui.storage.repository import MessageRecord
from webui.ui import chat_messages, chat_tab, display_html
from webui.ui import chat_view as view
from webui.ui.live_reply import LiveReplies

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "upstream_style_extensions"
COLOURED = '<span style="color: #cc0000">Hello</span> <span style="color: #008800">there</span>'
SHOUT = """
    def output_modifier(string, state, is_chat=False):
        return string.upper()
"""


def coloured_chat(chat_service, tmp_path: Path, *names: str) -> tuple[ChatService, ExtensionManager]:
    """A ChatService whose extensions are ``names`` in that order (``shout``: this app's style)."""
    ext = tmp_path / "ext"
    shutil.copytree(FIXTURES / "tgw_colors", ext / "tgw_colors")
    write_ext(ext, "shout", SHOUT)
    mgr = manager_for(ext)
    assert mgr.set_enabled(list(names)) == {}
    assert mgr.info("tgw_colors").upstream and not mgr.info("shout").upstream
    base = chat_service(tokens=["Hello", " there"])
    return ChatService(base.engine, base.repo, base.characters, extensions=mgr), mgr


def test_the_reply_is_stored_plain_and_drawn_coloured(chat_service, repo, tmp_path: Path) -> None:
    chat, _ = coloured_chat(chat_service, tmp_path, "tgw_colors")
    conv = chat.new_conversation("Assistant")
    progress = list(chat.send(conv.id, "hi", GenerationParams()))
    assert all("<span" not in p.text for p in progress)
    assert (progress[-1].text, progress[-1].display) == ("Hello there", COLOURED)
    reply = repo.messages(conv.id)[-1]
    assert (reply.content, reply.display) == ("Hello there", COLOURED)

    list(chat.send(conv.id, "and again", GenerationParams()))
    prompt = chat.engine.model.prompts[-1]
    assert "Hello there" in prompt and "<span" not in prompt  # the next prompt sees the model's text
    assert "<span" not in chat.show_prompt(conv.id, GenerationParams()).prompt
    exported = repo.export_conversation(conv.id)["messages"]
    assert all("<span" not in text for m in exported for text in m["versions"])


def test_this_apps_output_modifier_still_changes_the_stored_reply(chat_service, repo, tmp_path: Path) -> None:
    """``shout`` (this app's style) is enabled after ``tgw_colors`` and still changes the stored text;
    the colours are drawn over what it stored."""
    chat, _ = coloured_chat(chat_service, tmp_path, "tgw_colors", "shout")
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hi", GenerationParams()))[-1]
    assert final.text == "HELLO THERE" and final.display == COLOURED.replace("Hello", "HELLO").replace(
        "there", "THERE")
    assert (repo.messages(conv.id)[-1].content, repo.messages(conv.id)[-1].display) == (final.text, final.display)
    chat_alone, _ = coloured_chat(chat_service, tmp_path / "alone", "shout")
    alone = chat_alone.new_conversation("Assistant")
    final = list(chat_alone.send(alone.id, "hi", GenerationParams()))[-1]
    assert (final.text, final.display, repo.messages(alone.id)[-1].display) == ("HELLO THERE", None, None)


def test_versions_keep_their_display_and_an_edit_replaces_both(chat_service, repo, tmp_path: Path) -> None:
    chat, mgr = coloured_chat(chat_service, tmp_path, "tgw_colors")
    conv = chat.new_conversation("Assistant")
    list(chat.send(conv.id, "hi", GenerationParams()))
    mgr.set_param("tgw_colors", "active", False)
    list(chat.regenerate(conv.id, GenerationParams()))
    reply = repo.messages(conv.id)[-1]
    assert (reply.active_version, reply.content, reply.display) == (1, "Hello there", None)
    repo.set_active_version(reply.id, 0)
    assert repo.messages(conv.id)[-1].display == COLOURED  # the first version kept its own

    mgr.set_param("tgw_colors", "active", True)
    list(chat.continue_reply(conv.id, GenerationParams()))  # the whole reply is drawn again, coloured
    reply = repo.messages(conv.id)[-1]
    assert reply.content == "Hello thereHello there"
    assert reply.display == ('<span style="color: #cc0000">Hello</span> <span style="color: #008800">thereHello</span>'
                             ' <span style="color: #cc0000">there</span>')
    branched = repo.branch_conversation(conv.id, reply.id)
    assert repo.messages(branched.id)[-1].display == reply.display

    repo.edit_message(reply.id, "Edited by hand")
    assert (repo.messages(conv.id)[-1].content, repo.messages(conv.id)[-1].display) == ("Edited by hand", None)


def test_the_api_answer_is_plain(chat_service, repo, tmp_path: Path) -> None:
    chat, _ = coloured_chat(chat_service, tmp_path, "tgw_colors")
    progress = list(chat.answer([("user", "hi")], GenerationParams()))
    assert progress[-1].text == "Hello there" and all("<span" not in p.text for p in progress)
    conv_id, saved = chat.answer_saved([("user", "hi")], GenerationParams())
    assert list(saved)[-1].text == "Hello there"
    assert (repo.messages(conv_id)[-1].content, repo.messages(conv_id)[-1].display) == ("Hello there", COLOURED)


def record(content: str, display: str | None, role: str = "assistant") -> MessageRecord:
    return MessageRecord(1, 0, role, content, 1, 0, 1, True, False, display)


def test_a_display_is_drawn_as_html_through_an_allowlist() -> None:
    hostile = ('<span style="color: #cc0000; background-image: url(https://x.test/t.png)" onclick="steal()">'
               'Hi</span><script>steal()</script><img src="x" onerror="steal()"><a href="javascript:steal()">a</a>')
    drawn = view.display([record("Hi <b>", None), record("Hi", hostile), record("<i>me</i>", "<b>x</b>", "user")])
    assert drawn[0]["content"] == "Hi &lt;b&gt;"  # no display: raw HTML is text, as before
    assert drawn[1]["content"] == '<span style="color:#cc0000">Hi</span>a'
    assert drawn[2]["content"] == "&lt;i&gt;me&lt;/i&gt;"  # a user's message is never drawn from a display
    live = LiveReplies().html("Hi", COLOURED + "\n*next*")
    assert live == ('<p><span style="color:#cc0000">Hello</span> <span style="color:#008800">there</span><br>\n'
                    "<em>next</em></p>\n")
    assert LiveReplies().html("<span>x</span>") == "<p>&lt;span&gt;x&lt;/span&gt;</p>\n"
    dropdown = ('<div class="hoverable evil"><span style="color: #00ff00">tok</span><div class="dropdown">'
                '<table class="dropdown-content"><tbody><tr class="selected"><td>tok</td></tr></tbody></table>'
                '</div></div>')
    assert display_html.sanitize(dropdown) == dropdown.replace(" evil", "").replace("color: ", "color:")


@pytest.fixture
def colour_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "tgw_colors", data / "extensions" / "tgw_colors")
    with ui_context(data, tokens=["Hello", " there"], extensions=["tgw_colors"]) as ctx:
        yield ctx


def test_the_chat_tab_streams_and_shows_the_colours_and_an_edit_stores_text(colour_ctx: AppContext) -> None:
    replies = LiveReplies()
    _, _, conv_id, token = chat_tab.prepare(colour_ctx, replies, None, "hi", "Assistant", view.NO_PERSONA, "chat", 0,
                                            "", None, *param_values(max_new_tokens=8))
    turn = replies.claim(token)
    assert turn is not None
    final = list(turn.start())[-1]
    assert replies.html(final.text, final.display).count('<span style="color:#') == 2  # the live bubble
    shown = chat_messages.shown(colour_ctx, conv_id, None)  # the Chatbot once the reply is stored
    assert shown[-1]["content"] == '<span style="color:#cc0000">Hello</span> <span style="color:#008800">there</span>'
    assert colour_ctx.repo.messages(conv_id)[-1].content == "Hello there"

    # Gradio's editor offers the drawn HTML: what is stored is its text, and the display goes.
    edit = gr.EditData(None, {"index": len(shown) - 1, "value": shown[-1]["content"].replace("there", "you &lt;3"),
                              "previous_value": shown[-1]["content"]})
    after = chat_messages.edited(colour_ctx, conv_id, edit, None)
    reply = colour_ctx.repo.messages(conv_id)[-1]
    assert (reply.content, reply.display) == ("Hello you <3", None)
    assert after[-1]["content"] == "Hello you &lt;3"


def test_a_database_from_before_display_texts_opens_with_none(tmp_path: Path) -> None:
    from tests.support.old_schema import database_before
    from webui.storage.db import open_database, sqlite_url
    from webui.storage.migrations import MIGRATIONS, current_version
    from webui.storage.repository import ChatRepository

    url = sqlite_url(tmp_path)
    database_before(url, "_m005_message_display", "An old reply.")  # before _m005, with a reply in it
    repo = ChatRepository(open_database(url))
    with repo.engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    [old] = repo.messages(1)
    assert (old.content, old.display) == ("An old reply.", None)
    repo.update_version(old.version_id, "An old reply.", complete=True, display="<b>An old reply.</b>")
    assert repo.messages(1)[0].display == "<b>An old reply.</b>"
