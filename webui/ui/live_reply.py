"""The reply being written, streamed to the page outside Gradio's event machinery.

Why not a streaming Gradio event: while any Gradio event is pending, its frontend runs a status
timer on every animation frame (60 main-thread frames a second) and, per streamed update, works
through the state of every component ever written by an event (a 200-message chat included). On a
small machine the browser shares the CPU with the model, so that work slows the reply itself.

The flow instead: a quick Gradio step registers the turn here and returns a one-use token (an
unguessable capability, bound to the turn it was made for); the page opens ``GET live-reply/<token>``
(server-sent events), which starts the generation and sends the reply as sanitized HTML at most
~10 times a second; the page writes it into ``#live-reply``, a plain element Gradio never touches.
When the stream ends, a Gradio step shows the stored message (``outcome`` gives it the notice and
any error). Closing the page closes the stream, which stops the generation.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from markdown_it import MarkdownIt

from webui.errors import UserFacingError
from webui.storage.repository import NotFound
from webui.streaming import iterate_in_thread
from webui.ui import display_html
from webui.ui.chat_view import dropped_notice

log = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 120.0  # a turn whose page never connects is forgotten after this
OUTCOME_TTL_SECONDS = 600.0

ReplyStream = Iterator[Any]  # of ReplyProgress (text, dropped_turns)


def markdown_renderer() -> MarkdownIt:
    """CommonMark with tables and strikethrough, single newlines as line breaks (as the chat shows
    them), and raw HTML escaped: nothing from the model's text becomes an element or a script."""
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])


@dataclass
class LiveTurn:
    """A registered turn: ``start`` begins the generation (called once, when the page connects)."""

    start: Callable[[], ReplyStream]
    initial: str = ""  # shown before the first token (Continue: the reply being extended)
    created: float = 0.0  # time.monotonic() when registered
    owner: str | None = None  # the browser identity that registered it (None: the token alone suffices)


@dataclass
class TurnOutcome:
    dropped_turns: int = 0
    error: str | None = None
    finished: float = 0.0  # time.monotonic() when the stream ended
    seconds: float = 0.0  # from the page connecting (the generation starting) to the end
    first_token: float | None = None  # seconds until the first text arrived (None: none did)
    prompt_tokens: int = 0  # from the reply's last progress (0: it did not finish)
    completion_tokens: int = 0


class LiveReplies:
    """Turns waiting for their page (by token), and how finished ones ended (for the step after)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, LiveTurn] = {}
        self._outcomes: dict[str, TurnOutcome] = {}
        self._markdown = markdown_renderer()
        self._display_markdown = display_html.markdown_renderer()

    def register(self, start: Callable[[], ReplyStream], initial: str = "", owner: str | None = None) -> str:
        """A token for the turn; ``owner``: the browser identity that alone may stream it."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._prune()
            self._waiting[token] = LiveTurn(start, initial, created=time.monotonic(), owner=owner)
        return token

    def claim(self, token: str, requester: str | None = None) -> LiveTurn | None:
        """The turn for ``token``, once: a second claim (or an expired token) gets None, and so does
        a ``requester`` other than the turn's owner (the turn stays for its owner)."""
        with self._lock:
            self._prune()
            turn = self._waiting.get(token)
            if turn is None or (turn.owner is not None and turn.owner != requester):
                return None
            return self._waiting.pop(token)

    def outcome(self, token: str) -> TurnOutcome | None:
        """How the turn streamed under ``token`` ended (once; None if it never ran)."""
        with self._lock:
            return self._outcomes.pop(token, None)

    def _finish(self, token: str, outcome: TurnOutcome) -> None:
        outcome.finished = time.monotonic()
        with self._lock:
            self._outcomes[token] = outcome

    def _prune(self) -> None:
        now = time.monotonic()
        for token in [t for t, turn in self._waiting.items() if now - turn.created > TOKEN_TTL_SECONDS]:
            del self._waiting[token]
        for token in [t for t, o in self._outcomes.items() if now - o.finished > OUTCOME_TTL_SECONDS]:
            del self._outcomes[token]

    def html(self, text: str, display: str | None = None) -> str:
        """The reply as drawn: its display text (an upstream-style output_modifier's HTML, sanitized)
        where it has one, else its Markdown with raw HTML escaped."""
        if display is not None:
            return display_html.render(display, self._display_markdown)
        return self._markdown.render(text)

    async def events(self, token: str, turn: LiveTurn, request: Request) -> AsyncIterator[str]:
        """The SSE body: ``{"html": ...}`` per update, ``{"notice": ...}`` when old turns were left
        out of the prompt, ``{"error": ...}`` if the turn failed, then ``{"done": true}``.

        The turn is read through ``webui.streaming.iterate_in_thread``: when the page goes away
        the stream is closed, which stops the model."""
        outcome = TurnOutcome()
        notice = shown = ""
        began = time.monotonic()
        try:
            if turn.initial:
                yield sse({"html": self.html(turn.initial)})
            updates = iterate_in_thread(self._rendered(turn.start()), disconnected=request.is_disconnected,
                                        label=f"live reply {token[:6]}")
            async with aclosing(updates):
                try:
                    async for progress, html in updates:
                        outcome.dropped_turns = progress.dropped_turns
                        if outcome.first_token is None and progress.text != turn.initial:
                            outcome.first_token = time.monotonic() - began
                        if progress.done:
                            outcome.prompt_tokens = progress.prompt_tokens
                            outcome.completion_tokens = progress.completion_tokens
                        new_notice = dropped_notice(progress.dropped_turns)
                        if new_notice != notice:
                            notice = new_notice
                            yield sse({"notice": notice})
                        if html != shown:  # the final progress usually repeats the text already sent
                            shown = html
                            yield sse({"html": html})
                except (UserFacingError, NotFound) as exc:
                    outcome.error = str(exc)
                    yield sse({"error": outcome.error})
            yield sse({"done": True})
        except Exception as exc:  # the page gets a message; the server keeps serving
            log.exception("live reply %s failed", token[:6])
            outcome.error = f"The reply failed: {exc}"
            yield sse({"error": outcome.error})
            yield sse({"done": True})
        finally:
            outcome.seconds = time.monotonic() - began
            self._finish(token, outcome)

    def _rendered(self, stream: ReplyStream) -> Iterator[tuple[Any, str]]:
        """Each progress with its HTML (rendered in the bridge's thread, off the event loop).
        Closing this closes ``stream``, which stops the model."""
        try:
            for progress in stream:
                yield progress, self.html(progress.text, getattr(progress, "display", None))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def router(replies: LiveReplies, identify: Callable[[Request], str | None] | None = None) -> APIRouter:
    """The ``live-reply/<token>`` route. ``identify``: the browser identity of a request, compared
    with the owner a turn was registered for (where each browser has its own history)."""
    api = APIRouter()

    @api.get("/live-reply/{token}", include_in_schema=False)
    async def live_reply(token: str, request: Request) -> StreamingResponse:
        turn = replies.claim(token, identify(request) if identify is not None else None)
        if turn is None:
            raise HTTPException(404, "No reply is waiting under this token: it was already streamed or has expired.")
        return StreamingResponse(
            replies.events(token, turn, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api


# The page side. STREAM_JS is a JavaScript-only Gradio event (no Python function, so Gradio shows no
# progress for it): it resolves when the reply has ended, and the next step runs after it. If a new
# reply starts while one streams (Send pressed again), the bubble shows the newest one and is hidden
# only when no stream is left.
STREAM_JS = """
async (token) => {
  const box = document.getElementById('live-reply');
  if (!token || !box) return [];
  const text = box.querySelector('.live-text'), notice = box.querySelector('.live-notice');
  const mine = () => box.dataset.token === token;
  box.dataset.token = token;
  box.dataset.active = String(Number(box.dataset.active || 0) + 1);
  text.innerHTML = ''; notice.textContent = ''; box.hidden = false;
  await new Promise((resolve) => {
    let source;
    // Gradio's root is the app's address as the browser reaches it (behind a proxy too).
    const root = ((window.gradio_config && window.gradio_config.root) || '.').replace(/[/]$/, '');
    try { source = new EventSource(root + '/live-reply/' + encodeURIComponent(token)); }
    catch (e) { resolve(); return; }
    const end = () => { source.close(); resolve(); };
    source.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (mine() && 'html' in m) { text.innerHTML = m.html; box.scrollTop = box.scrollHeight; }
      if (mine() && 'notice' in m) notice.textContent = m.notice;
      if (mine() && 'error' in m) notice.textContent = m.error;
      if (m.done) end();
    };
    source.onerror = end;  // the stream could not start or broke off: the next step shows what was stored
  });
  box.dataset.active = String(Number(box.dataset.active) - 1);
  return [];
}
"""

# After the stored message is shown: hide the bubble (only then, so the reply never blinks out).
HIDE_JS = """
() => {
  const box = document.getElementById('live-reply');
  if (box && Number(box.dataset.active || 0) === 0) {
    box.hidden = true;
    box.querySelector('.live-text').innerHTML = '';
    box.querySelector('.live-notice').textContent = '';
  }
  return [];
}
"""

LIVE_HTML = '<div id="live-reply" hidden><div class="live-notice"></div><div class="live-text prose"></div></div>'
