"""ExtensionManager behaviour: discovery, compatibility, calling, order, isolation, persistence."""

from __future__ import annotations

import importlib.metadata
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.extensions import manager_for, pipe_ext, write_ext
from webui.plugins import ExtensionError, ExtensionManager, JsonFileStore, MemoryStore
from webui.plugins.calling import CallPlanError, plan_call
from webui.plugins.loader import unmet_requirements

# A text-generation-webui extension as people wrote them: module-level params read at call
# time, ``state`` and ``is_chat`` arguments, an old-style output_modifier without is_chat.
TGW_STYLE = """
import re

params = {
    "display_name": "Shout",
    "is_tab": False,
    "activate": True,
    "suffix": "!",
}


def input_modifier(string, state, is_chat=False):
    if not params["activate"]:
        return string
    return string.strip() + (" (chat)" if is_chat else "")


def output_modifier(string, state):
    if not params["activate"]:
        return string
    return re.sub(r"\\.$", "", string) + params["suffix"]


def bot_prefix_modifier(string, state):
    return string


def chat_input_modifier(text, visible_text, state):
    return text, visible_text


def ui():
    pass
"""


def test_text_generation_webui_extension_works_unchanged(tmp_path: Path) -> None:
    write_ext(tmp_path, "shout", TGW_STYLE)
    mgr = manager_for(tmp_path)
    mgr.enable("shout")
    assert mgr.warnings("shout") == []
    assert mgr.info("shout").display_name == "Shout"
    state = {"mode": "chat"}
    assert mgr.pipe("input_modifier", string="  hi ", state=state, is_chat=True) == "hi (chat)"
    assert mgr.pipe("input_modifier", string=" hi ", state=state) == "hi"
    assert mgr.pipe("output_modifier", string="Hello.", state=state, is_chat=True) == "Hello!"
    mgr.set_param("shout", "activate", False)
    assert mgr.pipe("output_modifier", string="Hello.", state=state) == "Hello."
    assert mgr.failures() == []


def test_subset_arguments_by_name_position_and_kwargs(tmp_path: Path) -> None:
    write_ext(tmp_path, "subsets", """
        seen = {}
        def state_modifier():                     # no arguments at all
            seen["state_modifier"] = ()
            return {"replaced": True}
        def input_modifier(state, string):        # by name, in another order
            seen["input_modifier"] = (state, string)
            return string + "1"
        def output_modifier(text, st, /):         # renamed, positional-only: by position
            seen["output_modifier"] = (text, st)
            return text + "2"
        def bot_prefix_modifier(string, **rest):  # **kwargs receives the others
            seen["bot_prefix_modifier"] = rest
            return string + "3"
        def history_modifier(*, history):          # keyword-only
            return history + ["4"]
    """)
    mgr = manager_for(tmp_path)
    mgr.enable("subsets")
    seen = mgr.load("subsets").obj.seen
    assert mgr.pipe("state_modifier", state={}) == {"replaced": True}
    assert mgr.pipe("input_modifier", string="s", state={"k": 1}, is_chat=True) == "s1"
    assert seen["input_modifier"] == ({"k": 1}, "s")
    assert mgr.pipe("output_modifier", string="o", state="ST") == "o2"
    assert seen["output_modifier"] == ("o", "ST")
    assert mgr.pipe("bot_prefix_modifier", string="b", state="ST") == "b3"
    assert seen["bot_prefix_modifier"] == {"state": "ST"}
    assert mgr.pipe("history_modifier", history=[]) == ["4"]
    assert mgr.failures() == [] and mgr.warnings("subsets") == []


def test_plan_call_rules() -> None:
    def renamed(text, params=None):  # upstream passes (string, state) positionally
        return text, params

    plan = plan_call(renamed, ("string", "state", "is_chat"))
    assert plan.bind({"string": "s", "state": "st", "is_chat": True}) == ([], {"text": "s", "params": "st"})

    def optional_posonly(a=1, /, string=None):
        return a, string

    args, kwargs = plan_call(optional_posonly, ("string",)).bind({"string": "s"})
    assert optional_posonly(*args, **kwargs) == (1, "s")

    def needs_more(string, state, eos_token):
        return string

    with pytest.raises(CallPlanError, match="eos_token"):
        plan_call(needs_more, ("string", "state"))
    assert plan_call(len, ("string",)).bind({"string": "abc"}) == (["abc"], {})


def test_hook_needing_unknown_argument_warns_and_is_isolated(tmp_path: Path) -> None:
    write_ext(tmp_path, "old", "def output_modifier(string, state, eos_token):\n    return string\n")
    mgr = manager_for(tmp_path)
    mgr.enable("old")
    assert any("eos_token" in w for w in mgr.warnings("old"))
    assert mgr.pipe("output_modifier", string="x", state={}) == "x"
    assert mgr.enabled() == [] and mgr.failures()[0].hook == "output_modifier"


def test_pipe_follows_enabled_order_and_reorders_live(tmp_path: Path) -> None:
    for name in "abc":
        write_ext(tmp_path, name, pipe_ext(name))
    mgr = manager_for(tmp_path)
    assert mgr.set_enabled(["c", "a", "b"]) == {}
    assert mgr.pipe("output_modifier", string="", state={}) == "cab"
    mgr.enable("b", 0)  # move
    assert mgr.enabled() == ["b", "c", "a"]
    assert mgr.pipe("output_modifier", string="", state={}) == "bca"


def test_enable_disable_without_restart(tmp_path: Path) -> None:
    write_ext(tmp_path, "a", pipe_ext("a"))
    mgr = manager_for(tmp_path)
    assert mgr.pipe("output_modifier", string="x", state={}) == "x"
    mgr.enable("a")
    assert mgr.pipe("output_modifier", string="x", state={}) == "xa"
    mgr.disable("a")
    assert mgr.pipe("output_modifier", string="x", state={}) == "x"
    assert mgr.is_enabled("a") is False and mgr.info("a").loaded
    write_ext(tmp_path, "late", pipe_ext("L"))  # dropped in while running
    mgr.enable("late")
    assert mgr.pipe("output_modifier", string="x", state={}) == "xL"


def test_exception_isolation(tmp_path: Path) -> None:
    write_ext(tmp_path, "a", pipe_ext("a"))
    write_ext(tmp_path, "boom", """
        def output_modifier(string):
            raise RuntimeError("kaput")
    """)
    write_ext(tmp_path, "none", "def output_modifier(string):\n    pass\n")
    write_ext(tmp_path, "c", pipe_ext("c"))
    store = MemoryStore()
    mgr = manager_for(tmp_path, store)
    mgr.set_enabled(["a", "boom", "none", "c"])
    assert mgr.pipe("output_modifier", string="", state={}) == "ac"
    assert mgr.enabled() == ["a", "c"]
    failures = [(f.extension, f.hook) for f in mgr.failures()]
    assert failures == [("boom", "output_modifier"), ("none", "output_modifier")]
    assert mgr.failures()[0].message == "RuntimeError: kaput"
    assert "kaput" in mgr.failures()[0].traceback
    assert "returned None" in mgr.failures()[1].message
    # Session-only: the saved list still has them, so a restart tries again.
    assert store.data["@enabled"]["order"] == ["a", "boom", "none", "c"]
    mgr.clear_failures()
    assert mgr.failures() == []


def test_failing_first_hook_falls_through(tmp_path: Path) -> None:
    write_ext(tmp_path, "a", "def custom_tokenized_length(prompt):\n    raise KeyError(prompt)\n")
    write_ext(tmp_path, "b", "def custom_tokenized_length(prompt):\n    return 7\n")
    mgr = manager_for(tmp_path)
    mgr.set_enabled(["a", "b"])
    assert mgr.first("custom_tokenized_length", prompt="p") == 7
    assert mgr.enabled() == ["b"]


def test_unknown_hooks_are_reported_at_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_ext(tmp_path, "typos", """
        from os.path import join  # imported functions are not the extension's own
        def outptu_modifier(string):
            return string
        def reply_modifier(string):
            return string
        def custom_thing():
            pass
        def helper():
            pass
        def _private_modifier():
            pass
        ui = "not callable"
    """)
    mgr = manager_for(tmp_path)
    with caplog.at_level("WARNING"):
        warnings = mgr.warnings("typos")
    text = "\n".join(warnings)
    assert "outptu_modifier() is not a known hook" in text and "did you mean 'output_modifier'" in text
    assert "reply_modifier()" in text and "custom_thing()" in text
    assert "ui is not a function" in text
    assert "helper" not in text and "_private" not in text and "join" not in text
    assert len(warnings) == 4
    assert "outptu_modifier" in caplog.text


def test_unmet_requirements_refuse_enable_with_names(tmp_path: Path) -> None:
    write_ext(tmp_path, "needy", pipe_ext("n"), requirements="""
        # comment
        packaging>=20          # satisfied
        packaging>=9999
        no-such-package-xyz-webui==1.0
        other-missing-pkg-webui; python_version < "3"
        --index-url https://example.invalid/simple
    """)
    mgr = manager_for(tmp_path)
    with pytest.raises(ExtensionError) as info:
        mgr.enable("needy")
    message = str(info.value)
    assert "packaging>=9999 (installed: " in message
    assert "no-such-package-xyz-webui==1.0 (not installed)" in message
    assert "other-missing-pkg-webui" not in message  # its marker excludes this Python
    assert "pip install -r" in message and "requirements.txt" in message
    assert mgr.enabled() == [] and mgr.info("needy").error == message
    assert not mgr.info("needy").loaded  # not imported at all


def test_unmet_requirements_parser() -> None:
    assert unmet_requirements(["packaging", "", "# x", "-r other.txt", "not a valid req !!"]) == []


def test_missing_import_gives_clear_message(tmp_path: Path) -> None:
    write_ext(tmp_path, "imp", "import no_such_module_webui_xyz\n")
    mgr = manager_for(tmp_path)
    with pytest.raises(ExtensionError, match="no_such_module_webui_xyz.*requirements.txt"):
        mgr.enable("imp")


def test_unknown_extension(tmp_path: Path) -> None:
    write_ext(tmp_path, "a", pipe_ext("a"))
    mgr = manager_for(tmp_path)
    with pytest.raises(ExtensionError, match="unknown extension 'nope'; available: a"):
        mgr.enable("nope")
    assert mgr.set_enabled(["nope", "a"]) == {"nope": "unknown extension 'nope'; available: a"}
    assert mgr.enabled() == ["a"]


def test_enabled_order_persists(tmp_path: Path) -> None:
    ext_dir = tmp_path / "ext"
    for name in "ab":
        write_ext(ext_dir, name, pipe_ext(name))
    store = JsonFileStore(tmp_path / "data" / "extensions.json")
    mgr = ExtensionManager([ext_dir], entry_point_group=None, store=store)
    assert mgr.restore_enabled(default=["a"]) == {} and mgr.enabled() == ["a"]  # nothing saved
    mgr.enable("b", 0)
    restarted = ExtensionManager([ext_dir], entry_point_group=None, store=store)
    assert restarted.enabled() == []
    assert restarted.restore_enabled(default=["a"]) == {}
    assert restarted.enabled() == ["b", "a"]
    assert restarted.pipe("output_modifier", string="", state={}) == "ba"


def test_discovery_directories_precedence_and_relative_imports(tmp_path: Path) -> None:
    first, second = tmp_path / "repo", tmp_path / "data"
    write_ext(first, "same", pipe_ext("first"))
    write_ext(second, "same", pipe_ext("second"))
    pkg = write_ext(second, "pkg", """
        from . import helper
        def output_modifier(string):
            return helper.shout(string)
    """)
    (pkg / "helper.py").write_text("def shout(s):\n    return s.upper()\n")
    (second / "_hidden").mkdir()
    (second / "_hidden" / "script.py").write_text("")
    mgr = ExtensionManager([first, second, tmp_path / "missing"], entry_point_group=None)
    assert [i.name for i in mgr.available()] == ["pkg", "same"]
    mgr.set_enabled(["same", "pkg"])
    assert mgr.pipe("output_modifier", string="x", state={}) == "XSECOND"  # the later (data dir's) folder wins


def test_two_managers_do_not_share_module_state(tmp_path: Path) -> None:
    write_ext(tmp_path, "p", "params = {'n': 1}\n")
    one, two = manager_for(tmp_path), manager_for(tmp_path)
    one.set_param("p", "n", 5)
    assert two.get_params("p")["n"] == 1
    assert one.load("p").obj is not two.load("p").obj


def _fake_distribution(site: Path, module_source: str) -> None:
    (site / "fake_webui_ext").mkdir(parents=True)
    (site / "fake_webui_ext" / "__init__.py").write_text(textwrap.dedent(module_source))
    dist = site / "fake_webui_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-webui-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[webui.extensions]\nfromdist = fake_webui_ext\n[other.group]\nx = fake_webui_ext\n")


def test_entry_point_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, """
        params = {"suffix": "?"}
        def output_modifier(string):
            return string + params["suffix"]
    """)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        mgr = ExtensionManager([tmp_path / "none"], store=MemoryStore())
        info = {i.name: i for i in mgr.available()}
        assert "fromdist" in info and info["fromdist"].source == "entry_point"
        assert "fake-webui-ext" in info["fromdist"].location
        mgr.enable("fromdist")
        mgr.set_param("fromdist", "suffix", "!")
        assert mgr.pipe("output_modifier", string="hi", state={}) == "hi!"
        assert "x" not in info  # other groups are ignored
        # A directory extension with the same name wins over the entry point.
        write_ext(tmp_path / "dir", "fromdist", pipe_ext("D"))
        other = ExtensionManager([tmp_path / "dir"], store=MemoryStore())
        assert other.info("fromdist").source == "directory"
    finally:
        sys.modules.pop("fake_webui_ext", None)


def test_public_api_signatures() -> None:
    """The API the chat/engine/UI layers use; changing it needs their call sites changed."""
    names = {n for n, _ in inspect.getmembers(ExtensionManager) if not n.startswith("_")}
    assert {"discover", "available", "info", "load", "enable", "disable", "set_enabled",
            "restore_enabled", "enabled", "is_enabled", "warnings", "failures", "clear_failures",
            "param_specs", "get_params", "set_param", "reset_params", "implementers", "pipe",
            "first", "collect", "call", "custom_css", "custom_js", "ui_entries", "samplers",
            "sampler_params", "build_logits_processors"} <= names
