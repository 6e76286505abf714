"""Colours each word of the reply, as upstream's perplexity_colors colours each token: an
output_modifier returning HTML (``<span style="color: #...">word</span>``), which upstream draws in
the chat as the message's visible text while the model, later prompts and the API keep the plain
reply. Written in upstream's style: ``import modules.shared``, the one-argument hook."""

import modules.shared as shared

params = {"display_name": "Colour words", "active": True}

COLOURS = ("cc0000", "008800")  # red, green: word by word


def output_modifier(string):
    if not params["active"] or not shared.is_chat():
        return string
    words = string.split(" ")
    return " ".join(f'<span style="color: #{COLOURS[i % 2]}">{word}</span>' if word else word
                    for i, word in enumerate(words))
