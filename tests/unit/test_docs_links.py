"""Every relative link in README.md and docs/*.md points to a file that exists, and every
``#anchor`` (in the same page or another Markdown page) to one of that page's headings."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from webui.config import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "bench" / "README.md"]

# [text](target) and ![alt](target), the target up to whitespace or ")"; <https://...> autolinks are
# not relative. Code spans and fenced blocks are removed first, so `a[i](x)` in code is not a link.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def strip_code(text: str) -> str:
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(page: Path) -> list[str]:
    return LINK.findall(strip_code(page.read_text(encoding="utf-8")))


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def test_pages_exist() -> None:
    assert (REPO_ROOT / "docs").is_dir(), "docs/ is missing"
    missing = [str(p.relative_to(REPO_ROOT)) for p in PAGES if not p.is_file()]
    assert missing == []


def test_slug_follows_github() -> None:
    assert slug("In the terminal (like `ollama`)") == "in-the-terminal-like-ollama"
    assert slug("The image (Docker / podman)") == "the-image-docker--podman"
    assert slug("llama.cpp options") == "llamacpp-options"
    assert slug("The Extensions tab and `--extensions`") == "the-extensions-tab-and---extensions"


def test_the_link_pattern() -> None:
    assert LINK.findall("see [a](docs/a.md), ![pic](img/x.png \"t\") and <https://x.org>") == ["docs/a.md", "img/x.png"]
    assert links_in("`[a](nope.md)` and\n```\n[b](nope.md)\n```\n") == []


def links_in(text: str) -> list[str]:
    return LINK.findall(strip_code(text))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if is_external(target):
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target} (no such file: {dest})")
            continue
        if fragment and dest.suffix == ".md" and dest.is_file() and fragment not in anchors(dest):
            broken.append(f"{target} (no heading with anchor #{fragment} in {dest.name})")
    assert broken == [], f"broken links in {page.relative_to(REPO_ROOT)}:\n  " + "\n  ".join(broken)
