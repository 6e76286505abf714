"""Adds a note to the end of the chat prompt, through chat.generate_chat_prompt."""

from modules import chat

params = {
    "display_name": "Prompt note",
    "is_tab": False,
    "note": " [note from tgw_prompt]",
}


def custom_generate_chat_prompt(user_input, state, **kwargs):
    history = kwargs["history"]
    assert set(history) == {"internal", "visible"}, history
    assert [len(pair) for pair in state["history"]["internal"]] == [2] * len(state["history"]["internal"])
    state["seen_by_tgw_prompt"] = True  # an in-place change reaches the turn's state, as upstream
    return chat.generate_chat_prompt(user_input, state, **kwargs) + params["note"]
