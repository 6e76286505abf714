"""An example extension that demonstrates every hook.

It changes nothing by default: each visible effect is behind a setting in ``params`` that is off.
Functions are declared in the order they are called during a chat turn (the collect hooks that
run at start-up come first). Every hook may take any subset of its arguments: declare only the
ones you use, e.g. ``def output_modifier(string):``.

Written in text-generation-webui's style; such extensions load here unchanged as long as they
only use these hooks (not ``modules.shared`` and friends).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Settings, typed from their default values (bool -> checkbox, int/float -> slider or number,
# str -> textbox, list -> list), editable in the Extensions tab and saved.
# "display_name" and "is_tab" are metadata, not settings.
params: dict[str, Any] = {
    "display_name": "Example",
    "is_tab": False,
    "uppercase": False,  # output_modifier: upper-case the reply
    "prefix": "",  # input_modifier: put this text before the user's input
    "bot_prefix": "",  # bot_prefix_modifier: start the bot's reply with this
    "max_history_turns": 0,  # history_modifier: keep only the last N turns (0 = all)
    "temperature_override": 0.0,  # state_modifier: set temperature when > 0
    "mode": "off",  # custom_generate_reply: "echo" replies with the prompt's last line
}

# Optional refinements of the settings (ranges, choices, labels) for the UI and validation.
params_meta = {
    "max_history_turns": {"min": 0, "max": 100, "step": 1},
    "temperature_override": {"min": 0.0, "max": 2.0, "step": 0.05, "label": "Temperature override"},
    "mode": {"choices": ["off", "echo"], "info": "echo: answer without the model"},
}


def setup() -> None:
    """Called once, the first time the extension is enabled (not on each re-enable).

    Load resources here rather than at import time. Returns nothing; raising refuses the enable.
    """


def ui(**kwargs: Any) -> None:
    """Called while the Gradio interface is built, inside a column under the chat (or inside
    a tab of its own when ``params["is_tab"]`` is True). Create components and wire events here.
    May declare ``ctx`` (the AppContext) and ``chat`` (the Chat tab's components). Returns
    nothing."""


def custom_css() -> str:
    """Called once when the page is built. Returns CSS appended to the page's CSS."""
    return ""


def custom_js() -> str:
    """Called once when the page is built. Returns JavaScript appended to the page's JS."""
    return ""


def register_samplers() -> list:
    """Called when the enabled samplers are listed (Parameters tab, API, each generation).

    Returns a list of ``webui.plugins.SamplerSpec`` (a logits-processor factory plus typed
    parameters that become Parameters-tab sliders and API fields). See docs/extensions.md, "Samplers".
    """
    return []


def state_modifier(state: dict) -> dict:
    """Called before generation with the generation state (parameters and UI values).
    Returns the state (a modified copy or the same dict)."""
    if params["temperature_override"] > 0:
        state = {**state, "temperature": params["temperature_override"]}
    return state


def history_modifier(history: list) -> list:
    """Chat only; called before the prompt is built, with the history as a list of
    ``{"role": ..., "content": ...}`` messages. Returns the history."""
    keep = params["max_history_turns"]
    if keep > 0:
        return history[-2 * keep:]
    return history


def chat_input_modifier(text: str, visible_text: str, state: dict) -> tuple[str, str]:
    """Chat only; called on the user's new message. ``text`` goes into the prompt,
    ``visible_text`` is what the chat shows. Returns a ``(text, visible_text)`` pair."""
    return text, visible_text


def input_modifier(string: str, state: dict, is_chat: bool = False) -> str:
    """Called on the user's input: in chat, the internal text of the new message; otherwise the
    whole prompt. Returns the string."""
    if params["prefix"]:
        return f"{params['prefix']}{string}"
    return string


def bot_prefix_modifier(string: str, state: dict) -> str:
    """Chat only; called on the end of the prompt where the bot's reply starts (e.g. "Bot:").
    Returns the string; text appended here steers the reply but is not shown or stored."""
    return string + params["bot_prefix"]


def custom_generate_chat_prompt(user_input: str, state: dict, **kwargs: Any) -> str | None:
    """Chat only; called instead of the normal prompt builder. ``kwargs`` carries the caller's
    extras (e.g. ``history``, ``_continue``). Returns the prompt string, or None to decline.

    "First one wins": the first enabled extension that returns something other than None
    decides; None passes the turn to the next one, and finally to the built-in builder.
    """
    return None


def custom_tokenized_length(prompt: str) -> int | None:
    """Called to measure a prompt (for context truncation) when an extension changes
    tokenization. First one wins; returns a token count, or None to decline."""
    return None


def tokenizer_modifier(state: dict, prompt: str, input_ids: Any, input_embeds: Any) -> tuple:
    """transformers only; called after the prompt is tokenized. Returns
    ``(prompt, input_ids, input_embeds)``, e.g. with image embeddings spliced in."""
    return prompt, input_ids, input_embeds


def logits_processor_modifier(processor_list: list, input_ids: Any) -> list:
    """Called before decoding with the list of logits processors (callables
    ``(input_ids, scores) -> scores`` on torch tensors). Append yours and return the list."""
    return processor_list


def custom_generate_reply(question: str, original_question: str, seed: int, state: dict,
                          stopping_strings: list, is_chat: bool = False) -> Iterator[str] | None:
    """Called instead of the model. First one wins; returns an iterator (usually this is a
    generator function) yielding the cumulative reply so far (each item is the whole text, not a
    delta), or None to decline and let the model answer."""
    if params["mode"] != "echo":
        return None
    return _echo(question)


def _echo(question: str) -> Iterator[str]:
    lines = question.strip().splitlines() or [""]
    reply = ""
    for word in lines[-1].split(" "):
        reply = f"{reply} {word}".strip()
        yield reply


def output_modifier(string: str, state: dict, is_chat: bool = False) -> str:
    """Called on the model's reply, on each streamed update and on the final text. The modified
    text is shown and stored (one text per message). Returns the string."""
    return string.upper() if params["uppercase"] else string
