"""The UI's icons: small inline SVGs shipped with the app (no icon font, no emoji, nothing fetched).

Emoji in a label render as an empty box on a machine without an emoji font, and an icon font would
be one more file to fetch; an SVG drawn with ``currentColor`` follows the theme (dark mode included).

Two ways in: ``svg(name)`` gives the markup (the chat's message toolbar inserts it), and
``button_css({elem_id: name})`` gives CSS that draws the icon before a Gradio button's label with a
CSS mask, so the label stays plain text and the icon takes the button's text colour.
"""

from __future__ import annotations

from urllib.parse import quote

# 24×24 stroke paths (drawn for this app, in the common "outline" style: round caps, 2px).
PATHS: dict[str, str] = {
    "plus": "M12 5v14M5 12h14",
    "refresh": "M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7",
    "copy": "M9 9h11v11H9zM5 15H4V4h11v1",
    "edit": "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
    "regenerate": "M4 12a8 8 0 0 1 14-5.3L20 9M20 4v5h-5M20 12a8 8 0 0 1-14 5.3L4 15M4 20v-5h5",
    "continue": "M5 12h12M13 6l6 6-6 6",
    "branch": "M6 3v12M6 21a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM18 9a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM18 9a9 9 0 0 1-9 9",
    "trash": "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
    "left": "M15 6l-6 6 6 6",
    "right": "M9 6l6 6-6 6",
    "stop": "M7 7h10v10H7z",
    "send": "M4 12l16-8-6 16-2-7z",
    "user": "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
    "moon": "M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z",
    "sun": "M12 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2"
           "M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4",
    "menu": "M4 6h16M4 12h16M4 18h16",
    "keyboard": "M3 6h18v12H3zM7 10h.01M11 10h.01M15 10h.01M7 14h10",
    "download": "M12 4v11M7 10l5 5 5-5M5 20h14",
    "upload": "M12 20V9M7 14l5-5 5 5M5 4h14",
    "search": "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM20 20l-4-4",
    "chat": "M4 5h16v11H9l-5 4z",
    "load": "M12 3v12M7 10l5 5 5-5M4 21h16",
    "eject": "M6 15h12L12 6zM6 19h12",
    "save": "M5 4h11l3 3v13H5zM8 4v5h7V4M8 20v-6h8v6",
}


def svg(name: str, size: int = 16) -> str:
    """The icon as inline SVG markup (``currentColor`` strokes, hidden from screen readers)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 24 24" '
            f'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" '
            f'aria-hidden="true" focusable="false"><path d="{PATHS[name]}"/></svg>')


def data_uri(name: str) -> str:
    """The icon as a ``data:`` URI (black strokes: used as a mask, so the colour comes from CSS)."""
    return "data:image/svg+xml," + quote(svg(name).replace("currentColor", "black"), safe="")


def button_css(buttons: dict[str, str]) -> str:
    """CSS drawing icon ``name`` before the label of each button ``#elem_id`` in ``buttons``."""
    rules = []
    for elem_id, name in buttons.items():
        uri = data_uri(name)
        rules.append(
            f'#{elem_id}::before {{ content: ""; display: inline-block; width: 1.1em; height: 1.1em; '
            f"flex: none; background-color: currentColor; "
            f'-webkit-mask: url("{uri}") center / contain no-repeat; mask: url("{uri}") center / contain no-repeat; }}'
        )
    return "\n".join(rules)
