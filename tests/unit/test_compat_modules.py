"""Extensions written for text-generation-webui: its ``modules`` package (webui/compat), its history
shape, extension folders as upstream (a user's folder wins, disabled ones are never imported, broken
ones are listed), and ``POST /v1/internal/chat-prompt`` running the hooks a turn runs.

The fixture extensions (tests/support/upstream_style_extensions) are copied into a temp data dir.
The fake backend records the prompt each reply was generated from.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from webui.compat.history import from_upstream, to_upstream
from webui.config import Settings
from webui.context import AppContext, build_context
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams
from webui.plugins import ExtensionError, ExtensionManager, JsonFileStore, MemoryStore

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "upstream_style_extensions"
HISTORY = [("user", "hi"), ("assistant", "hello"), ("user", "how are you")]


def data_dir_with_fixtures(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data / "extensions")
    return data


def write_ext(base: Path, name: str, source: str) -> Path:
    (base / name).mkdir(parents=True, exist_ok=True)
    (base / name / "script.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return base / name


@pytest.fixture
def app_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    data = data_dir_with_fixtures(tmp_path)
    ctx = build_context(Settings(data_dir=data, extensions=[]), load_model=False)
    ctx.engine.load(ModelSpec(path="fake", loader="fake", display_name="fake"))
    try:
        yield ctx
    finally:
        ctx.engine.shutdown()


def sent_prompts(ctx: AppContext) -> list[str]:
    return ctx.engine.model.prompts  # type: ignore[union-attr]


# ------------------------------------------------------------------------------ history shape


def test_history_round_trips_through_upstreams_shape() -> None:
    messages = [{"role": "assistant", "content": "greeting"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    shaped = to_upstream(messages)
    assert shaped["internal"] == [["", "greeting"], ["a", "b"], ["c", ""]] == shaped["visible"]
    assert from_upstream(shaped) == messages
    with pytest.raises(TypeError, match="internal"):
        from_upstream([{"role": "user", "content": "x"}])


# ------------------------------------------------------------------------------ folders


def test_a_disabled_extension_is_listed_from_its_files_and_never_imported(tmp_path: Path) -> None:
    data = data_dir_with_fixtures(tmp_path)
    marker = data / "extensions" / "tgw_side_effect" / "imported.txt"
    mgr = ExtensionManager([data / "extensions"], entry_point_group=None, store=JsonFileStore(data / "ext.json"))
    mgr.check_all()
    info = mgr.info("tgw_side_effect")
    assert not info.loaded and not info.enabled
    assert info.description.startswith("Writes imported.txt next to itself")
    assert info.hooks == ("output_modifier",)
    assert mgr.param_specs("tgw_side_effect")["level"].default == 3
    assert mgr.set_param("tgw_side_effect", "level", "5") == 5  # saved for when it is imported
    assert mgr.info("tgw_ui").display_name == "Fill the box" and mgr.info("tgw_ui").upstream
    assert not marker.exists()
    mgr.enable("tgw_side_effect")
    assert marker.read_text() == "imported\n"
    assert mgr.get_params("tgw_side_effect")["level"] == 5


def test_broken_and_unmet_extensions_are_listed_with_their_problem(tmp_path: Path) -> None:
    data = data_dir_with_fixtures(tmp_path)
    mgr = ExtensionManager([data / "extensions"], entry_point_group=None, store=MemoryStore())
    mgr.check_all()
    unmet = mgr.info("tgw_unmet").error or ""
    assert "no_such_package_for_webui_tests" in unmet and "not installed" in unmet  # found without importing it
    assert mgr.info("tgw_broken").error is None  # an import-time error only shows once it is enabled
    refused = mgr.set_enabled(["tgw_broken", "tgw_unmet", "tgw_prompt"])
    assert set(refused) == {"tgw_broken", "tgw_unmet"} and mgr.enabled() == ["tgw_prompt"]
    assert "tgw_broken fails on purpose" in refused["tgw_broken"]
    assert "module 'no_such_package_for_webui_tests' is not installed" in refused["tgw_unmet"]
    problems = {Path(p.file).parent.name: p.reason for p in mgr.problems()}
    assert {"tgw_broken", "tgw_unmet"} <= set(problems)


def test_what_the_files_say_without_importing(tmp_path: Path) -> None:
    """A README describes an extension without a docstring; a syntax error and a package that is
    not installed are problems; a params dict built by code is read once it is enabled."""
    readme = write_ext(tmp_path, "readme", "import os\nparams = {'level': 2}\n")
    (readme / "README.md").write_text("# Readme ext\n\nDoes a thing\nfor the user.\n\nMore.\n", encoding="utf-8")
    write_ext(tmp_path, "syntax", "def broken(:\n")
    write_ext(tmp_path, "computed", "import os\nparams = {'home': os.sep}\ntry:\n    import not_here_x\n"
                                    "except ImportError:\n    pass\n")
    mgr = ExtensionManager([tmp_path], entry_point_group=None)
    assert mgr.info("readme").description == "Does a thing for the user."
    assert mgr.param_specs("readme")["level"].default == 2 and mgr.info("readme").error is None
    assert "SyntaxError" in (mgr.info("syntax").error or "")
    computed = mgr.info("computed")
    assert computed.error is None and "shown once it is enabled" in computed.warnings[0]  # optional import: fine
    mgr.enable("computed")
    assert mgr.param_specs("computed")["home"].default


def test_a_missing_modules_import_names_what_this_app_lacks(tmp_path: Path) -> None:
    write_ext(tmp_path, "lacks", "from modules.models_settings import get_model_metadata\n")
    write_ext(tmp_path, "lacks_name", "from modules.shared import no_such_thing_here\n")
    mgr = ExtensionManager([tmp_path], entry_point_group=None)
    static = mgr.info("lacks").error or ""
    assert "modules.models_settings" in static and "does not provide" in static
    for name in ("lacks", "lacks_name"):
        with pytest.raises(ExtensionError) as caught:
            mgr.enable(name)
        message = str(caught.value)
        assert "requirements.txt" not in message and "does not provide" in message, message


def test_a_users_extension_wins_over_the_builtin_of_the_same_name(tmp_path: Path) -> None:
    builtin, user = tmp_path / "app", tmp_path / "data"
    write_ext(builtin, "character_bias", "def output_modifier(string):\n    return string + ' builtin'\n")
    write_ext(user, "character_bias", '"""The user\'s copy."""\ndef output_modifier(string):\n'
                                      "    return string + ' user'\n")
    mgr = ExtensionManager([builtin, user], entry_point_group=None)
    assert mgr.info("character_bias").location == str(user / "character_bias" / "script.py")
    assert mgr.info("character_bias").description == "The user's copy."
    mgr.enable("character_bias")
    assert mgr.pipe("output_modifier", string="x", state={}) == "x user"
    assert any("shadowed" in p.reason for p in mgr.problems())


def test_extensions_package_imports_a_data_dir_extensions_module(tmp_path: Path) -> None:
    data = data_dir_with_fixtures(tmp_path)
    mgr = ExtensionManager([data / "extensions"], entry_point_group=None)
    mgr.enable("tgw_package")
    mgr.set_param("tgw_package", "activate", True)
    assert mgr.pipe("output_modifier", string="quiet", state={}) == "QUIET"
    assert sys.modules["extensions.tgw_package.script"] is mgr.load("tgw_package").obj


# ------------------------------------------------------------------------------ hooks and modules


def test_upstream_hooks_get_upstreams_history_and_change_the_prompt(app_ctx: AppContext) -> None:
    plain = app_ctx.chat.prepare_answer(list(HISTORY), GenerationParams()).prompt
    app_ctx.extensions.set_enabled(["tgw_history", "tgw_prompt"])
    reply = list(app_ctx.chat.answer(list(HISTORY), GenerationParams()))[-1]
    sent = sent_prompts(app_ctx)[-1]
    # history_modifier marked the earlier user message (upstream's shape, the pending input left out);
    # custom_generate_chat_prompt rendered through chat.generate_chat_prompt, then added its note.
    assert sent == plain.replace("hi", "[seen] hi") + " [note from tgw_prompt]"
    # output_modifier with shared.is_chat(): upstream-style, so what the chat draws, not the API's text
    assert (reply.text, reply.display) == ("Hello there!", "Hello there! (chat)")
    state = app_ctx.chat.prepare_answer(list(HISTORY), GenerationParams()).turn.state
    assert state["seen_by_tgw_prompt"] is True and isinstance(state["history"], list)  # ours again


@pytest.mark.parametrize("character", [None, "Assistant"])
def test_chat_generate_chat_prompt_renders_as_the_turn_does(app_ctx: AppContext, character: str | None) -> None:
    """An extension passing everything through chat.generate_chat_prompt (as upstream's example
    does) leaves the prompt unchanged: system message, history, character and all."""
    history = [("system", "Be brief."), *HISTORY]
    plain = app_ctx.chat.prepare_answer(list(history), GenerationParams(), character=character).prompt
    app_ctx.extensions.load("tgw_prompt").params["note"] = ""
    app_ctx.extensions.set_enabled(["tgw_prompt", "tgw_history"])
    app_ctx.extensions.set_param("tgw_history", "activate", False)
    hooked = app_ctx.chat.prepare_answer(list(history), GenerationParams(), character=character).prompt
    assert hooked == plain and "Be brief." in plain


def test_chat_prompt_endpoint_is_the_prompt_a_turn_sends(app_ctx: AppContext) -> None:
    from webui.server import create_api_app

    app_ctx.extensions.set_enabled(["tgw_history", "tgw_prompt"])
    messages = [{"role": "system", "content": "Be brief."}, *({"role": r, "content": c} for r, c in HISTORY)]
    body = {"messages": messages, "max_tokens": 3}
    with TestClient(create_api_app(app_ctx)) as client:
        shown = client.post("/v1/internal/chat-prompt", json=body)
        assert shown.status_code == 200, shown.text
        answered = client.post("/v1/chat/completions", json=body)
        assert answered.status_code == 200, answered.text
    assert shown.json()["prompt"] == sent_prompts(app_ctx)[-1]
    prompt = shown.json()["prompt"]
    assert "[seen] hi" in prompt and prompt.endswith("[note from tgw_prompt]")
    assert "Be brief." in prompt  # the system message outlives upstream's history shape


def test_shared_reads_the_app_through_the_bridge(app_ctx: AppContext) -> None:
    app_ctx.extensions.set_enabled(["tgw_history"])  # importing it installs `modules`
    import modules.shared as shared
    from modules import chat, html_generator, text_generation, utils  # noqa: F401
    from modules.logging_colors import logger

    assert shared.model_name == "fake" and shared.tokenizer is not None
    assert shared.args.extensions == ["tgw_history"]
    assert shared.user_data_dir == app_ctx.settings.data_dir
    assert shared.settings["name1"] == app_ctx.settings.user_name
    assert shared.is_chat() and logger.name == "text-generation-webui"
    assert "<em>x</em>" in html_generator.convert_to_markdown("*x*")
    app_ctx.engine.unload()
    assert shared.tokenizer is None and shared.model_name == "None"


def test_the_app_never_imports_modules() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p) for p in [*root.glob("webui/**/*.py"), root / "app.py"]
                 if "compat/modules" not in p.as_posix()
                 and any(line.lstrip().startswith(("import modules", "from modules"))
                         for line in p.read_text(encoding="utf-8").splitlines())]
    assert offenders == []


# ------------------------------------------------------------------------------ the Extensions tab


def test_the_page_builds_with_broken_extensions_and_lists_them(tmp_path: Path, fake_backend: None) -> None:
    """An exception in setup(), ui() or the settings never stops the page; a disabled extension's
    ui() is not built (nor is it imported); an enabled one's is, with upstream's component names."""
    from tests.support.ui_context import ui_context
    from webui.ui.app import build_ui
    from webui.ui.extensions_tab import description_markdown, status_markdown
    from webui.ui.live_reply import LiveReplies

    data = data_dir_with_fixtures(tmp_path)
    exts = data / "extensions"
    write_ext(exts, "bad_ui", "params = {'a': 1}\ndef ui():\n    raise RuntimeError('ui broke')\n")
    write_ext(exts, "bad_setup", "def setup():\n    raise RuntimeError('setup broke')\n")
    write_ext(exts, "bad_meta", "params = {'a': 1}\nparams_meta = {'a': {'min': 5, 'max': 1}}\n")
    enabled = ["bad_ui", "bad_setup", "tgw_broken", "tgw_unmet", "tgw_ui"]
    with ui_context(data, extensions=enabled) as ctx:
        demo = build_ui(ctx, LiveReplies())
        ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
        assert "tgw-ui-fill" in ids and "ext-enabled-tgw_side_effect" in ids and "ext-about-bad_meta" in ids
        assert ctx.extensions.compat.gradio["textbox"].elem_id == "chat-input"
        assert ctx.extensions.compat.gradio["tgw_ui_button"].elem_id == "tgw-ui-fill"
        assert not (exts / "tgw_side_effect" / "imported.txt").exists()
        assert [f.hook for f in ctx.extensions.failures() if f.extension == "bad_ui"] == ["ui"]
        assert "setup broke" in (ctx.extensions.info("bad_setup").error or "")
        listed = {Path(p.file).parent.name for p in ctx.problems.all()}
        assert {"bad_setup", "tgw_broken", "tgw_unmet", "bad_meta"} <= listed
        # what it does first, the hook names folded under Details
        assert description_markdown(ctx, "tgw_history").startswith("Marks every earlier user message")
        status = status_markdown(ctx, "tgw_history")
        assert status.index("<details>") < status.index("`history_modifier`")
