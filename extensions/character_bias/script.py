"""Character bias: a hidden text the bot's replies start from, to steer their tone.

Like text-generation-webui's character_bias: the bias (e.g. "*I am so happy*") is appended to
the prompt right where the reply begins, so the model writes on from it; it is not part of the
shown or stored reply unless "show_in_reply" is on.
"""

from __future__ import annotations

params = {
    "display_name": "Character bias",
    "is_tab": False,
    "activate": True,
    "bias_string": "*I am so happy*",
    "show_in_reply": False,
}

params_meta = {
    "activate": {"label": "Activate character bias"},
    "bias_string": {"label": "Character bias", "info": "Text the reply starts from (hidden)"},
    "show_in_reply": {"label": "Show the bias in the reply"},
}


def bot_prefix_modifier(string: str, state: dict) -> str:
    """Append the bias where the reply begins."""
    bias = params["bias_string"].strip()
    if params["activate"] and bias:
        return f"{string} {bias} "
    return string


def output_modifier(string: str, state: dict, is_chat: bool = False) -> str:
    """Put the bias in front of the reply when it should be visible."""
    bias = params["bias_string"].strip()
    if is_chat and params["activate"] and params["show_in_reply"] and bias:
        return f"{bias} {string}"
    return string
