"""Extension hooks in the real turn flow: ChatService + fake backend + real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.extensions import SAMPLER_EXTENSIONS_DIR, manager_for, write_ext
from webui.chat.hooks import TurnHooks, split_sampler_fields
from webui.chat.service import ChatService
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.plugins import ExtensionManager


def service_with(chat_service, tmp_path: Path, sources: dict[str, str], tokens: list[str] | None = None,
                 **kwargs) -> tuple[ChatService, ExtensionManager]:
    for name, source in sources.items():
        write_ext(tmp_path / "ext", name, source)
    mgr = manager_for(tmp_path / "ext")
    assert mgr.set_enabled(list(sources)) == {}
    base = chat_service(tokens=tokens or ["Hello", " there"], **kwargs)
    chat = ChatService(base.engine, base.repo, base.characters, extensions=mgr)
    return chat, mgr


def stored(repo, conv_id: int) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in repo.messages(conv_id)]


def test_input_modifiers_reach_the_prompt_and_visible_text_is_stored(chat_service, repo, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {
        "ci": """
            def chat_input_modifier(text, visible_text, state):
                return "[secret] " + text, visible_text + " (translated)"
        """,
        "im": """
            def input_modifier(string, state, is_chat=False):
                assert is_chat is True
                return string + " [im]"
        """})
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hello", GenerationParams()))[-1]
    assert final.text == "Hello there"
    prompt = chat.engine.model.prompts[-1]
    assert "<user>[secret] hello [im]\n" in prompt
    assert stored(repo, conv.id)[1] == ("user", "hello (translated)")


def test_state_modifier_changes_the_parameters_the_model_gets(chat_service, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"st": """
        def state_modifier(state):
            assert state["name2"] == "Assistant" and state["mode"] == "chat"
            return {**state, "max_new_tokens": 1, "temperature": 0.1}
    """})
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hi", GenerationParams(max_new_tokens=50)))[-1]
    params, _ = chat.engine.model.calls[-1]
    assert (params.max_new_tokens, params.temperature) == (1, 0.1)
    assert final.text == "Hello"


def test_history_modifier_drops_old_turns_from_the_prompt(chat_service, repo, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"hm": """
        def history_modifier(history):
            return [m for m in history if "forget" not in m["content"]]
    """})
    conv = chat.new_conversation("Assistant")
    list(chat.send(conv.id, "please forget this", GenerationParams()))
    list(chat.send(conv.id, "keep this", GenerationParams()))
    prompt = chat.engine.model.prompts[-1]
    assert "forget" not in prompt and "<user>keep this" in prompt
    assert ("user", "please forget this") in stored(repo, conv.id)  # history itself is untouched


def test_bot_prefix_steers_the_reply_but_is_not_stored(chat_service, repo, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"bp": """
        def bot_prefix_modifier(string, state):
            return string + "*smiles*"
    """})
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hi", GenerationParams()))[-1]
    assert chat.engine.model.prompts[-1].endswith("*smiles*")
    assert final.text == "Hello there" and stored(repo, conv.id)[-1] == ("assistant", "Hello there")


def test_custom_prompt_and_tokenized_length(chat_service, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"cp": """
        def custom_generate_chat_prompt(user_input, state, **kwargs):
            return f"CUSTOM {user_input} after {len(kwargs['history'])} messages"
    """})
    conv = chat.new_conversation("Assistant")
    list(chat.send(conv.id, "question", GenerationParams()))
    assert chat.engine.model.prompts[-1] == "CUSTOM question after 2 messages"


def test_custom_tokenized_length_drives_truncation(chat_service, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"tl": """
        def custom_tokenized_length(prompt):
            return 100 * prompt.count("<user>")
    """}, context_length=400)
    conv = chat.new_conversation("Assistant")
    for text in ("one", "two", "three"):
        list(chat.send(conv.id, text, GenerationParams(max_new_tokens=150)))
    # budget 250 tokens = 2 user messages by the extension's count (the fake counts words)
    prompt = chat.engine.model.prompts[-1]
    assert "<user>one" not in prompt and "<user>two" in prompt and "<user>three" in prompt


def test_custom_reply_streams_cumulative_text_as_deltas_and_is_stored(chat_service, repo, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"cr": """
        def custom_generate_reply(question, original_question, seed, state, stopping_strings, is_chat=False):
            text = ""
            for word in ["no", "model", "needed"]:
                text = (text + " " + word).strip()
                yield text
    """})
    conv = chat.new_conversation("Assistant")
    progress = list(chat.send(conv.id, "hi", GenerationParams()))
    assert progress[-1].text == "no model needed"
    assert chat.engine.model.prompts == []  # the model was not asked
    assert stored(repo, conv.id)[-1] == ("assistant", "no model needed")


def test_output_modifier_is_shown_and_stored(chat_service, repo, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"up": """
        def output_modifier(string, state, is_chat=False):
            return string.upper()
    """}, tokens=["a", "b", "c"])
    conv = chat.new_conversation("Assistant")
    progress = list(chat.send(conv.id, "hi", GenerationParams()))
    assert all(p.text == p.text.upper() for p in progress) and progress[-1].text == "ABC"
    assert stored(repo, conv.id)[-1] == ("assistant", "ABC")


def test_decode_hooks_reach_the_backend(chat_service, tmp_path) -> None:
    chat, mgr = service_with(chat_service, tmp_path, {"lp": """
        def logits_processor_modifier(processor_list, input_ids):
            processor_list.append(lambda ids, scores: scores)
    """})
    conv = chat.new_conversation("Assistant")
    list(chat.send(conv.id, "hi", GenerationParams()))
    _, hooks = chat.engine.model.calls[-1]
    assert isinstance(hooks, DecodeHooks)
    assert len(hooks.build_processors(__import__("webui.plugins", fromlist=["x"]).SamplerContext(), None)) == 1
    mgr.disable("lp")
    list(chat.send(conv.id, "again", GenerationParams()))
    assert chat.engine.model.calls[-1][1] is None  # nothing enabled: backends are called as before


def test_a_raising_extension_is_disabled_and_the_chat_goes_on(chat_service, repo, tmp_path) -> None:
    chat, mgr = service_with(chat_service, tmp_path, {
        "boom": """
            def output_modifier(string):
                raise RuntimeError("kaput")
            def input_modifier(string):
                return string
        """,
        "ok": "def output_modifier(string):\n    return string + '!'\n"})
    conv = chat.new_conversation("Assistant")
    final = list(chat.send(conv.id, "hi", GenerationParams()))[-1]
    assert final.text == "Hello there!"
    assert stored(repo, conv.id)[-1] == ("assistant", "Hello there!")
    assert mgr.enabled() == ["ok"]
    (failure,) = mgr.failures()
    assert (failure.extension, failure.hook) == ("boom", "output_modifier") and "kaput" in failure.message
    final = list(chat.send(conv.id, "again", GenerationParams()))[-1]
    assert final.text == "Hello there!"


def test_api_answer_runs_the_same_hooks(chat_service, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"both": """
        def input_modifier(string, state, is_chat=False):
            return string + " [in]"
        def output_modifier(string, state, is_chat=False):
            return string + " [out]"
    """})
    final = list(chat.answer([("user", "hey")], GenerationParams()))[-1]
    assert final.text == "Hello there [out]"
    assert "hey [in]" in chat.engine.model.prompts[-1]


def test_raw_completion_wrapper(chat_service, tmp_path) -> None:
    chat, _ = service_with(chat_service, tmp_path, {"both": """
        def input_modifier(string, state, is_chat=False):
            assert is_chat is False
            return "PREFIX " + string
        def output_modifier(string, state, is_chat=False):
            return string.upper()
    """})
    run = chat.hooks.complete(chat.engine, "Once upon", GenerationParams())
    assert "".join(run.deltas()) == "HELLO THERE"
    assert chat.engine.model.prompts[-1] == "PREFIX Once upon"
    assert chat.hooks.complete(chat.engine, "x", GenerationParams()).text() == "HELLO THERE"


def test_no_extensions_is_a_no_op(chat_service) -> None:
    chat = chat_service(tokens=["x"])
    assert TurnHooks(None).modify_output("abc", TurnHooks(None).begin_chat("t", GenerationParams())) == "abc"
    conv = chat.new_conversation("Assistant")
    assert list(chat.send(conv.id, "hi", GenerationParams()))[-1].text == "x"


def test_split_sampler_fields() -> None:
    rest, samplers = split_sampler_fields(
        {"temperature": 0.5, "avoid_penalty": 0.8, "samplers": {"avoid_words": ["x"]}},
        ["avoid_penalty", "avoid_words"])
    assert rest == {"temperature": 0.5}
    assert samplers == {"avoid_penalty": 0.8, "avoid_words": ["x"]}


def test_invalid_sampler_value_is_a_user_error_before_generation(chat_service, tmp_path) -> None:
    from webui.plugins import ParamError

    mgr = ExtensionManager([SAMPLER_EXTENSIONS_DIR], entry_point_group=None)
    mgr.set_enabled(["avoid_words"], persist=False)
    base = chat_service(tokens=["x"])
    chat = ChatService(base.engine, base.repo, base.characters, extensions=mgr)
    conv = chat.new_conversation("Assistant")
    with pytest.raises(ParamError):
        list(chat.send(conv.id, "hi", GenerationParams(samplers={"avoid_penalty": "lots"})))
