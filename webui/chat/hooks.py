"""Where the extension hooks run in a turn: one orchestrator used by ChatService and the API.

Chat turn (``ChatService.send``), in order::

    begin_chat          state_modifier, chat_input_modifier, input_modifier(is_chat=True)
    modify_history      history_modifier (then the turn's internal text replaces the stored,
                        visible one in the last user message, for this prompt only)
    tokenized_length    custom_tokenized_length (context truncation)
    generate_chat       custom_generate_chat_prompt, else the model's chat template +
                        bot_prefix_modifier; custom_generate_reply, else the model with
                        DecodeHooks (samplers, logits_processor_modifier, tokenizer_modifier)
    outputs             output_modifier(is_chat=True) on every streamed update and the final text

Raw completions (``/v1/completions``, no chat): ``complete(engine, prompt, params)`` runs
state_modifier, input_modifier(is_chat=False), custom_generate_reply or the model with the same
DecodeHooks, and its ``deltas()``/``text()`` apply output_modifier(is_chat=False).

Storage: a message has one text. The user's message is stored as ``visible_text`` (what the
chat shows); the internal ``text`` is what this turn's prompt sees. The reply is stored as shown,
i.e. after output_modifier; the text a bot_prefix_modifier adds steers the model but is not part
of the reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.plugins.samplers import LogitsProcessor, SamplerContext

if TYPE_CHECKING:
    from webui.engine.engine import Engine
    from webui.engine.worker import GenerationHandle
    from webui.plugins.manager import ExtensionManager

log = logging.getLogger(__name__)

Message = dict[str, str]
P = TypeVar("P")

_PARAM_FIELDS = frozenset(GenerationParams.model_fields)


@dataclass
class Turn:
    """One generation as the hooks see it."""

    params: GenerationParams
    state: dict[str, Any]
    text: str = ""  # the user's input as the prompt sees it
    visible_text: str = ""  # the user's input as stored and shown
    is_chat: bool = True
    context: str | None = None  # a system text a state_modifier asked for (None: unchanged)
    extras: dict[str, Any] = field(default_factory=dict)


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
                   conversation_id: int | None = None, chat_settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """text-generation-webui's ``state``: the generation parameters plus the chat's names."""
        state: dict[str, Any] = params.model_dump()
        state.update(params.samplers)
        state.update(
            name1=user_name, name2=character, character_menu=character, mode=mode,
            context=context, history=[{"role": r, "content": c} for r, c in history],
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

    def begin_chat(self, text: str, params: GenerationParams, *, character: str = "", user_name: str = "You",
                   mode: str = "chat", history: Sequence[tuple[str, str]] = (), context: str = "",
                   conversation_id: int | None = None, chat_settings: dict[str, Any] | None = None) -> Turn:
        """state_modifier, chat_input_modifier and input_modifier on a user's new message."""
        state = self.make_state(params, character=character, user_name=user_name, mode=mode, history=history,
                                context=context, conversation_id=conversation_id, chat_settings=chat_settings)
        state, params = self.modify_state(state, params)
        turn = Turn(params, state, text, text, is_chat=True)
        if state.get("context", context) != context:
            turn.context = str(state["context"])
        if self.extensions is None:
            return turn
        if text and self._has("chat_input_modifier"):
            internal, visible = self.extensions.pipe("chat_input_modifier", text=text, visible_text=text, state=state)
            turn.text, turn.visible_text = str(internal), str(visible)
        if turn.text and self._has("input_modifier"):
            turn.text = str(self.extensions.pipe("input_modifier", string=turn.text, state=state, is_chat=True))
        return turn

    # ----------------------------------------------------------------- prompt

    def modify_history(self, history: list[Message], turn: Turn | None) -> list[Message]:
        """history_modifier on the ``{"role", "content"}`` messages; then the turn's internal text
        replaces the last user message (the stored one is the visible text)."""
        if self._has("history_modifier"):
            assert self.extensions is not None
            result = self.extensions.pipe("history_modifier", history=list(history))
            if isinstance(result, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in result):
                history = [{"role": str(m["role"]), "content": str(m["content"])} for m in result]
            else:
                log.warning("history_modifier returned something other than a list of messages; ignored")
        if turn is not None and turn.text != turn.visible_text:
            for i in range(len(history) - 1, -1, -1):
                if history[i]["role"] == "user":
                    history = [*history[:i], {**history[i], "content": turn.text}, *history[i + 1:]]
                    break
        return history

    def tokenized_length(self, prompt: str, count: Callable[[str], int]) -> int:
        """custom_tokenized_length, else ``count(prompt)``."""
        if self._has("custom_tokenized_length"):
            assert self.extensions is not None
            n = self.extensions.first("custom_tokenized_length", prompt=prompt)
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                return n
        return count(prompt)

    def apply_context(self, messages: list[Message], turn: Turn) -> list[Message]:
        """Use the system text a state_modifier set in ``state["context"]``."""
        if turn.context is None:
            return messages
        rest = [m for m in messages if m["role"] != "system"] if messages and messages[0]["role"] == "system" else messages
        return ([{"role": "system", "content": turn.context}] if turn.context else []) + list(rest)

    def custom_prompt(self, turn: Turn, messages: list[Message]) -> str | None:
        """custom_generate_chat_prompt (first one wins), or None."""
        if not self._has("custom_generate_chat_prompt"):
            return None
        assert self.extensions is not None
        history = [m for m in messages if m["role"] != "system"]
        result = self.extensions.first("custom_generate_chat_prompt", user_input=turn.text, state=turn.state,
                                       history=history, messages=messages, _continue=False, impersonate=False)
        return result if isinstance(result, str) else None

    def modify_bot_prefix(self, turn: Turn) -> str:
        """bot_prefix_modifier on the text the reply starts with ("": the chat template already
        opens the reply). The result goes into the prompt, not into the stored reply."""
        if not self._has("bot_prefix_modifier"):
            return ""
        assert self.extensions is not None
        prefix = str(self.extensions.pipe("bot_prefix_modifier", string="", state=turn.state))
        return prefix.lstrip()

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
                built = list(ext.pipe("logits_processor_modifier", processor_list=built, input_ids=input_ids))
            return built

        def modify_tokens(prompt: str, input_ids: Any, input_embeds: Any) -> tuple[str, Any, Any]:
            return ext.pipe("tokenizer_modifier", state=turn.state, prompt=prompt, input_ids=input_ids,
                            input_embeds=input_embeds)

        return DecodeHooks(processors, modify_tokens if wants_tokens else None)

    def custom_reply(self, engine: Engine, prompt: str, turn: Turn, original: str | None = None) -> GenerationHandle | None:
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

    def generate_chat(self, engine: Engine, messages: list[Message], turn: Turn) -> GenerationHandle:
        """The reply to ``messages``: custom prompt or chat template + bot prefix; custom reply or
        the model with the decode hooks."""
        messages = self.apply_context(messages, turn)
        if self.extensions is None or not self.extensions.enabled():
            return engine.chat(messages, turn.params)
        prompt = self.custom_prompt(turn, messages)
        if prompt is None:
            prompt = (engine.format_chat(messages) if engine.model is not None else _plain_prompt(messages))
            prompt += self.modify_bot_prefix(turn)
        handle = self.custom_reply(engine, prompt, turn)
        if handle is not None:
            return handle
        return engine.generate(prompt, turn.params, **_hooks_kw(self.decode_hooks(turn)))

    # ----------------------------------------------------------------- output

    def modify_output(self, text: str, turn: Turn) -> str:
        if not self._has("output_modifier"):
            return text
        assert self.extensions is not None
        return str(self.extensions.pipe("output_modifier", string=text, state=turn.state, is_chat=turn.is_chat))

    def outputs(self, progress: Iterator[P], turn: Turn, persist: Callable[[str], None]) -> Iterator[P]:
        """output_modifier on each ``progress.text`` (ReplyProgress-like dataclasses); the final
        modified text is stored with ``persist`` when it differs from the model's."""
        for item in progress:
            text: str = item.text  # type: ignore[attr-defined]
            shown = self.modify_output(text, turn)
            if getattr(item, "done", False) and shown != text:
                persist(shown)
            yield replace(item, text=shown) if shown != text else item  # type: ignore[type-var]

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


def _plain_prompt(messages: list[Message]) -> str:
    """A prompt for extensions that answer without a model (custom_generate_reply)."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


__all__ = ["HookedCompletion", "Turn", "TurnHooks", "split_sampler_fields"]
