"""Crash soak: kill -9 the real app while replies stream, restart it on the same data dir, check.

Shared by ``bench/soak.py`` (twenty kills, prints the figures) and ``tests/integration/test_soak.py``
(three). Each round starts ``python app.py`` on the embedded model (``start_app``), checks every turn
saved so far, finishes one turn, then streams a long reply and kills the process (SIGKILL, from a
timer, a random moment after the client has a random amount of text) while the client reads it.
Rounds alternate between the UI (Gradio's ``prepare`` step, then the reply's ``live-reply`` event
stream, as the page does: ``GradioSession``) and the API (``POST /v1/chat/completions`` with ``stream`` and ``save``).

After each kill: ``PRAGMA integrity_check``, then the killed reply as stored against what the client
had received: the stored text must be a prefix of it (or the other way round, when the client was
behind), and the lag is what the client had that the store lacks: characters, and seconds from the
arrival of the oldest such text to the client's last update. The design bound is one flush interval
(``FLUSH_SECONDS``, 1 s): each flush stores all text generated so far.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from tests.support.gradio_session import GradioSession, html_text
from tests.support.server_utils import RunningApp, start_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.live_reply import markdown_renderer

Kind = Literal["ui", "api"]
LONG_PROMPT = "Write a very long story about a lighthouse keeper and a storm. Use many paragraphs."
SHORT_PROMPT = "Say hello in one short sentence."
SHORT_TOKENS = 24
LONG_TOKENS = 1500


@dataclass
class SavedTurn:
    """A reply as it was stored when its round ended: it must read the same after every restart."""

    kind: Kind
    conv_id: int
    message_id: int
    content: str
    complete: bool


@dataclass
class Partial:
    """A reply killed mid-stream: what the client had, what was stored, how far apart."""

    kind: Kind
    conv_id: int
    received_chars: int
    stored_chars: int
    lag_seconds: float
    lag_chars: int


@dataclass
class SoakResult:
    kills: int = 0
    rounds_seconds: list[float] = field(default_factory=list)
    saved: list[SavedTurn] = field(default_factory=list)
    turn_checks: int = 0  # saved turns checked, summed over restarts
    partials: list[Partial] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)  # PRAGMA integrity_check after each kill, and at the end
    problems: list[str] = field(default_factory=list)

    @property
    def completed(self) -> list[SavedTurn]:
        return [t for t in self.saved if t.complete]

    def max_lag(self) -> tuple[float, int]:
        return (max((p.lag_seconds for p in self.partials), default=0.0),
                max((p.lag_chars for p in self.partials), default=0))

    def summary(self) -> list[str]:
        lag_s, lag_c = self.max_lag()
        by_kind = {k: sum(1 for p in self.partials if p.kind == k) for k in ("ui", "api")}
        return [
            f"kills: {self.kills} (UI {by_kind['ui']}, API {by_kind['api']})",
            f"completed turns: {len(self.completed)}; saved replies (completed and cut off) checked "
            f"{self.turn_checks} times in all (every one after every later restart)",
            f"partial replies: {len(self.partials)}, stored/received chars "
            + ", ".join(f"{p.stored_chars}/{p.received_chars}" for p in self.partials),
            f"max lag of a stored partial reply behind the client: {lag_s:.2f} s, {lag_c} chars",
            f"integrity_check: {sum(r == 'ok' for r in self.integrity)}/{len(self.integrity)} ok"
            + ("" if all(r == "ok" for r in self.integrity) else f" ({self.integrity})"),
            f"problems: {len(self.problems)}" + "".join(f"\n  - {p}" for p in self.problems),
        ]


def integrity(data_dir: Path) -> str:
    """``PRAGMA integrity_check`` of the app's database (opening it recovers the WAL, as a restart does)."""
    conn = sqlite3.connect(data_dir / "webui.db")
    try:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def open_repo(data_dir: Path) -> tuple[ChatRepository, Callable[[], None]]:
    engine = open_database(sqlite_url(data_dir))
    return ChatRepository(engine), engine.dispose


def _alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text)


def comparable(kind: Kind, text: str) -> str:
    """What the client and the store are compared on. API: the text itself. UI: the page gets the reply
    rendered as HTML, so both sides are rendered and reduced to their letters and digits."""
    if kind == "api":
        return text
    return _alnum(html_text(markdown_renderer().render(text)))


def measure_partial(kind: Kind, conv_id: int, received: list[tuple[float, str]], stored: str) -> Partial | str:
    """The lag of ``stored`` behind the client's ``received`` (arrival time, comparable text so far),
    or a problem description when the two disagree."""
    have = received[-1][1] if received else ""
    mine = comparable(kind, stored)
    if not (have.startswith(mine) or mine.startswith(have)):
        return f"{kind} chat {conv_id}: stored {mine[:80]!r}... is not what the client received {have[:80]!r}..."
    if len(mine) >= len(have) or not received:
        return Partial(kind, conv_id, len(have), len(mine), 0.0, 0)
    # The oldest text the client had that the store lacks arrived with the first update longer than
    # the stored text: how long before the kill (the client's last update) that was is the loss.
    first_unsaved = next(t for t, text in received if len(text) > len(mine))
    return Partial(kind, conv_id, len(have), len(mine), received[-1][0] - first_unsaved, len(have) - len(mine))


class Killer:
    """SIGKILL ``pid`` ``delay`` seconds after the client has ``after_chars`` characters of the reply
    (unless ``cancel()``ed first): a kill at a random point of a flush interval, with text to lose."""

    def __init__(self, pid: int, after_chars: int, delay: float) -> None:
        self.pid = pid
        self.after_chars = after_chars
        self.delay = delay
        self.fired = threading.Event()
        self._timer: threading.Timer | None = None

    def received(self, chars: int) -> None:
        if self._timer is None and chars >= self.after_chars:
            self._timer = threading.Timer(self.delay, self._kill)
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had already exited
            return
        self.fired.set()


class SoakRound:
    """One start of the app: check what is saved, finish a turn, stream a reply and kill the app in it."""

    def __init__(self, app: RunningApp, kind: Kind, index: int, rng: random.Random, result: SoakResult,
                 kill_after_chars: tuple[int, int], kill_window: tuple[float, float]) -> None:
        self.app = app
        self.kind = kind
        self.index = index
        self.rng = rng
        self.result = result
        self.kill_after_chars = kill_after_chars
        self.kill_window = kill_window
        self.model = httpx.get(f"{app.url}/v1/models", timeout=30).json()["data"][0]["id"]

    # -- one reply each way: (conv id, [(arrival time, comparable text so far)], finished) --------------
    def api_reply(self, prompt: str, max_tokens: int, killer: Killer | None) -> tuple[int, list[tuple[float, str]],
                                                                                        bool]:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "stream": True, "save": True,
                "max_tokens": max_tokens, "ban_eos_token": killer is not None}
        received: list[tuple[float, str]] = []
        text, finished, conv_id = "", False, -1
        try:
            with httpx.stream("POST", f"{self.app.url}/v1/chat/completions", json=body, timeout=120) as response:
                response.raise_for_status()
                conv_id = int(response.headers["X-Conversation-Id"])
                for line in response.iter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        finished = finished or line.strip() == "data: [DONE]"
                        continue
                    chunk = json.loads(line[5:])
                    if "error" in chunk:
                        raise RuntimeError(f"stream error: {chunk['error']}")
                    delta = chunk["choices"][0]["delta"].get("content") or ""
                    if delta:
                        text += delta
                        received.append((time.perf_counter(), text))
                        if killer is not None:
                            killer.received(len(text))
        except httpx.HTTPError:
            if killer is None or not killer.fired.is_set():
                raise
        return conv_id, received, finished

    def ui_reply(self, prompt: str, max_tokens: int, killer: Killer | None) -> tuple[int, list[tuple[float, str]],
                                                                                       bool]:
        repo, dispose = open_repo(self.app.data_dir)
        try:
            conv_id = repo.create_conversation(f"Soak UI {self.index}", character="Assistant").id
        finally:
            dispose()
        ui = GradioSession(self.app.url, f"soak-{self.index}-{time.monotonic_ns()}")
        ui.page_load()
        ui.run("open_chat", {"chat-list": conv_id})
        values = {"chat-input": prompt, "param-max_new_tokens": max_tokens, "param-ban_eos_token": killer is not None}
        received: list[tuple[float, str]] = []
        finished = False
        try:
            for now, event in ui.live_reply("prepare", values):
                if "error" in event:
                    raise RuntimeError(f"live reply error: {event['error']}")
                if "html" in event:
                    received.append((now, _alnum(html_text(event["html"]))))
                    if killer is not None:
                        killer.received(len(received[-1][1]))
                finished = finished or bool(event.get("done"))
        except httpx.HTTPError:
            if killer is None or not killer.fired.is_set():
                raise
        return conv_id, received, finished

    # -- the round -----------------------------------------------------------------------------------
    def check_saved(self) -> None:
        """Every reply saved in an earlier round reads exactly as it did (no completed turn lost)."""
        repo, dispose = open_repo(self.app.data_dir)
        try:
            for turn in self.result.saved:
                stored = next((m for m in repo.messages(turn.conv_id) if m.id == turn.message_id), None)
                self.result.turn_checks += 1
                if stored is None or stored.content != turn.content or stored.complete != turn.complete:
                    got = None if stored is None else (stored.content[:60], stored.complete)
                    self.result.problems.append(
                        f"round {self.index}: {turn.kind} chat {turn.conv_id} reply changed or lost: "
                        f"expected {(turn.content[:60], turn.complete)}, found {got}")
        finally:
            dispose()

    def remember(self, conv_id: int, received: list[tuple[float, str]], complete: bool) -> str:
        """Record the chat's last reply as saved now; returns its stored text."""
        repo, dispose = open_repo(self.app.data_dir)
        try:
            last = repo.messages(conv_id)[-1]
        finally:
            dispose()
        if last.role != "assistant":
            self.result.problems.append(f"round {self.index}: {self.kind} chat {conv_id} has no reply row")
            return ""
        if complete and comparable(self.kind, last.content) != (received[-1][1] if received else ""):
            self.result.problems.append(
                f"round {self.index}: {self.kind} chat {conv_id}: the finished reply stored differs from the client's")
        if complete != last.complete:
            self.result.problems.append(f"round {self.index}: {self.kind} chat {conv_id}: complete={last.complete}")
        self.result.saved.append(SavedTurn(self.kind, conv_id, last.id, last.content, last.complete))
        return last.content

    def run(self) -> None:
        self.check_saved()
        reply = self.ui_reply if self.kind == "ui" else self.api_reply
        conv_id, received, finished = reply(SHORT_PROMPT, SHORT_TOKENS, None)
        if not finished:
            self.result.problems.append(f"round {self.index}: the {self.kind} turn did not finish")
        self.remember(conv_id, received, complete=True)
        for _ in range(3):  # a reply that ends before the kill is one more completed turn; try again
            killer = Killer(self.app.proc.pid, self.rng.randint(*self.kill_after_chars),
                            self.rng.uniform(*self.kill_window))
            try:
                conv_id, received, finished = reply(LONG_PROMPT, LONG_TOKENS, killer)
            finally:
                killer.cancel()
            if killer.fired.is_set():
                break
            self.remember(conv_id, received, complete=True)
        else:
            raise RuntimeError(f"round {self.index}: no reply lasted long enough to be killed")
        self.app.proc.wait(timeout=30)
        self.result.kills += 1
        self.result.integrity.append(integrity(self.app.data_dir))
        stored = self.remember(conv_id, received, complete=finished)
        if finished:  # the kill came just after the reply's end: a completed turn, not a partial one
            return
        measured = measure_partial(self.kind, conv_id, received, stored)
        if isinstance(measured, str):
            self.result.problems.append(f"round {self.index}: {measured}")
        else:
            self.result.partials.append(measured)


def soak(data_dir: Path, kills: int, *, seed: int = 0, kill_after_chars: tuple[int, int] = (20, 200),
         kill_window: tuple[float, float] = (0.0, 1.5), log: Callable[[str], None] = lambda line: None) -> SoakResult:
    """Run ``kills`` rounds (UI and API alternately) on ``data_dir``, then a last start that checks
    everything once more and stops cleanly. Each kill comes a random ``kill_window`` seconds after the
    client has a random ``kill_after_chars`` characters of the reply (more than a flush interval)."""
    rng = random.Random(seed)
    result = SoakResult()
    for index in range(kills):
        started = time.perf_counter()
        app = start_app(data_dir)
        try:
            SoakRound(app, "ui" if index % 2 == 0 else "api", index, rng, result, kill_after_chars, kill_window).run()
        finally:
            app.stop()
        result.rounds_seconds.append(time.perf_counter() - started)
        last = result.partials[-1] if result.partials else None
        log(f"round {index + 1}/{kills}: {result.rounds_seconds[-1]:.1f} s, integrity {result.integrity[-1:]}, "
            f"last partial {last}")
    app = start_app(data_dir)
    try:
        SoakRound(app, "api", kills, rng, result, kill_after_chars, kill_window).check_saved()
    finally:
        app.stop()
    result.integrity.append(integrity(data_dir))
    return result
