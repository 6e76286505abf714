"""upstream's ``modules.html_generator``: ``convert_to_markdown``, ``get_image_cache``, ``chat_html``.

``get_image_cache(path)`` returns what upstream extensions put after ``file/`` in an ``<img src>``:
a thumbnail under ``<data-dir>/avatars/cache`` (a folder the page serves), written as
``../gradio_api/file=<path>`` so ``file/`` + it reaches Gradio 6's file route.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from webui.compat.bridge import current

THUMBNAIL = (350, 470)  # upstream's size


def convert_to_markdown(string: str) -> str:
    """Markdown to HTML, raw HTML escaped (as the chat renders replies)."""
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    return md.render(str(string))


def convert_to_markdown_wrapped(string: str, use_cache: bool = True) -> str:
    return convert_to_markdown(string)


def get_image_cache(path: str | Path) -> str:
    """A cached thumbnail of the picture at ``path``, as a path for ``<img src="file/...">``."""
    from PIL import Image

    source = Path(path)
    bridge = current()
    if bridge.settings is None:
        raise FileNotFoundError("no data dir: the extension was not loaded by the app")
    cache = Path(bridge.settings.data_dir) / "avatars" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:24]
    target = cache / f"{key}.png"
    if not target.exists():
        with Image.open(source) as img:
            img = img.convert("RGBA") if img.mode not in ("RGB", "RGBA") else img
            img.thumbnail(THUMBNAIL)
            img.save(target, format="PNG")
    return f"../gradio_api/file={target.resolve().as_posix()}"


def chat_html(history: Any, name1: str = "You", name2: str = "Assistant", *args: Any, **kwargs: Any) -> str:
    """The history (``{'visible': [[user, bot], ...]}``) as simple HTML, replies rendered as Markdown."""
    pairs = history.get("visible", []) if isinstance(history, dict) else []
    rows = []
    for user, bot in pairs:
        if user:
            rows.append(f'<div class="message user"><b>{html.escape(name1)}</b>{convert_to_markdown(user)}</div>')
        if bot:
            rows.append(f'<div class="message bot"><b>{html.escape(name2)}</b>{convert_to_markdown(bot)}</div>')
    return '<div class="chat">' + "".join(rows) + "</div>"


generate_chat_html = chat_html
