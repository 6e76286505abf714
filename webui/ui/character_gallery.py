"""The Characters tab's gallery: every character as a card with its avatar; search by name, tag or
description; "Chat" starts a chat with one (and shows the Chat tab), "Edit" shows it in the form.

The cards are one ``gr.HTML`` whose value is built here (names escaped, avatars as small embedded
thumbnails); its script sends ``{"action": "chat" | "edit", "name": ...}`` as a click event.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import gradio as gr

from webui.chat.character import Character
from webui.context import AppContext
from webui.ui import icons

THUMB_PX = 192

# The page side: a click on a card's button goes to Python; "chat" also shows the Chat tab and
# "edit" scrolls to the form.
GALLERY_JS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b) return;
  trigger('click', { action: b.dataset.act, name: b.dataset.name });
  if (b.dataset.act === 'chat') {
    const tab = [...document.querySelectorAll('button[role=tab]')].find((t) => t.textContent.trim() === 'Chat');
    if (tab) tab.click();
  } else {
    const form = document.getElementById('character-choice');
    if (form) form.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }
});
"""


@dataclass
class GalleryComponents:
    search: gr.Textbox
    cards: gr.HTML


def build(ctx: AppContext) -> GalleryComponents:
    """The search box and the cards (inside the caller's layout)."""
    search = gr.Textbox(placeholder="Search characters by name, tag or description", show_label=False,
                        elem_id="character-search", container=False)
    cards = gr.HTML(cards_html(ctx, ""), js_on_load=GALLERY_JS, elem_id="character-gallery",
                    apply_default_css=False, padding=False)
    return GalleryComponents(search, cards)


def matches(char: Character, query: str) -> bool:
    """Whether every word of ``query`` is in the character's name, tags, creator or description."""
    hay = " ".join([char.name, " ".join(char.tags), char.creator, char.description]).lower()
    return all(word in hay for word in query.lower().split())


def thumbnail(png: bytes | None) -> str | None:
    """A small embedded copy of an avatar (a data: URI), or None for none or an unreadable picture."""
    if not png:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as img:
            img.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            img.convert("RGBA").save(out, format="PNG", optimize=True)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def card_html(char: Character) -> str:
    name = html.escape(char.name, quote=True)
    thumb = thumbnail(char.avatar_png)
    picture = (f'<img src="{thumb}" alt="" loading="lazy">' if thumb
               else f'<div class="char-initial" aria-hidden="true">{html.escape(char.name[:1].upper())}</div>')
    return (f'<div class="char-card" data-name="{name}">{picture}<div class="char-name" title="{name}">{name}</div>'
            f'<div class="char-actions">'
            f'<button type="button" class="primary" data-act="chat" data-name="{name}" '
            f'aria-label="Chat with {name}">{icons.svg("chat", 14)}Chat</button>'
            f'<button type="button" data-act="edit" data-name="{name}" '
            f'aria-label="Edit {name}">{icons.svg("edit", 14)}Edit</button></div></div>')


def cards_html(ctx: AppContext, query: str) -> str:
    """The gallery's HTML: the characters matching ``query`` (all for an empty one), by name."""
    chars = [ctx.characters.get(n) for n in ctx.characters.names()]
    shown = [c for c in chars if matches(c, query or "")]
    # the query is written into the HTML: the page redraws only a value that differs from the one
    # it drew first, so the full list after a search would otherwise not come back
    q = html.escape(query or "", quote=True)
    if not shown:
        text = "No character matches that." if chars else "No characters yet: import a card or fill in the form."
        return f'<p class="char-empty" data-query="{q}">{text}</p>'
    # "$" + "{" would start a placeholder in Gradio's HTML template: written as an entity
    cards = "".join(card_html(c) for c in shown).replace("${", "&#36;{")
    return f'<div class="char-grid" data-query="{q}" data-count="{len(shown)}">{cards}</div>'
