"""Where the extension hooks run in a turn: one orchestrator used by ChatService and the API.

Chat turn (``ChatService.send``), in order::

    begin_chat          state_modifier, chat_input_modifier, input_modifier(is_chat=True)
    modify_history      history_modifier (then the turn's internal text replaces the stored,
                        visible one in the last user message, for this prompt only)
    tokenized_length    custom_tokenized_length (context truncation)
    prepare             the above two, then custom_generate_chat_prompt, else the model's chat
                        template + bot_prefix_modifier: the prompt the model is sent (also what
                        ``POST /v1/internal/chat-prompt`` returns, through the same function)
    generate_prepared   custom_generate_reply, else the model with DecodeHooks (samplers,
                        logits_processor_modifier, tokenizer_modifier)
    outputs             output_modifier(is_chat=True) on every streamed update and the final text

Raw completions (``/v1/completions``, no chat): ``complete(engine, prompt, params)`` runs
state_modifier, input_modifier(is_chat=False), custom_generate_reply or the model with the same
DecodeHooks, and its ``deltas()``/``text()`` apply output_modifier(is_chat=False).

Storage: a message has one text. The user's message is stored as ``visible_text`` (what the
chat shows); the internal ``text`` is what this turn's prompt sees. The reply is stored after this
app's extensions' output_modifier; what the output_modifier of extensions written for
text-generation-webui makes of it is only drawn by the chat (the version's ``display``, upstream's
``visible`` text): prompts, the API and exports get the stored text. The text a bot_prefix_modifier
adds steers the model but is not part of the reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from webui.compat.history import history_messages
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.plugins.samplers import LogitsProcessor, SamplerContext

if TYPE_CHECKING:
    from webui.chat.prompt import PromptResult
    from webui.engine.engine import Engine
    from webui.engine.worker import GenerationHandle
    from webui.plugins.manager import ExtensionManager

log = logging.getLogger(__name__)

Message = dict[str, str]
P = TypeVar("P")

_PARAM_FIELDS = frozenset(GenerationParams.model_fields)

# Builds the prompt for a history (``(role, text)`` pairs) with the turn's setup: the chat's
# character, persona, mode, template and context budget.
BuildPrompt = Callable[[list[tuple[str, str]], GenerationParams], "PromptResult"]


@dataclass
class Turn:
    """One generation as the hooks see it."""

    params: GenerationParams
    state: dict[str, Any]
    text: str = ""  # the user's input as the prompt sees it
    visible_text: str = ""  # the user's input as stored and shown
    is_chat: bool = True
    system_message: str | None = None  # set by a state_modifier through state["system_message"]
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedPrompt:
    """What one chat turn sends to the model, before generation starts."""

    turn: Turn
    built: PromptResult  # the rendered history (messages, dropped turns, stop strings)
    prompt: str  # the text the model is sent: custom_generate_chat_prompt's, or built.prompt + bot prefix
    params: GenerationParams  # the turn's parameters plus the prompt's stop strings


def with_stops(params: GenerationParams, stops: list[str]) -> GenerationParams:
    extra = [s for s in stops if s not in params.stop]
    return params.model_copy(update={"stop": [*params.stop, *extra]}) if extra else params


def split_sampler_fields(body: dict[str, Any], sampler_keys: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a flat request body into (other fields, sampler values).

    API requests carry extension sampler parameters flat, as other servers do (``"dry_multiplier":
    0.8``); ``sampler_keys`` are ``[p.key for p in manager.sampler_params()]``. An explicit
    ``"samplers": {...}`` object is merged in too (flat fields win).
    """
    keys = set(sampler_keys)
    rest = {k: v for k, v in body.items() if k not in keys and k != "samplers"}
    samplers = dict(body.get("samplers") or {})
    samplers.update({k: v for k, v in body.items() if k in keys})
    return rest, samplers


class TurnHooks:
    """Runs the enabled extensions' hooks at the right points of a turn; a no-op without any."""

    def __init__(self, extensions: ExtensionManager | None) -> None:
        self.extensions = extensions

    def _has(self, hook: str) -> bool:
        return self.extensions is not None and bool(self.extensions.implementers(hook))

    # ----------------------------------------------------------------- state

    def make_state(self, params: GenerationParams, *, character: str = "", user_name: str = "You",
                   mode: str = "chat", history: Sequence[tuple[str, str]] = (), context: str = "",
                   conversation_id: int | None = None, chat_settings: dict[str, Any] | None = None,
                   goal: str = "reply") -> dict[str, Any]:
        """text-generation-webui's ``state``: the generation parameters (sampler values flat too)
        plus ``name1`` (user), ``name2``/``character_menu`` (character), ``mode``, ``context``
        (the character's context, read-only), ``system_message`` (settable: leads the character
        context in chat modes, replaces the system prompt in instruct mode), ``history``
        (``{"role", "content"}`` messages), ``conversation_id``, ``chat_settings`` (the chat's
        stored settings), ``goal`` (reply / impersonate).
        """
        state: dict[str, Any] = params.model_dump()
        state.update(params.samplers)
        state.update(
            name1=user_name, name2=character, character_menu=character, mode=mode, goal=goal,
            context=context, system_message="", history=[{"role": r, "content": c} for r, c in history],
            custom_stopping_strings=list(params.stop), stream=True,
            conversation_id=conversation_id, chat_settings=dict(chat_settings or {}),
        )
        return state

    def modify_state(self, state: dict[str, Any], params: GenerationParams) -> tuple[dict[str, Any], GenerationParams]:
        """state_modifier, then the parameters the state now asks for."""
        if not self._has("state_modifier"):
            return state, params
        assert self.extensions is not None
        new_state = self.extensions.pipe("state_modifier", state=state)
        if not isinstance(new_state, dict):
            log.warning("state_modifier returned %s, not a dict; ignored", type(new_state).__name__)
            return state, params
        changed = {k: new_state[k] for k in _PARAM_FIELDS if k in new_state and new_state[k] != state.get(k)}
        samplers = {k: new_state[k] for k in params.samplers if k in new_state}
        keys = {p.key for p in self.extensions.sampler_params()}
        samplers.update({k: new_state[k] for k in keys if k in new_state and new_state[k] != state.get(k)})
        if changed or samplers != params.samplers:
            try:
                params = GenerationParams.model_validate(
                    {**params.model_dump(), **changed, "samplers": {**params.samplers, **samplers}})
            except ValueError as exc:
                log.warning("state_modifier asked for invalid parameters, ignored: %s", exc)
        return new_state, params

    def begin_chat(self, text: str, params: GenerationParams, **state_info: Any) -> Turn:
        """state_modifier, then (when ``text`` is a new message) chat_input_modifier and
        input_modifier(is_chat=True). ``state_info``: make_state's keyword arguments."""
        state = self.make_state(params, **state_info)
        state, params = self.modify_state(state, params)
        turn = Turn(params, state, text, text, is_chat=True)
        if state.get("system_message"):
            turn.system_message = str(state["system_message"])
        if self.extensions is None:
            return turn
        if text and self._has("chat_input_modifier"):
            internal, visible = self.extensions.pipe("chat_input_modifier", text=text, visible_text=text, state=state)
            turn.text, turn.visible_text = str(internal), str(visible)
        if turn.text and self._has("input_modifier"):
            turn.text = str(self.extensions.pipe("input_modifier", string=turn.text, state=state, is_chat=True))
        return turn

    # ----------------------------------------------------------------- prompt

    def modify_history(self, history: Sequence[tuple[str, str]], turn: Turn | None) -> list[tuple[str, str]]:
        """history_modifier (on ``{"role", "content"}`` dicts; ``(role, text)`` pairs in and out
        here); then the turn's internal text replaces the last user message (the stored one is
        the visible text)."""
        pairs = list(history)
        if self._has("history_modifier"):
            assert self.extensions is not None
            result = self.extensions.pipe("history_modifier", history=[{"role": r, "content": c} for r, c in pairs])
            if isinstance(result, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in result):
                pairs = [(str(m["role"]), str(m["content"])) for m in result]
            else:
                log.warning("history_modifier returned something other than a list of messages; ignored")
        if turn is not None and turn.text != turn.visible_text:
            for i in range(len(pairs) - 1, -1, -1):
                if pairs[i][0] == "user":
                    pairs[i] = ("user", turn.text)
                    break
        return pairs

    def tokenized_length(self, prompt: str, count: Callable[[str], int]) -> int:
        """custom_tokenized_length, else ``count(prompt)``."""
        if self._has("custom_tokenized_length"):
            assert self.extensions is not None
            n = self.extensions.first("custom_tokenized_length", prompt=prompt)
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                return n
        return count(prompt)

    def prepare(self, turn: Turn, history: Sequence[tuple[str, str]], build: BuildPrompt) -> PreparedPrompt:
        """history_modifier, the prompt ``build`` renders (custom_tokenized_length counts it), then
        custom_generate_chat_prompt or bot_prefix_modifier: the exact prompt of the turn."""
        pairs = self.modify_history(history, turn)
        built = build(pairs, turn.params)
        turn.params = with_stops(turn.params, built.stops)
        prompt = built.prompt
        if self.extensions is not None and self.extensions.enabled():
            custom = self.custom_prompt(turn, pairs, built.messages, build)
            prompt = custom if custom is not None else self.modify_bot_prefix(built.prompt, turn)
        return PreparedPrompt(turn, built, prompt, turn.params)

    def custom_prompt(self, turn: Turn, history: Sequence[tuple[str, str]], messages: list[Message],
                      build: BuildPrompt) -> str | None:
        """custom_generate_chat_prompt (first one wins), or None. ``history`` keyword: the turn's
        ``{role, content}`` messages (upstream's shape for extensions written for it); while it runs,
        text-generation-webui's ``chat.generate_chat_prompt`` renders as this turn does."""
        if not self._has("custom_generate_chat_prompt"):
            return None
        assert self.extensions is not None
        past = [{"role": r, "content": c} for r, c in history if r != "system"]
        system = [(r, c) for r, c in history if r == "system"]  # an API body's: the setup's system message
        user_input = turn.text or (past[-1]["content"] if past and past[-1]["role"] == "user" else "")

        def render(text: str, state: dict[str, Any], kwargs: dict[str, Any]) -> str:
            msgs = history_messages(kwargs["history"]) if "history" in kwargs else list(past)
            pending = bool(msgs) and msgs[-1]["role"] == "user" and msgs[-1]["content"] == text
            if text and not pending and not kwargs.get("_continue") and not kwargs.get("impersonate"):
                msgs.append({"role": "user", "content": text})
            result = build(system + [(m["role"], m["content"]) for m in msgs], turn.params)
            return self.modify_bot_prefix(result.prompt, turn)

        with self.extensions.compat.rendering(render):
            result = self.extensions.first("custom_generate_chat_prompt", user_input=user_input, state=turn.state,
                                           history=past, messages=messages, _continue=False,
                                           impersonate=turn.state.get("goal") == "impersonate")
        return result if isinstance(result, str) else None

    def modify_bot_prefix(self, prompt: str, turn: Turn) -> str:
        """bot_prefix_modifier on the end of the prompt the reply starts after (chat mode:
        ``"Name:"``; instruct: the template's opening of the reply). The text it adds goes into
        the prompt only: it steers the reply but is not part of the stored reply."""
        if not self._has("bot_prefix_modifier"):
            return prompt
        assert self.extensions is not None
        tail = prompt[-200:]
        new_tail = str(self.extensions.pipe("bot_prefix_modifier", string=tail, state=turn.state))
        if not new_tail.startswith(tail):  # a modifier rewrote the cue itself
            return prompt[: len(prompt) - len(tail)] + new_tail
        added = new_tail[len(tail):]
        if added and tail.endswith(":") and not added[0].isspace():
            added = " " + added
        return prompt + added

    # ----------------------------------------------------------------- generation

    def decode_hooks(self, turn: Turn, *, validate: bool = True) -> DecodeHooks | None:
        """Samplers + logits_processor_modifier + tokenizer_modifier for the backend, or None."""
        ext = self.extensions
        if ext is None:
            return None
        samplers = ext.samplers()
        if validate:
            for sampler in samplers.values():
                sampler.resolve(turn.params.samplers)  # ParamError (user-facing) before queueing
        wants_modifier = bool(ext.implementers("logits_processor_modifier"))
        wants_tokens = bool(ext.implementers("tokenizer_modifier"))
        if not (samplers or wants_modifier or wants_tokens):
            return None
        values = dict(turn.params.samplers)

        def processors(ctx: SamplerContext, input_ids: Any) -> list[LogitsProcessor]:
            built = ext.build_logits_processors(values, ctx)
            if wants_modifier:
                built = ext.modify_logits_processors(built, input_ids)
            return built

        def modify_tokens(prompt: str, input_ids: Any, input_embeds: Any) -> tuple[str, Any, Any]:
            return ext.pipe("tokenizer_modifier", state=turn.state, prompt=prompt, input_ids=input_ids,
                            input_embeds=input_embeds)

        return DecodeHooks(processors, modify_tokens if wants_tokens else None)

    def custom_reply(
        self, engine: Engine, prompt: str, turn: Turn, original: str | None = None
    ) -> GenerationHandle | None:
        """custom_generate_reply (first one wins) as a handle streaming deltas, or None."""
        if not self._has("custom_generate_reply"):
            return None
        assert self.extensions is not None
        ext = self.extensions
        params = turn.params

        def run(emit: Callable[..., bool]) -> Any:
            from webui.engine.protocol import GenerationStats

            items = ext.first("custom_generate_reply", question=prompt, original_question=original or prompt,
                              seed=params.seed, state=turn.state, stopping_strings=list(params.stop),
                              is_chat=turn.is_chat)
            if items is None:  # every extension declined: the model answers
                model = engine._require_model()
                return model.generate(prompt, params, emit, **_hooks_kw(self.decode_hooks(turn, validate=False)))
            sent = ""
            for item in items:
                text = str(item)
                if not text.startswith(sent):
                    log.warning("custom_generate_reply rewrote text it had yielded; only additions are streamed")
                    continue
                delta, sent = text[len(sent):], text
                if delta and not emit(delta):
                    break
            return GenerationStats(finish_reason="stop")

        return engine.worker.stream(run, params.stop)

    def generate_prepared(self, engine: Engine, prepared: PreparedPrompt) -> GenerationHandle:
        """The reply to a prepared prompt: custom_generate_reply, else the model with the decode hooks."""
        if self.extensions is None or not self.extensions.enabled():
            return engine.generate(prepared.prompt, prepared.params)
        handle = self.custom_reply(engine, prepared.prompt, prepared.turn)
        if handle is not None:
            return handle
        return engine.generate(prepared.prompt, prepared.params, **_hooks_kw(self.decode_hooks(prepared.turn)))

    # ----------------------------------------------------------------- output

    def modify_output(self, text: str, turn: Turn) -> str:
        if not self._has("output_modifier"):
            return text
        assert self.extensions is not None
        return str(self.extensions.pipe("output_modifier", string=text, state=turn.state, is_chat=turn.is_chat))

    def modify_chat_output(self, text: str, turn: Turn) -> tuple[str, str | None]:
        """output_modifier on a chat reply: (the reply to store, what the chat draws instead or None).

        This app's extensions change the stored reply (docs/extensions.md); then those written for
        text-generation-webui change only what is drawn, as upstream keeps their result as the
        message's ``visible`` text while the model, the API and later prompts get the ``internal`` one."""
        if not self._has("output_modifier"):
            return text, None
        assert self.extensions is not None
        # a pipe with no implementer in its group gives its string back unchanged
        ext = self.extensions
        stored = str(ext.pipe("output_modifier", upstream=False, string=text, state=turn.state, is_chat=True))
        shown = str(ext.pipe("output_modifier", upstream=True, string=stored, state=turn.state, is_chat=True))
        return stored, (shown if shown != stored else None)

    def outputs(self, progress: Iterator[P], turn: Turn, persist: Callable[[str, str | None], None]) -> Iterator[P]:
        """``modify_chat_output`` on each ``progress.text`` (ReplyProgress-like dataclasses with a
        ``display`` field); the final stored text and display are saved with ``persist`` when either
        differs from the model's text."""
        if turn.state.get("goal") == "impersonate":  # as upstream: an impersonated message is not a reply
            yield from progress
            return
        for item in progress:
            text: str = item.text  # type: ignore[attr-defined]
            stored, shown = self.modify_chat_output(text, turn)
            if stored == text and shown is None:
                yield item
                continue
            if getattr(item, "done", False):
                persist(stored, shown)
            yield replace(item, text=stored, display=shown)  # type: ignore[type-var]

    # ----------------------------------------------------------------- raw completions (API)

    def complete(self, engine: Engine, prompt: str, params: GenerationParams) -> HookedCompletion:
        """A completion of a raw prompt with the hooks applied (the non-chat path of the API)."""
        state = self.make_state(params, mode="instruct")
        state, params = self.modify_state(state, params)
        turn = Turn(params, state, prompt, prompt, is_chat=False)
        if self._has("input_modifier"):
            assert self.extensions is not None
            turn.text = str(self.extensions.pipe("input_modifier", string=prompt, state=state, is_chat=False))
        handle = self.custom_reply(engine, turn.text, turn, original=prompt)
        if handle is None:
            handle = engine.generate(turn.text, params, **_hooks_kw(self.decode_hooks(turn)))
        return HookedCompletion(self, handle, turn)


class HookedCompletion:
    """A completion whose text passes through output_modifier(is_chat=False)."""

    def __init__(self, hooks: TurnHooks, handle: GenerationHandle, turn: Turn) -> None:
        self.hooks = hooks
        self.handle = handle
        self.turn = turn

    def deltas(self) -> Iterator[str]:
        """Deltas of the modified text (when a modifier rewrites earlier text, only what it adds
        at the end can be streamed; ``text()`` has the exact final text)."""
        if not self.hooks._has("output_modifier"):  # nothing rewrites the text: stream it as it comes
            yield from self.handle
            return
        raw = shown = ""
        for delta in self.handle:
            raw += delta
            new = self.hooks.modify_output(raw, self.turn)
            if new.startswith(shown) and len(new) > len(shown):
                yield new[len(shown):]
                shown = new
        final = self.hooks.modify_output(raw, self.turn)
        if final.startswith(shown) and len(final) > len(shown):
            yield final[len(shown):]

    def text(self) -> str:
        return self.hooks.modify_output(self.handle.text(), self.turn)


def _hooks_kw(hooks: DecodeHooks | None) -> dict[str, Any]:
    """Pass ``hooks=`` only when there are some (backends without extension support still work)."""
    return {"hooks": hooks} if hooks is not None else {}


__all__ = ["HookedCompletion", "PreparedPrompt", "Turn", "TurnHooks", "split_sampler_fields", "with_stops"]
