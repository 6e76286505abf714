"""Extension hook contract: every hook has a test here and a docs entry, or the suite fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.extensions import EXTENSIONS_DIR, REPO_ROOT, manager_for, write_ext
from webui.plugins import HOOKS, MemoryStore, ParamError

# ---------------------------------------------------------------------------- one check per hook


def check_params(tmp: Path) -> None:
    write_ext(tmp, "p", """
        params = {"display_name": "P", "is_tab": True, "on": False, "n": 3, "x": 0.5,
                  "s": "hi", "items": ["a"], "mode": "a"}
        params_meta = {"n": {"min": 0, "max": 10}, "mode": {"choices": ["a", "b"]}}
        def output_modifier(string):
            return string + ("!" if params["on"] else "") + params["s"] * params["n"]
    """)
    store = MemoryStore()
    mgr = manager_for(tmp, store)
    specs = mgr.param_specs("p")
    assert {k: s.type for k, s in specs.items()} == {
        "on": "bool", "n": "int", "x": "float", "s": "str", "items": "list", "mode": "str"}
    assert mgr.set_param("p", "on", "true") is True
    assert mgr.set_param("p", "n", "2") == 2
    assert mgr.set_param("p", "x", 1) == 1.0
    assert mgr.set_param("p", "items", '["b", "c"]') == ["b", "c"]
    for key, bad in [("n", "two"), ("n", 11), ("on", "maybe"), ("mode", "z"), ("items", [1]),
                     ("x", "nan"), ("s", 3), ("missing", 1), ("is_tab", False)]:
        with pytest.raises(ParamError):
            mgr.set_param("p", key, bad)
    mgr.enable("p")
    assert mgr.pipe("output_modifier", string="x", state={}) == "x!hihi"
    # Persisted: a new manager (a restart) over the same store gets the values back.
    assert store.data["p"] == {"on": True, "n": 2, "x": 1.0, "items": ["b", "c"]}
    again = manager_for(tmp, store)
    assert again.get_params("p")["n"] == 2 and again.get_params("p")["on"] is True
    again.reset_params("p")
    assert again.get_params("p")["n"] == 3 and store.data["p"] == {}


def check_setup(tmp: Path) -> None:
    write_ext(tmp, "s", """
        calls = []
        def setup():
            calls.append(1)
    """)
    write_ext(tmp, "bad", "def setup():\n    raise RuntimeError('no GPU')\n")
    mgr = manager_for(tmp)
    mgr.enable("s")
    mgr.disable("s")
    mgr.enable("s")
    assert mgr.load("s").obj.calls == [1]
    with pytest.raises(Exception, match="setup\\(\\) failed: RuntimeError: no GPU"):
        mgr.enable("bad")
    assert mgr.enabled() == ["s"]
    assert mgr.info("bad").error and mgr.failures()[-1].hook == "setup"


def check_ui(tmp: Path) -> None:
    write_ext(tmp, "a", """
        built = []
        params = {"display_name": "Alpha", "is_tab": True}
        def ui():
            built.append("a")
    """)
    write_ext(tmp, "b", "built = []\ndef ui():\n    built.append('b')\n")
    write_ext(tmp, "c", "def output_modifier(string):\n    return string\n")
    mgr = manager_for(tmp)
    mgr.set_enabled(["b", "c", "a"])
    assert mgr.ui_entries() == [("b", "b", False), ("a", "Alpha", True)]
    for name, _, _ in mgr.ui_entries():
        mgr.call(name, "ui")
    assert mgr.load("a").obj.built == ["a"] and mgr.load("b").obj.built == ["b"]


def _check_text_collect(tmp: Path, hook: str) -> None:
    write_ext(tmp, "a", f"def {hook}():\n    return 'A'\n")
    write_ext(tmp, "b", f"def {hook}():\n    return 'B'\n")
    mgr = manager_for(tmp)
    mgr.set_enabled(["b", "a"])
    assert mgr.collect(hook) == [("b", "B"), ("a", "A")]
    assert getattr(mgr, hook)() == "B\nA"


def check_custom_css(tmp: Path) -> None:
    _check_text_collect(tmp, "custom_css")


def check_custom_js(tmp: Path) -> None:
    _check_text_collect(tmp, "custom_js")


def check_register_samplers(tmp: Path) -> None:
    write_ext(tmp, "s", """
        from webui.plugins import SamplerSpec, sampler_param
        def register_samplers():
            return [SamplerSpec(name="shift", factory=lambda params: (lambda ids, scores: scores),
                                is_active=lambda p: p["shift_amount"] != 0,
                                params=(sampler_param("shift_amount", 0.0, min=-1.0, max=1.0),))]
    """)
    mgr = manager_for(tmp)
    assert mgr.samplers() == {}
    mgr.enable("s")
    assert list(mgr.samplers()) == ["shift"] and mgr.samplers()["shift"].extension == "s"
    assert [p.key for p in mgr.sampler_params()] == ["shift_amount"]
    assert mgr.build_logits_processors({}) == []  # inactive at its default
    assert len(mgr.build_logits_processors({"shift_amount": "0.5"})) == 1
    with pytest.raises(ParamError):
        mgr.build_logits_processors({"shift_amount": 2})
    mgr.disable("s")
    assert mgr.samplers() == {}


def _two_pipes(tmp: Path, hook: str, body_a: str, body_b: str, args: str):
    write_ext(tmp, "a", f"def {hook}({args}):\n    {body_a}\n")
    write_ext(tmp, "b", f"def {hook}({args}):\n    {body_b}\n")
    mgr = manager_for(tmp)
    mgr.set_enabled(["b", "a"])
    return mgr


def check_state_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "state_modifier", "return {**state, 'order': state['order'] + 'a'}",
                     "return {**state, 'order': state['order'] + 'b'}", "state")
    assert mgr.pipe("state_modifier", state={"order": ""}) == {"order": "ba"}


def check_history_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "history_modifier", "return history[-1:]",
                     "return history + [{'role': 'user', 'content': 'b'}]", "history")
    assert mgr.pipe("history_modifier", history=[{"role": "user", "content": "x"}]) == [
        {"role": "user", "content": "b"}]


def check_chat_input_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "chat_input_modifier", "return text + 'a', visible_text",
                     "return text + 'b', visible_text.upper()", "text, visible_text, state")
    assert mgr.pipe("chat_input_modifier", text="t", visible_text="v", state={}) == ("tba", "V")
    write_ext(tmp, "c", "def chat_input_modifier(text):\n    return text\n")  # not a pair
    mgr.enable("c", 0)
    assert mgr.pipe("chat_input_modifier", text="t", visible_text="v", state={}) == ("tba", "V")
    assert mgr.enabled() == ["b", "a"] and "must return a tuple" in mgr.failures()[-1].message


def check_input_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "input_modifier", "return string + ('A' if is_chat else 'a')",
                     "return string + state['tag']", "string, state, is_chat=False")
    assert mgr.pipe("input_modifier", string="x", state={"tag": "b"}) == "xba"
    assert mgr.pipe("input_modifier", string="x", state={"tag": "b"}, is_chat=True) == "xbA"


def check_bot_prefix_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "bot_prefix_modifier", "return string + '*'",
                     "return string + state['name'] + ':'", "string, state")
    assert mgr.pipe("bot_prefix_modifier", string="", state={"name": "Bot"}) == "Bot:*"


def check_custom_generate_chat_prompt(tmp: Path) -> None:
    write_ext(tmp, "decline", "def custom_generate_chat_prompt(user_input):\n    return None\n")
    write_ext(tmp, "a", """
        def custom_generate_chat_prompt(user_input, state, **kwargs):
            return f"{user_input}|{len(kwargs['history'])}|{kwargs['_continue']}"
    """)
    write_ext(tmp, "b", "def custom_generate_chat_prompt(user_input):\n    return 'B'\n")
    mgr = manager_for(tmp)
    assert mgr.first("custom_generate_chat_prompt", user_input="hi", state={}) is None
    mgr.set_enabled(["decline", "a", "b"])
    assert mgr.first("custom_generate_chat_prompt", user_input="hi", state={},
                     history=[1, 2], _continue=False) == "hi|2|False"
    assert mgr.implementers("custom_generate_chat_prompt") == ["decline", "a", "b"]


def check_custom_tokenized_length(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "custom_tokenized_length", "return 1", "return len(prompt.split())",
                     "prompt")
    assert mgr.first("custom_tokenized_length", prompt="three word prompt") == 3


def check_tokenizer_modifier(tmp: Path) -> None:
    mgr = _two_pipes(tmp, "tokenizer_modifier", "return prompt, input_ids + [1], input_embeds",
                     "return prompt + '!', input_ids + [2], 'emb'",
                     "state, prompt, input_ids, input_embeds")
    assert mgr.pipe("tokenizer_modifier", state={}, prompt="p", input_ids=[0],
                    input_embeds=None) == ("p!", [0, 2, 1], "emb")


def check_logits_processor_modifier(tmp: Path) -> None:
    # a: text-generation-webui style, appends in place and returns nothing; b returns a new list.
    mgr = _two_pipes(tmp, "logits_processor_modifier", "processor_list.append('a')",
                     "return processor_list + ['b']", "processor_list, input_ids")
    assert mgr.pipe("logits_processor_modifier", processor_list=[], input_ids=None) == ["b", "a"]
    assert mgr.enabled() == ["b", "a"]


def check_custom_generate_reply(tmp: Path) -> None:
    write_ext(tmp, "gen", """
        def custom_generate_reply(question, original_question, seed, state, stopping_strings,
                                  is_chat=False):
            text = ""
            for word in question.split():
                text += word
                yield text
    """)
    write_ext(tmp, "broken", """
        def custom_generate_reply(question):
            yield "partial"
            raise ValueError("lost connection")
    """)
    args = {"question": "a b c", "original_question": "a b c", "seed": 1, "state": {},
                "stopping_strings": []}
    mgr = manager_for(tmp)
    assert mgr.first("custom_generate_reply", **args) is None  # nothing enabled: use the model
    mgr.enable("gen")
    assert list(mgr.first("custom_generate_reply", **args)) == ["a", "ab", "abc"]
    mgr.enable("broken", 0)
    assert list(mgr.first("custom_generate_reply", **args)) == ["partial"]  # ends, no exception
    assert mgr.enabled() == ["gen"] and mgr.failures()[-1].extension == "broken"
    assert list(mgr.first("custom_generate_reply", **args))[-1] == "abc"


def check_output_modifier(tmp: Path) -> None:
    mgr = manager_for(tmp, None, EXTENSIONS_DIR)
    mgr.enable("example")
    assert mgr.pipe("output_modifier", string="Hello", state={}, is_chat=True) == "Hello"
    mgr.set_param("example", "uppercase", True)
    assert mgr.pipe("output_modifier", string="Hello", state={}, is_chat=True) == "HELLO"


HOOK_TESTS: dict[str, Callable[[Path], None]] = {
    "params": check_params,
    "setup": check_setup,
    "ui": check_ui,
    "custom_css": check_custom_css,
    "custom_js": check_custom_js,
    "register_samplers": check_register_samplers,
    "state_modifier": check_state_modifier,
    "history_modifier": check_history_modifier,
    "chat_input_modifier": check_chat_input_modifier,
    "input_modifier": check_input_modifier,
    "bot_prefix_modifier": check_bot_prefix_modifier,
    "custom_generate_chat_prompt": check_custom_generate_chat_prompt,
    "custom_tokenized_length": check_custom_tokenized_length,
    "tokenizer_modifier": check_tokenizer_modifier,
    "logits_processor_modifier": check_logits_processor_modifier,
    "custom_generate_reply": check_custom_generate_reply,
    "output_modifier": check_output_modifier,
}


def test_every_hook_has_a_test() -> None:
    assert sorted(set(HOOKS) - set(HOOK_TESTS)) == [], "hooks without a test in HOOK_TESTS"
    assert sorted(set(HOOK_TESTS) - set(HOOKS)) == [], "tests for hooks not in the contract"


@pytest.mark.parametrize("hook", list(HOOKS))
def test_hook(hook: str, tmp_path: Path) -> None:
    check = HOOK_TESTS.get(hook)
    assert check is not None, f"hook {hook!r} has no test: add one to HOOK_TESTS"
    check(tmp_path)


def docs_section() -> tuple[str, str]:
    """The "Hooks" section of docs/extensions.md (its table is generated from the hook specs)."""
    where = "docs/extensions.md"
    text = (REPO_ROOT / where).read_text(encoding="utf-8")
    assert "## Hooks" in text, f"{where} lost its 'Hooks' section"
    start = text.index("## Hooks")
    following = re.search(r"^## ", text[start + 3:], flags=re.MULTILINE)
    return where, text[start:start + 3 + following.start()] if following else text[start:]


@pytest.mark.parametrize("hook", list(HOOKS))
def test_hook_is_documented(hook: str) -> None:
    where, section = docs_section()
    assert any(re.search(rf"\b{hook}\b", line) for line in section.splitlines()), (
        f"hook {hook!r} has no line in the 'Hooks' section of {where}")


@pytest.mark.parametrize("hook", [h for h, s in HOOKS.items() if s.kind != "attribute"])
def test_example_extension_demonstrates_hook(hook: str) -> None:
    mgr = manager_for(EXTENSIONS_DIR)
    ext = mgr.load("example")
    assert hook in ext.hooks, f"extensions/example/script.py lacks {hook}()"
    assert (ext.hooks[hook].__doc__ or "").strip(), f"example {hook}() has no docstring"
    assert ext.warnings == []


def test_example_is_harmless_by_default() -> None:
    mgr = manager_for(EXTENSIONS_DIR)
    mgr.enable("example")
    state = {"temperature": 0.7}
    history = [{"role": "user", "content": "hi"}]
    assert mgr.pipe("state_modifier", state=state) == state
    assert mgr.pipe("history_modifier", history=history) == history
    assert mgr.pipe("chat_input_modifier", text="t", visible_text="v", state=state) == ("t", "v")
    assert mgr.pipe("input_modifier", string="in", state=state) == "in"
    assert mgr.pipe("bot_prefix_modifier", string="Bot:", state=state) == "Bot:"
    assert mgr.first("custom_generate_chat_prompt", user_input="x", state=state) is None
    assert mgr.first("custom_tokenized_length", prompt="x") is None
    assert mgr.pipe("tokenizer_modifier", state=state, prompt="p", input_ids=[1],
                    input_embeds=None) == ("p", [1], None)
    assert mgr.pipe("logits_processor_modifier", processor_list=[], input_ids=None) == []
    assert mgr.first("custom_generate_reply", question="q", original_question="q", seed=0,
                     state=state, stopping_strings=[]) is None
    assert mgr.pipe("output_modifier", string="out", state=state) == "out"
    assert mgr.custom_css() == "" and mgr.custom_js() == "" and mgr.samplers() == {}
    assert mgr.failures() == [] and mgr.enabled() == ["example"]


def test_example_settings_change_behaviour() -> None:
    mgr = manager_for(EXTENSIONS_DIR)
    mgr.enable("example")
    mgr.set_param("example", "prefix", "Please: ")
    mgr.set_param("example", "temperature_override", "1.5")
    mgr.set_param("example", "max_history_turns", 1)
    mgr.set_param("example", "mode", "echo")
    assert mgr.pipe("input_modifier", string="hi", state={}) == "Please: hi"
    assert mgr.pipe("state_modifier", state={"temperature": 0.7}) == {"temperature": 1.5}
    assert len(mgr.pipe("history_modifier", history=[{}, {}, {}, {}])) == 2
    reply = mgr.first("custom_generate_reply", question="sys\nsay it back", original_question="",
                      seed=0, state={}, stopping_strings=[])
    assert list(reply) == ["say", "say it", "say it back"]
