"""The live-reply registry on its own: one-use tokens, expiry, outcomes, and the bubble's HTML."""

from __future__ import annotations

import pytest

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
