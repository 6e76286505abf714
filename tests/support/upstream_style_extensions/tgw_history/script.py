"""Marks every earlier user message the prompt sees, and the reply, in upstream's history shape."""

import modules.shared as shared

params = {
    "activate": True,
    "mark": "[seen] ",
}


def history_modifier(history):
    if not params["activate"]:
        return history
    history["internal"] = [[params["mark"] + user if user else user, bot] for user, bot in history["internal"]]
    return history


def output_modifier(string, state):
    return string + (" (chat)" if shared.is_chat() else "")
