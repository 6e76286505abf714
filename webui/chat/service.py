"""ChatService: one user turn from text in to a streamed, persisted reply out.

UI, API and CLI all call this, so a reply is built, generated and stored the same way
whichever door it came through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from webui.chat.characters import DEFAULT_CHARACTER, CharacterLibrary
from webui.chat.prompt import BuiltPrompt, build_messages
from webui.chat.character import Character, substitute_macros
from webui.engine.engine import Engine
from webui.engine.worker import GenerationHandle
from webui.generation.params import GenerationParams
from webui.storage.repository import ChatRepository, ConversationRecord

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
TITLE_CHARS = 48


@dataclass
class ReplyProgress:
    """The reply so far; ``done`` on the last one, with why it ended."""

    text: str
    done: bool = False
    finish_reason: str | None = None
    dropped_turns: int = 0
    prompt_tokens: int = 0  # set on the last progress
    completion_tokens: int = 0  # set on the last progress


class ChatService:
    def __init__(self, engine: Engine, repo: ChatRepository, characters: CharacterLibrary, user_name: str = "You") -> None:
        self.engine = engine
        self.repo = repo
        self.characters = characters
        self.user_name = user_name
        self._active: dict[str, GenerationHandle] = {}
        self._lock = threading.Lock()

    def new_conversation(self, character: str = DEFAULT_CHARACTER, user_id: int | None = None) -> ConversationRecord:
        """Create a chat and store the character's greeting as its first message."""
        char = self.characters.get(character)
        conv = self.repo.create_conversation(title="New chat", character=char.name, user_id=user_id)
        greetings = char.greetings()
        if greetings:
            self.repo.add_message(conv.id, "assistant", substitute_macros(greetings[0], char.name, self.user_name), user_id)
        return conv

    def build_prompt(self, conv_id: int, user_id: int | None = None, reserve_tokens: int = 512) -> BuiltPrompt:
        """The messages the model will see for the reply being written at the end of the chat.

        An empty trailing assistant message (the reply being generated) is left out; the
        oldest turns are dropped while the prompt plus ``reserve_tokens`` exceeds the context.
        """
        conv = self.repo.get_conversation(conv_id, user_id)
        history = [(m.role, m.content) for m in self.repo.messages(conv_id, user_id)]
        if history and history[-1][0] == "assistant" and not history[-1][1]:
            history = history[:-1]
        model = self.engine.model

        def fits(messages: list[dict[str, str]]) -> bool:
            budget = model.context_length - reserve_tokens if model else 0
            return self.engine.count_tokens(self.engine.format_chat(messages)) <= budget

        return build_messages(
            self.characters.get(conv.character), history, user_name=self.user_name, fits=fits if model else None
        )

    def send(
        self,
        conv_id: int,
        text: str,
        params: GenerationParams,
        *,
        session_key: str = "",
        user_id: int | None = None,
        min_interval: float = 0.0,
    ) -> Iterator[ReplyProgress]:
        """Store the user's message, generate the reply, persist it while it streams.

        Yields the reply so far at most every ``min_interval`` seconds (a UI sets this to
        coalesce tokens into fewer screen updates), and a final ``done`` progress.
        """
        conv = self.repo.get_conversation(conv_id, user_id)
        if conv.title == "New chat" and text.strip():
            self.repo.rename_conversation(conv_id, _title_from(text), user_id)
        ids = self.repo.start_turn(conv_id, text, user_id)
        try:
            built = self.build_prompt(conv_id, user_id, reserve_tokens=params.max_new_tokens)
        except Exception:
            self.repo.update_version(ids.reply_version_id, "", complete=True)
            raise
        handle = self.engine.chat(built.messages, params)
        yield from self._stream(handle, ids.reply_version_id, session_key, min_interval, built.dropped_turns)

    def answer(
        self,
        history: list[tuple[str, str]],
        params: GenerationParams,
        *,
        character: str | None = None,
        session_key: str = "",
        min_interval: float = 0.0,
    ) -> Iterator[ReplyProgress]:
        """Reply to a history the caller holds (the API without saving): the same prompt building
        and generation as ``send``, nothing stored. ``character`` None: the messages as given."""
        model = self.engine.model

        def fits(messages: list[dict[str, str]]) -> bool:
            budget = model.context_length - params.max_new_tokens if model else 0
            return self.engine.count_tokens(self.engine.format_chat(messages)) <= budget

        char = self.characters.get(character) if character is not None else Character(name="Assistant")
        built = build_messages(char, history, user_name=self.user_name, fits=fits if model else None)
        handle = self.engine.chat(built.messages, params)
        yield from self._stream(handle, None, session_key, min_interval, built.dropped_turns)

    def _stream(
        self, handle: GenerationHandle, version_id: int | None, session_key: str, min_interval: float, dropped: int
    ) -> Iterator[ReplyProgress]:
        with self._lock:
            previous = self._active.get(session_key)
            self._active[session_key] = handle
        if previous is not None:
            previous.cancel()
        reply = ""
        last_flush = last_yield = time.monotonic()
        try:
            while True:
                delta, finished = handle.drain(timeout=0.25)
                reply += delta
                now = time.monotonic()
                if finished:
                    break
                if version_id is not None and now - last_flush >= FLUSH_SECONDS:
                    self.repo.update_version(version_id, reply, complete=False)
                    last_flush = now
                if delta and now - last_yield >= min_interval:
                    last_yield = now
                    yield ReplyProgress(reply, dropped_turns=dropped)
                    if min_interval:
                        # Let tokens pile up instead of waking per token.
                        time.sleep(max(0.0, min_interval - (time.monotonic() - now)))
        finally:
            if not handle.done.is_set():
                log.info("reply to %r abandoned by its reader after %d chars; stopping", session_key, len(reply))
            handle.cancel()  # a no-op when finished; stops the model if the consumer went away
            if version_id is not None:
                self.repo.update_version(version_id, reply, complete=True)
            with self._lock:
                if self._active.get(session_key) is handle:
                    del self._active[session_key]
        stats = handle.stats
        yield ReplyProgress(reply, done=True, finish_reason=stats.finish_reason, dropped_turns=dropped,
                            prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens)

    def stop(self, session_key: str) -> bool:
        """Stop the reply streaming to ``session_key``; True if there was one."""
        with self._lock:
            handle = self._active.get(session_key)
        if handle is None:
            return False
        handle.cancel()
        return True


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
