"""The chat's keyboard shortcuts (text-generation-webui's), as the help dialog and the docs list them.

The keys are matched in ``static/chat.js`` (``SHORTCUT_KEYS`` there names the same actions). A
shortcut never fires where its key means something else: the arrows and ``?`` only when no text
field has the focus (there they move the caret or type), the others only from the chat's message
box or outside any text field, and Esc only while a reply is being written.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    action: str  # the page script's name for it
    keys: str  # as shown to the user
    description: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("stop", "Esc", "Stop the reply being written"),
    Shortcut("regenerate", "Ctrl+Enter", "Regenerate the last reply (a new version)"),
    Shortcut("continue", "Alt+Enter", "Continue the last reply"),
    Shortcut("remove-last", "Ctrl+Shift+Backspace", "Remove the last reply"),
    Shortcut("impersonate", "Ctrl+Shift+M", "Impersonate: the model writes your next message"),
    Shortcut("prev", "\u2190", "Previous version of the last reply"),
    Shortcut("next", "\u2192", "Next version of the last reply"),
    Shortcut("help", "?", "Show or hide this list"),
)


def help_html() -> str:
    """The help dialog's table (no ``${`` or backticks: it goes into a Gradio HTML template)."""
    rows = "".join(f"<tr><td><kbd>{html.escape(s.keys)}</kbd></td><td>{html.escape(s.description)}</td></tr>"
                   for s in SHORTCUTS)
    return f'<table class="shortcut-table">{rows}</table>'


def markdown_table() -> str:
    """The same list as a Markdown table (docs/user-guide.md)."""
    lines = ["| Keys | Does |", "| --- | --- |"]
    lines += [f"| {s.keys} | {s.description} |" for s in SHORTCUTS]
    return "\n".join(lines)
