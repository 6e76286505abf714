"""Drawing a reply's display text: the HTML an extension written for text-generation-webui made of
it with ``output_modifier`` (a version's ``display``, see ``TurnHooks.modify_chat_output``).

Replies are otherwise drawn with every ``<`` escaped (``chat_view.safe_markdown``). A display text
is HTML on purpose (upstream's perplexity_colors wraps each token in ``<span style="color: #…">``),
so it is drawn through an allowlist instead, by nh3 (the ammonia sanitizer): text-formatting and
table elements only, ``style`` reduced to colours and font styles, upstream's class names for its
hover tables; no script, link, image, form, event handler or URL survives.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

TAGS = frozenset({
    "span", "div", "p", "br", "pre", "code", "b", "strong", "i", "em", "u", "s", "sub", "sup", "small",
    "mark", "table", "thead", "tbody", "tr", "td", "th", "ul", "ol", "li", "hr", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6",
})
STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-weight", "font-style", "text-decoration", "opacity",
})
# perplexity_colors' probability dropdown (its custom_css styles these)
CLASSES = {"div": {"hoverable", "dropdown"}, "table": {"dropdown-content"}, "tr": {"selected"}}


def sanitize(fragment: str) -> str:
    """``fragment`` with only the allowed elements, attributes and style properties left."""
    return nh3.clean(fragment, tags=set(TAGS), attributes={"*": {"style"}}, allowed_classes=CLASSES,
                     filter_style_properties=set(STYLE_PROPERTIES), url_schemes=set(), link_rel=None)


def chat_content(display: str) -> str:
    """The Chatbot value of a message with a display text: Markdown (the Chatbot renders it) with the
    display's own HTML kept, sanitized."""
    return sanitize(display)


def markdown_renderer() -> MarkdownIt:
    """CommonMark as the chat renders it (tables, strikethrough, single newlines as line breaks), the
    display's raw HTML kept for ``sanitize``."""
    return MarkdownIt("commonmark", {"html": True, "breaks": True}).enable(["table", "strikethrough"])


def render(display: str, markdown: MarkdownIt | None = None) -> str:
    """The display text as the live reply draws it: Markdown to HTML (``markdown``: a
    ``markdown_renderer()`` to reuse), then sanitized."""
    return sanitize((markdown or markdown_renderer()).render(display))


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped (what an edit of a drawn display text means)."""
    return html.unescape(nh3.clean(fragment, tags=set()))
