"""The live-reply registry on its own: one-use tokens, expiry, outcomes, and the bubble's HTML."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from webui.chat.reply_stream import ReplyProgress
from webui.errors import UserFacingError
from webui.ui import live_reply
from webui.ui.live_reply import LiveReplies


def test_a_token_is_claimed_once_and_unknown_tokens_get_nothing() -> None:
    replies = LiveReplies()
    token = replies.register(lambda: iter(()), initial="so far")
    assert len(token) >= 32 and replies.register(lambda: iter(())) != token
    turn = replies.claim(token)
    assert turn is not None and turn.initial == "so far"
    assert replies.claim(token) is None
    assert replies.claim("not-a-token") is None


def test_unclaimed_turns_and_unread_outcomes_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(live_reply.time, "monotonic", lambda: clock[0])
    replies = LiveReplies()
    late, kept = replies.register(lambda: iter(())), replies.register(lambda: iter(()))
    clock[0] += live_reply.TOKEN_TTL_SECONDS - 1
    assert replies.claim(kept) is not None
    clock[0] += 2
    assert replies.claim(late) is None  # the page never came for it within the TTL
    replies._finish(kept, live_reply.TurnOutcome(dropped_turns=3))
    assert replies.outcome(kept).dropped_turns == 3  # type: ignore[union-attr]
    assert replies.outcome(kept) is None  # read once
    replies._finish(kept, live_reply.TurnOutcome())
    clock[0] += live_reply.OUTCOME_TTL_SECONDS + 1
    replies.register(lambda: iter(()))  # any registration prunes
    assert replies.outcome(kept) is None


def test_the_bubble_html_renders_markdown_and_escapes_raw_html() -> None:
    html = LiveReplies().html('**bold** <img src=x onerror="alert(1)"> <script>x()</script>\nnext `<b>`')
    assert "<strong>bold</strong>" in html and "<br />" in html
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html and "<code>&lt;b&gt;</code>" in html


class FakeRequest:
    """What ``LiveReplies.events`` asks of the request: whether the page has gone away."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone

    async def is_disconnected(self) -> bool:
        return self.gone


def stream_events(replies: LiveReplies, token: str, request: FakeRequest) -> list[dict]:
    turn = replies.claim(token)
    assert turn is not None

    async def main() -> list[dict]:
        with anyio.fail_after(10):  # a stream that never ends fails here
            return [json.loads(e[len("data: "):]) async for e in replies.events(token, turn, request)]  # type: ignore[arg-type]

    return anyio.run(main)


def test_the_stream_sends_html_then_done_and_records_the_outcome() -> None:
    replies = LiveReplies()
    progress = [ReplyProgress("**Hi**"), ReplyProgress("**Hi** there", dropped_turns=2),
                ReplyProgress("**Hi** there", dropped_turns=2, done=True)]
    token = replies.register(lambda: iter(progress), initial="so far")
    events = stream_events(replies, token, FakeRequest())
    assert events[0] == {"html": "<p>so far</p>\n"} and events[1] == {"html": "<p><strong>Hi</strong></p>\n"}
    assert "notice" in events[2] and events[3] == {"html": "<p><strong>Hi</strong> there</p>\n"}
    assert events[-1] == {"done": True} and len(events) == 5  # the final progress repeats the text: not re-sent
    assert replies.outcome(token).dropped_turns == 2  # type: ignore[union-attr]


def test_a_failing_turn_sends_its_error_then_done() -> None:
    def failing() -> Iterator[ReplyProgress]:
        raise UserFacingError("There is no reply to continue.")
        yield  # a generator, like ChatService's

    replies = LiveReplies()
    token = replies.register(failing)
    assert stream_events(replies, token, FakeRequest()) == [{"error": "There is no reply to continue."}, {"done": True}]
    assert replies.outcome(token).error == "There is no reply to continue."  # type: ignore[union-attr]


def test_a_page_that_goes_away_closes_the_reply_which_stops_the_model() -> None:
    closed = threading.Event()

    def endless() -> Iterator[ReplyProgress]:
        text = ""
        try:
            while True:
                time.sleep(0.01)
                text += "x"
                yield ReplyProgress(text)
        finally:
            closed.set()  # ChatService's stream cancels the generation here

    replies = LiveReplies()
    token = replies.register(endless)
    events = stream_events(replies, token, FakeRequest(gone=True))
    assert events[-1] == {"done": True} and closed.wait(5)
