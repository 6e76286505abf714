"""The built-in persona_templates and character_bias extensions in the real turn flow, and the
Extensions/Parameters UI pieces built in-process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from webui.chat.service import ChatService
from webui.config import REPO_ROOT
from webui.generation.params import GenerationParams
from webui.plugins import ExtensionManager, MemoryStore


@pytest.fixture
def manager() -> ExtensionManager:
    return ExtensionManager([REPO_ROOT / "extensions"], entry_point_group=None, store=MemoryStore())


def service(chat_service, manager: ExtensionManager) -> ChatService:
    base = chat_service(tokens=["Sure", "!"])
    return ChatService(base.engine, base.repo, base.characters, extensions=manager)


def test_character_bias_steers_hidden_unless_shown(chat_service, repo, manager) -> None:
    manager.set_enabled(["character_bias"], persist=False)
    chat = service(chat_service, manager)
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hi", GenerationParams()))[-1]
    assert chat.engine.model.prompts[-1].endswith("*I am so happy* ")
    assert final.text == "Sure!" and repo.messages(conv.id)[-1].content == "Sure!"
    manager.set_param("character_bias", "show_in_reply", True)
    manager.set_param("character_bias", "bias_string", "*grins*")
    final = list(chat.send(conv.id, "again", GenerationParams()))[-1]
    assert final.text == "*grins* Sure!" and repo.messages(conv.id)[-1].content == "*grins* Sure!"
    manager.set_param("character_bias", "activate", False)
    list(chat.send(conv.id, "plain", GenerationParams()))
    assert "*grins*" not in chat.engine.model.prompts[-1].split("plain")[-1]


def test_persona_template_per_chat_with_variables(chat_service, repo, manager) -> None:
    manager.set_enabled(["persona_templates"], persist=False)
    chat = service(chat_service, manager)
    pirate = chat.new_conversation("Assistant")
    other = chat.new_conversation("Assistant")
    repo.update_settings(pirate.id, {"persona_template": "Pirate"})
    list(chat.send(pirate.id, "hello", GenerationParams()))
    assert "You are Assistant, and you talk like a pirate in every reply to You, arr." in chat.engine.model.prompts[-1]
    list(chat.send(other.id, "hello", GenerationParams()))
    assert "pirate" not in chat.engine.model.prompts[-1]
    # default for chats without a choice, with date variables filled in
    manager.set_param("persona_templates", "default_template", "Helpful assistant")
    list(chat.send(other.id, "again", GenerationParams()))
    prompt = chat.engine.model.prompts[-1]
    today = dt.datetime.now()
    assert f"Today is {today.strftime('%A')}, {today.strftime('%Y-%m-%d')}" in prompt
    assert "{{" not in prompt


def test_persona_fill_variables(manager) -> None:
    mod = manager.load("persona_templates").obj
    when = dt.datetime(2024, 3, 1, 14, 5)
    text = mod.fill("{{user}}/{{ CHAR }}/{{date}}/{{time}}/{{weekday}}/{{mode}}/{{unknown}}",
                    {"name1": "Ann", "name2": "Bob", "mode": "instruct"}, when)
    assert text == "Ann/Bob/2024-03-01/14:05/Friday/instruct/{{unknown}}"


def test_extensions_ui_builds_with_panels_areas_and_sampler_sliders(tmp_path: Path) -> None:
    import shutil

    import gradio as gr

    from tests.support.extensions import SAMPLER_EXTENSIONS_DIR, write_ext
    from webui.config import Settings
    from webui.context import build_context
    from webui.ui import extension_params
    from webui.ui.app import build_ui
    from webui.ui.live_reply import LiveReplies

    user_extensions = tmp_path / "extensions"  # the data dir's extensions folder
    shutil.copytree(SAMPLER_EXTENSIONS_DIR / "avoid_words", user_extensions / "avoid_words")
    write_ext(user_extensions, "unused_sampler", """
        from webui.plugins import SamplerSpec, sampler_param
        def register_samplers():
            return [SamplerSpec(name="unused", factory=lambda params: lambda ids, scores: scores,
                                params=(sampler_param("unused_strength", 0.0),))]
    """)
    ctx = build_context(Settings(data_dir=tmp_path, extensions=["example", "persona_templates", "avoid_words"]),
                        load_model=False)
    try:
        demo = build_ui(ctx, LiveReplies())
        ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
        for name in ("example", "avoid_words", "unused_sampler", "character_bias", "persona_templates"):
            assert f"ext-enabled-{name}" in ids
        assert {"ext-example-uppercase", "ext-failures", "ext-order", "persona-template"} <= ids
        assert isinstance(demo, gr.Blocks)
        # The enabled sampler extension's own sliders, and nothing from the disabled one.
        params = extension_params.all_sampler_params(ctx)
        assert [(ext, p.key, p.type) for ext, p in params] == [
            ("avoid_words", "avoid_words", "list"), ("avoid_words", "avoid_penalty", "float"),
            ("avoid_words", "avoid_from_token", "int")]
        assert {f"param-{p.key}" for _, p in params} <= ids
        assert "unused_sampler" not in ctx.extensions.enabled() and not ctx.extensions.info("unused_sampler").loaded
        tail = [[("avoid_penalty", "float"), ("avoid_words", "list")], 0.8, '["Paris", "Rome"]']
        assert extension_params.samplers_from_values(tail) == {"avoid_penalty": 0.8, "avoid_words": ["Paris", "Rome"]}
    finally:
        ctx.engine.shutdown()
