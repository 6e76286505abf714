"""ChatService: one turn from text in to a streamed, persisted reply out.

UI, API and CLI all call this, so a reply is built, generated and stored the same way
whichever door it came through. Every action (send, regenerate, continue, impersonate,
show prompt) runs the same steps, in ``_generate``:

1. state: the chat's setup (character, persona, mode, template) and the generation params
2. history: the stored messages the reply follows
3. input text: the user's new message (send) or a reply prefix (continue / "start reply with")
4. prompt: ``webui.chat.prompt.build_prompt`` renders the exact text the model sees
5. generate: ``Engine.generate`` on the one inference worker, streamed
6. output text: persisted while streaming (flushed at most once a second)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from webui.chat.character import Character, substitute_macros
from webui.chat.characters import DEFAULT_CHARACTER, CharacterLibrary
from webui.chat.hooks import PreparedPrompt, Turn, TurnHooks
from webui.chat.instruct import MODEL_TEMPLATE, InstructionTemplates
from webui.chat.prompt import MODES, ChatSetup, Goal, PromptResult, PromptTools, build_prompt
from webui.chat.reply_stream import ActiveReplies, ReplyProgress, StreamPacing, completion_progress, stream_reply
from webui.chat.reply_writer import TURN_NOT_SAVED, ReplyWriter
from webui.engine.engine import Engine
from webui.engine.worker import GenerationHandle
from webui.errors import DiskFullError, UserFacingError
from webui.generation.params import GenerationParams
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository, ConversationRecord, NotFound

if TYPE_CHECKING:
    from webui.plugins.manager import ExtensionManager

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
TITLE_CHARS = 48
_DEFAULT_PARAMS = GenerationParams().model_dump()


class ChatActionError(UserFacingError):
    """An action that does not apply to the chat as it is (e.g. Continue with no reply)."""


class ChatService:
    def __init__(
        self,
        engine: Engine,
        repo: ChatRepository,
        characters: CharacterLibrary,
        user_name: str = "You",
        personas: PersonaRepository | None = None,
        templates: InstructionTemplates | None = None,
        extensions: ExtensionManager | None = None,
    ) -> None:
        self.engine = engine
        self.repo = repo
        self.characters = characters
        self.user_name = user_name
        self.personas = personas
        self.templates = templates
        self.hooks = TurnHooks(extensions)  # extension hooks at each step (webui/chat/hooks.py)
        self.replies = ActiveReplies()  # the generation streaming to each session, to stop it

    # -- chats and their settings ------------------------------------------------------
    def new_conversation(
        self,
        character: str = DEFAULT_CHARACTER,
        user_id: int | None = None,
        *,
        persona: str | None = None,
        mode: str | None = None,
        greeting: int = 0,
    ) -> ConversationRecord:
        """Create a chat and store the chosen greeting (first_mes or an alternate) as its first message."""
        char = self.characters.get(character)
        settings: dict[str, Any] = {"greeting": greeting}
        if persona:
            settings["persona"] = persona
        if mode:
            settings["mode"] = self._check_mode(mode)
        conv = self.repo.create_conversation(title="New chat", character=char.name, user_id=user_id, settings=settings)
        greetings = char.greetings()
        if greetings:
            text = greetings[min(max(greeting, 0), len(greetings) - 1)]
            self.repo.add_message(
                conv.id, "assistant", substitute_macros(text, char.name, self._user_name(persona, user_id)), user_id
            )
        return self.repo.get_conversation(conv.id, user_id)

    def configure(self, conv_id: int, user_id: int | None = None, **changes: Any) -> ConversationRecord:
        """Change a chat's character / persona / mode / template / greeting; stored in the database.

        A new greeting replaces the opening message while the chat holds nothing else.
        """
        if "mode" in changes and changes["mode"] is not None:
            self._check_mode(changes["mode"])
        character = changes.pop("character", None)
        if character is not None:
            character = self.characters.get(character).name
        conv = self.repo.update_settings(conv_id, changes, user_id, character=character)
        if "greeting" in changes or character is not None:
            msgs = self.repo.messages(conv_id, user_id)
            if len(msgs) <= 1 and all(m.role == "assistant" for m in msgs):
                char = self.characters.get(conv.character)
                greetings = char.greetings()
                idx = int(conv.settings.get("greeting", 0) or 0)
                text = greetings[min(max(idx, 0), len(greetings) - 1)] if greetings else ""
                text = substitute_macros(text, char.name, self._user_name(conv.settings.get("persona"), user_id))
                if msgs:
                    self.repo.edit_message(msgs[0].id, text, user_id)
                elif text:
                    self.repo.add_message(conv_id, "assistant", text, user_id)
        return conv

    @staticmethod
    def stored_params(conv: ConversationRecord) -> GenerationParams | None:
        """The generation parameters of the chat's last reply (stored by each send / regenerate /
        continue as the values that differ from the defaults), or None when it has none yet.

        Fields this version does not know are skipped; unreadable values give None, so opening
        such a chat leaves the Parameters tab as it is.
        """
        stored = conv.settings.get("params")
        if not isinstance(stored, dict):
            return None
        known = {k: v for k, v in stored.items() if k in GenerationParams.model_fields}
        try:
            return GenerationParams(**{**_DEFAULT_PARAMS, **known})
        except ValidationError as exc:
            log.warning("chat %s has unreadable stored parameters (%s); not restoring them", conv.id, exc)
            return None

    @staticmethod
    def _check_mode(mode: str) -> str:
        if mode not in MODES:
            raise ChatActionError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
        return mode

    def _user_name(self, persona: str | None, user_id: int | None) -> str:
        return persona if persona and self._persona(persona, user_id) is not None else self.user_name

    def _persona(self, name: str | None, user_id: int | None):  # type: ignore[no-untyped-def]
        if not name or self.personas is None:
            return None
        return self.personas.get(name, user_id)

    def setup_for(
        self, character: str | None, persona: str | None = None, mode: str | None = None, user_id: int | None = None
    ) -> ChatSetup:
        """Step 1 (state): the prompt setup for a character, persona and mode."""
        rec = self._persona(persona, user_id)
        char = self.characters.get(character) if character is not None else Character(name=DEFAULT_CHARACTER)
        return ChatSetup(
            character=char,
            user_name=rec.name if rec else self.user_name,
            persona_description=rec.description if rec else "",
            mode=self._check_mode(mode or ("chat" if character is not None else "instruct")),  # type: ignore[arg-type]
        )

    def _tools(self, params: GenerationParams, template: str | None) -> PromptTools:
        info = self.engine.model_info
        if template and template != MODEL_TEMPLATE and self.templates is not None:
            templates = self.templates

            def format_chat(messages: list[dict[str, str]]) -> str:
                return templates.render(template, messages)
        else:
            format_chat = self.engine.format_chat
        budget = None
        if info is not None:
            budget = (params.truncation_length or info.context_length) - params.max_new_tokens
        return PromptTools(format_chat, lambda t: self.hooks.tokenized_length(t, self.engine.count_tokens), budget)

    # -- prompts -----------------------------------------------------------------------
    def _history(self, conv_id: int, user_id: int | None) -> list[tuple[str, str]]:
        """Step 2: the stored history (text of each message's active version)."""
        return [(m.role, m.content) for m in self.repo.messages(conv_id, user_id)]

    def chat_prompt(
        self,
        conv: ConversationRecord,
        history: list[tuple[str, str]],
        params: GenerationParams,
        *,
        goal: Goal = "reply",
        prefix: str = "",
        user_id: int | None = None,
        turn: Turn | None = None,
    ) -> PromptResult:
        """Step 4: the exact prompt for the reply after ``history`` in chat ``conv``."""
        s = conv.settings
        setup = self.setup_for(conv.character, s.get("persona"), s.get("mode") or "chat", user_id)
        if turn is not None and turn.system_message is not None:  # set by an extension's state_modifier
            setup.system_message = turn.system_message
        return build_prompt(setup, history, self._tools(params, s.get("template")), goal=goal, prefix=prefix)

    def show_prompt(self, conv_id: int, params: GenerationParams, user_id: int | None = None) -> PromptResult:
        """The prompt the last reply was (or a regenerate would be) generated from.

        With no reply at the end, the prompt for the next reply to the history as it stands.
        """
        conv = self.repo.get_conversation(conv_id, user_id)
        history = self._history(conv_id, user_id)
        if history and history[-1][0] == "assistant" and len(history) > 1:
            history = history[:-1]
        return self.chat_prompt(conv, history, params, user_id=user_id)

    def api_prompt(
        self,
        messages: list[tuple[str, str]],
        params: GenerationParams,
        *,
        character: str | None = None,
        mode: str | None = None,
        persona: str | None = None,
        template: str | None = None,
        user_id: int | None = None,
    ) -> PromptResult:
        """The prompt for a caller-held history (API). System messages become the setup's system message."""
        setup = self.setup_for(character, persona, mode, user_id)
        setup.system_message = "\n\n".join(c for r, c in messages if r == "system")
        history = [(r, c) for r, c in messages if r != "system"]
        return build_prompt(setup, history, self._tools(params, template))

    # -- actions -----------------------------------------------------------------------
    def send(
        self,
        conv_id: int,
        text: str,
        params: GenerationParams,
        *,
        session_key: str = "",
        user_id: int | None = None,
        min_interval: float = 0.0,
        start_with: str = "",
    ) -> Iterator[ReplyProgress]:
        """Store the user's message, generate the reply, persist it while it streams.

        ``start_with`` is text the reply must begin with; the model writes on from it. Yields
        the reply so far at most every ``min_interval`` seconds (a UI coalesces tokens into
        fewer screen updates), and a final ``done`` progress.
        """
        conv = self.repo.get_conversation(conv_id, user_id)
        turn = self.hooks.begin_chat(text, params, **self._hook_info(conv, self._history(conv_id, user_id), user_id))
        text = turn.visible_text  # stored and shown; turn.text is what this turn's prompt sees
        history = self._history(conv_id, user_id) + [("user", text)]
        try:
            if conv.title == "New chat" and text.strip():
                self.repo.rename_conversation(conv_id, _title_from(text), user_id)
            ids = self.repo.start_turn(conv_id, text, user_id)
        except DiskFullError as exc:
            raise DiskFullError(TURN_NOT_SAVED) from exc
        yield from self._generate(
            conv,
            history,
            params,
            ids.reply_version_id,
            session_key,
            min_interval,
            user_id,
            prefix=start_with,
            turn=turn,
        )

    def regenerate(
        self,
        conv_id: int,
        params: GenerationParams,
        *,
        session_key: str = "",
        user_id: int | None = None,
        min_interval: float = 0.0,
        start_with: str = "",
    ) -> Iterator[ReplyProgress]:
        """A new version of the last reply; earlier versions are kept (switch with ``set_active_version``)."""
        conv = self.repo.get_conversation(conv_id, user_id)
        msgs = self.repo.messages(conv_id, user_id)
        if len(msgs) < 2 or msgs[-1].role != "assistant":
            raise ChatActionError("There is no reply to regenerate: send a message first.")
        history = [(m.role, m.content) for m in msgs[:-1]]
        version_id = self.repo.add_version(msgs[-1].id, user_id)
        yield from self._generate(
            conv, history, params, version_id, session_key, min_interval, user_id, prefix=start_with
        )

    def continue_reply(
        self,
        conv_id: int,
        params: GenerationParams,
        *,
        session_key: str = "",
        user_id: int | None = None,
        min_interval: float = 0.0,
    ) -> Iterator[ReplyProgress]:
        """Extend the last reply: the model writes on from its current text (stored in the same version)."""
        conv = self.repo.get_conversation(conv_id, user_id)
        msgs = self.repo.messages(conv_id, user_id)
        if not msgs or msgs[-1].role != "assistant":
            raise ChatActionError("There is no reply to continue: send a message first.")
        last = msgs[-1]
        history = [(m.role, m.content) for m in msgs[:-1]]
        yield from self._generate(
            conv, history, params, last.version_id, session_key, min_interval, user_id, prefix=last.content
        )

    def impersonate(
        self,
        conv_id: int,
        params: GenerationParams,
        *,
        session_key: str = "",
        user_id: int | None = None,
        min_interval: float = 0.0,
        start_with: str = "",
    ) -> Iterator[ReplyProgress]:
        """The model writes the user's next message (not stored: it goes into the textbox)."""
        conv = self.repo.get_conversation(conv_id, user_id)
        history = self._history(conv_id, user_id)
        yield from self._generate(
            conv, history, params, None, session_key, min_interval, user_id, prefix=start_with, goal="impersonate"
        )

    def answer(
        self,
        history: list[tuple[str, str]],
        params: GenerationParams,
        *,
        character: str | None = None,
        mode: str | None = None,
        persona: str | None = None,
        session_key: str = "",
        min_interval: float = 0.0,
        user_id: int | None = None,
        version_id: int | None = None,
    ) -> Iterator[ReplyProgress]:
        """Reply to a history the caller holds (the API): the same prompt building and generation
        as ``send``. ``character`` None: the messages as given. Nothing is stored unless
        ``version_id`` names a reply row (from ``repo.start_turn``) to write the reply into."""
        prepared = self.prepare_answer(history, params, character=character, mode=mode, persona=persona,
                                       user_id=user_id)
        handle = self.hooks.generate_prepared(self.engine, prepared)
        turn = prepared.turn
        yield from self.hooks.outputs(
            self._stream(handle, version_id, session_key, min_interval, prepared.built.dropped_turns),
            turn,
            lambda t, shown: version_id is not None and self.repo.update_version(version_id, t, complete=True,
                                                                                 display=shown),
        )

    def prepare_answer(self, history: list[tuple[str, str]], params: GenerationParams, *,
                       character: str | None = None, mode: str | None = None, persona: str | None = None,
                       template: str | None = None, user_id: int | None = None) -> PreparedPrompt:
        """Every hook a turn runs before generating, and the prompt the model is sent: ``answer``
        generates from it, ``POST /v1/internal/chat-prompt`` returns its ``prompt``."""
        last = history[-1][1] if history and history[-1][0] == "user" else ""
        turn = self.hooks.begin_chat(last, params, character=character or "", mode=mode or "instruct",
                                     history=history[:-1] if last else history)
        return self.hooks.prepare(turn, history, lambda h, p: self.api_prompt(
            h, p, character=character, mode=mode, persona=persona, template=template, user_id=user_id))

    def answer_saved(
        self,
        history: list[tuple[str, str]],
        params: GenerationParams,
        *,
        character: str | None = None,
        mode: str | None = None,
        persona: str | None = None,
        session_key: str = "",
        user_id: int | None = None,
    ) -> tuple[int, Iterator[ReplyProgress]]:
        """Store a caller-held history as a new chat at once, then reply into it (the API's ``save``):
        the chat's id and the reply's progress. The last message is the turn being answered."""
        settings: dict[str, Any] = {"mode": mode or ("chat" if character else "instruct")}
        if persona:
            settings["persona"] = persona
        first_user = next((c for r, c in history if r == "user"), "API chat")
        title = " ".join(first_user.split())[:TITLE_CHARS] or "API chat"
        last_role, last_text = history[-1]
        try:
            conv = self.repo.create_conversation(title=title, character=character or DEFAULT_CHARACTER,
                                                 user_id=user_id, settings=settings)
            for role, content in history[:-1]:
                self.repo.add_message(conv.id, role, content, user_id)
            if last_role != "user":
                self.repo.add_message(conv.id, last_role, last_text, user_id)
            ids = self.repo.start_turn(conv.id, last_text if last_role == "user" else None, user_id)
        except DiskFullError as exc:
            raise DiskFullError(TURN_NOT_SAVED) from exc
        return conv.id, self.answer(history, params, character=character, mode=mode, persona=persona,
                                    session_key=session_key, user_id=user_id, version_id=ids.reply_version_id)

    def complete(self, prompt: str, params: GenerationParams, *, session_key: str = "") -> Iterator[ReplyProgress]:
        """A completion of a raw prompt (no chat template), with the extension hooks; the API's
        text completions. Queued at once (a hook's error is raised here, before anything streams);
        ``stop(session_key)`` or closing the iterator cancels it."""
        completion = self.hooks.complete(self.engine, prompt, params)
        self.replies.track(session_key, completion.handle)
        return completion_progress(completion, session_key, self.replies)

    def has_conversation(self, conv_id: int, user_id: int | None = None) -> bool:
        try:
            return self.repo.get_conversation(conv_id, user_id) is not None
        except NotFound:
            return False

    def has_persona(self, name: str, user_id: int | None = None) -> bool:
        return self._persona(name, user_id) is not None

    def _generate(
        self,
        conv: ConversationRecord,
        history: list[tuple[str, str]],
        params: GenerationParams,
        version_id: int | None,
        session_key: str,
        min_interval: float,
        user_id: int | None,
        *,
        prefix: str = "",
        goal: Goal = "reply",
        turn: Turn | None = None,
    ) -> Iterator[ReplyProgress]:
        """Steps 4-6: prompt, generate, stream and persist into ``version_id`` (None: not stored)."""
        try:
            if version_id is not None:
                self.repo.update_settings(conv.id, {"params": _non_default(params)}, user_id)
            turn = turn or self.hooks.begin_chat("", params, **self._hook_info(conv, history, user_id, goal))
            prepared = self.hooks.prepare(turn, history, lambda h, p: self.chat_prompt(
                conv, h, p, goal=goal, prefix=prefix, user_id=user_id, turn=turn))
            built = prepared.built
            handle = self.hooks.generate_prepared(self.engine, prepared)
        except Exception:
            if version_id is not None:
                self.repo.update_version(version_id, prefix, complete=True)
            raise
        stream = self._stream(handle, version_id, session_key, min_interval, built.dropped_turns, prefix=prefix)
        yield from self.hooks.outputs(stream, turn, lambda t, shown: version_id is not None
                                      and self.repo.update_version(version_id, t, complete=True, display=shown))

    def _hook_info(
        self, conv: ConversationRecord, history: list[tuple[str, str]], user_id: int | None, goal: str = "reply"
    ) -> dict[str, Any]:
        """What the extension hooks' ``state`` says about this chat (see TurnHooks.make_state)."""
        s = conv.settings
        return {"character": conv.character, "user_name": self._user_name(s.get("persona"), user_id),
                "mode": s.get("mode") or "chat", "history": history, "conversation_id": conv.id,
                "chat_settings": s, "goal": goal}

    def _stream(self, handle: GenerationHandle, version_id: int | None, session_key: str, min_interval: float,
                dropped: int, *, prefix: str = "") -> Iterator[ReplyProgress]:
        """The generation read and stored into ``version_id`` (None: not stored) as it streams."""
        writer = ReplyWriter(self.repo, version_id, FLUSH_SECONDS, started=time.monotonic())
        return stream_reply(handle, writer, session_key, self.replies, StreamPacing(min_interval, dropped),
                            prefix=prefix)

    def stop_matching(self, prefix: str) -> int:
        """Stop every reply whose session key starts with ``prefix`` (``api:``: the API's); how many."""
        return self.replies.stop_matching(prefix)

    def stop(self, session_key: str) -> bool:
        """Stop the reply streaming to ``session_key``; True if there was one."""
        return self.replies.stop(session_key)


def _non_default(params: GenerationParams) -> dict[str, Any]:
    return {k: v for k, v in params.model_dump().items() if _DEFAULT_PARAMS.get(k) != v}


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
