"""Every button of the built UI is labelled with text only (no emoji: a machine without an emoji font
draws an empty box), the icons are well-formed SVG, and the shortcut list matches the page script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import gradio as gr
import pytest
import regex

from webui.ui import chat_tab, icons, shortcuts

EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Presentation}\u20e3\ufe0f]")
STATIC = Path(chat_tab.__file__).parent / "static"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from webui.config import Settings
    from webui.context import build_context
    from webui.ui.app import build_ui
    from webui.ui.live_reply import LiveReplies

    data = tmp_path_factory.mktemp("labels") / "data"
    ctx = build_context(Settings(data_dir=data, extensions=["example", "persona_templates"]), load_model=False)
    yield build_ui(ctx, LiveReplies())
    ctx.engine.shutdown()


def test_the_emoji_check_finds_emoji() -> None:
    assert all(EMOJI.search(s) for s in ("➕ New chat", "🔄 Refresh", "➡️ Continue", "👤", "⚠️"))
    assert not any(EMOJI.search(s) for s in ("New chat", "< n/m >", "Ünïcödé", "Export as", "↑", "…"))


def test_no_button_label_holds_an_emoji(demo) -> None:  # type: ignore[no-untyped-def]
    buttons = [b for b in demo.blocks.values() if isinstance(b, gr.Button)]
    assert len(buttons) > 30  # the whole UI was built
    labelled = {b.elem_id or str(b._id): str(b.value or "") for b in buttons}
    assert {k: v for k, v in labelled.items() if EMOJI.search(v)} == {}
    assert labelled["new-chat"] == "New chat" and labelled["model-refresh"] == "Refresh"


def test_labels_of_other_controls_hold_no_emoji(demo) -> None:  # type: ignore[no-untyped-def]
    labels = [(b.elem_id, str(getattr(b, "label", "") or "")) for b in demo.blocks.values()]
    assert [x for x in labels if EMOJI.search(x[1])] == []


@pytest.mark.parametrize("name", sorted(icons.PATHS))
def test_each_icon_is_well_formed_svg(name: str) -> None:
    root = ET.fromstring(icons.svg(name))
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 24 24" and root.get("stroke") == "currentColor"
    assert icons.data_uri(name).startswith("data:image/svg+xml,") and "%3Csvg" in icons.data_uri(name)


def test_button_css_draws_each_icon_before_its_button() -> None:
    css = icons.button_css({"new-chat": "plus", "send": "send"})
    assert css.count("::before") == 2 and "#new-chat::before" in css and "#send::before" in css
    assert "mask: url(" in css and "currentColor" in css


def test_every_shortcut_is_handled_by_the_page_script() -> None:
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    for s in shortcuts.SHORTCUTS:
        assert f"'{s.action}'" in script, s.action
    html = shortcuts.help_html()
    assert "${" not in html and "`" not in html and html.count("<tr>") == len(shortcuts.SHORTCUTS)
    assert shortcuts.markdown_table().count("\n") == len(shortcuts.SHORTCUTS) + 1


def test_the_page_script_gets_its_icons() -> None:
    script = chat_tab.page_script()
    assert "__ICONS__" not in script and re.search(r'"trash": "<svg', script)
    assert "${" not in chat_tab.TOOLS_TEMPLATE.replace("${value}", "")
