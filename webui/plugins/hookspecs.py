"""The extension hook contract, as data.

Names and argument names are text-generation-webui's (``modules/extensions.py`` and
``extensions/example/script.py`` upstream), so an extension written for it loads unchanged.
An implementation may accept any subset of a hook's arguments (see ``calling.py``).

Kinds:

* ``pipe``: every enabled extension that implements the hook runs, in enabled order; its return
  value replaces the piped argument(s) for the next one.
* ``first``: the first enabled extension whose implementation returns something other than None
  wins; the later ones are not called. None means "declined": the next one (and finally the
  built-in behaviour) takes over. text-generation-webui has no decline, but also never returns
  None from these hooks, so its extensions behave the same.
* ``collect``: called for every enabled extension that implements it; the results are gathered.
* ``attribute``: not a function (the module-level ``params`` dict).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

HookKind = Literal["pipe", "first", "collect", "attribute"]


@dataclass(frozen=True)
class HookSpec:
    """One hook: how it is called and what it returns."""

    name: str
    kind: HookKind
    args: tuple[str, ...] = ()
    # Arguments with a default in the upstream signature (callers may omit them).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # pipe: which arguments the return value replaces (one name: the value; several: a tuple).
    returns: tuple[str, ...] = ()
    # The implementation also receives the caller's extra keyword arguments (``**kwargs``).
    extra_kwargs: bool = False
    # The implementation returns an iterator (custom_generate_reply).
    generator: bool = False
    # Where in the flow it is called and what it returns (also used for the docs test).
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    @property
    def positional_args(self) -> tuple[str, ...]:
        """The arguments text-generation-webui passes positionally (those without a default)."""
        return tuple(a for a in self.args if a not in self.defaults)

    def signature_text(self) -> str:
        if self.kind == "attribute":
            return f"{self.name} = {{...}}"
        parts = [f"{a}={self.defaults[a]!r}" if a in self.defaults else a for a in self.args]
        if self.extra_kwargs:
            parts.append("**kwargs")
        return f"{self.name}({', '.join(parts)})"


def _specs(*specs: HookSpec) -> Mapping[str, HookSpec]:
    return MappingProxyType({s.name: s for s in specs})


# Listed in the order they run during one chat turn (after the collect hooks run at start-up).
HOOKS: Mapping[str, HookSpec] = _specs(
    HookSpec("params", "attribute",
             doc="Module-level dict of settings; typed from the default values, editable in the "
                 "Extensions tab, persisted. Keys 'display_name' and 'is_tab' are metadata."),
    HookSpec("setup", "collect",
             doc="Called once per extension, the first time it is enabled. Returns nothing."),
    HookSpec("ui", "collect", extra_kwargs=True,
             doc="Called while the Gradio Blocks are built; creates components under the chat, "
                 "or in its own tab when params['is_tab'] is True. May declare `ctx` (the "
                 "AppContext) and `chat` (the Chat tab's components, e.g. chat.conv_id). Returns "
                 "nothing."),
    HookSpec("custom_css", "collect", doc="Returns a CSS string appended to the page's CSS."),
    HookSpec("custom_js", "collect", doc="Returns a JavaScript string appended to the page's JS."),
    HookSpec("register_samplers", "collect",
             doc="Returns a list of SamplerSpec (logits processor + typed parameters); their "
                 "sliders appear in the Parameters tab and their parameters in the API."),
    HookSpec("state_modifier", "pipe", ("state",), returns=("state",),
             doc="Before generation: modifies the generation state dict (parameters, UI "
                 "values). Returns the state."),
    HookSpec("history_modifier", "pipe", ("history",), returns=("history",),
             doc="Chat only, before the prompt is built: modifies the chat history. Returns the "
                 "history."),
    HookSpec("chat_input_modifier", "pipe", ("text", "visible_text", "state"),
             returns=("text", "visible_text"),
             doc="Chat only, on the user's message: text goes into the prompt, visible_text is "
                 "shown in the chat. Returns a (text, visible_text) pair."),
    HookSpec("input_modifier", "pipe", ("string", "state", "is_chat"), {"is_chat": False},
             returns=("string",),
             doc="On the user input (chat: the internal text; otherwise the whole prompt). "
                 "Returns the string."),
    HookSpec("bot_prefix_modifier", "pipe", ("string", "state"), returns=("string",),
             doc="Chat only: modifies the end of the prompt where the bot's reply starts (e.g. "
                 "'Bot:'); text it appends steers the reply but is not stored. Returns the string."),
    HookSpec("custom_generate_chat_prompt", "first", ("user_input", "state"), extra_kwargs=True,
             doc="Chat only, first one wins: replaces prompt building from the history. Returns "
                 "the prompt string, or None to decline."),
    HookSpec("custom_tokenized_length", "first", ("prompt",),
             doc="First one wins: returns the prompt's length in tokens (or None to decline), "
                 "for context truncation, when an extension changes tokenization."),
    HookSpec("tokenizer_modifier", "pipe", ("state", "prompt", "input_ids", "input_embeds"),
             returns=("prompt", "input_ids", "input_embeds"),
             doc="transformers only, after tokenization: returns (prompt, input_ids, "
                 "input_embeds), e.g. to splice image embeddings in."),
    HookSpec("logits_processor_modifier", "pipe", ("processor_list", "input_ids"),
             returns=("processor_list",),
             doc="Before decoding: appends logits processors to processor_list. Returns the "
                 "list (returning None keeps the list, changed in place)."),
    HookSpec("custom_generate_reply", "first",
             ("question", "original_question", "seed", "state", "stopping_strings", "is_chat"),
             {"is_chat": False}, generator=True,
             doc="First one wins: replaces the model's generation. Returns an iterator yielding "
                 "the cumulative reply text so far (a generator function), or None to decline."),
    HookSpec("output_modifier", "pipe", ("string", "state", "is_chat"), {"is_chat": False},
             returns=("string",),
             doc="On the model's reply (on each streamed update and the final text): the "
                 "modified text is shown and stored; in a chat, that of an extension written for "
                 "text-generation-webui is only shown (see What is stored). Returns the string."),
)

CALLABLE_HOOKS: tuple[str, ...] = tuple(n for n, s in HOOKS.items() if s.kind != "attribute")

# Metadata keys of ``params`` that are not user settings.
PARAMS_META_KEYS = frozenset({"display_name", "is_tab"})

_HOOK_LIKE = re.compile(r"(_modifier$|^custom_|^register_)")


def looks_like_hook(name: str) -> str | None:
    """For a public function name not in the contract: why it looks like a mistyped hook, or None."""
    if name in HOOKS or name.startswith("_"):
        return None
    close = difflib.get_close_matches(name, CALLABLE_HOOKS, n=1, cutoff=0.8)
    if close:
        return f"did you mean {close[0]!r}?"
    if _HOOK_LIKE.search(name):
        return "its name looks like a hook, but it is not in the contract"
    return None
