"""Opening a chat restores the generation parameters stored with it (service, Parameters tab, and the
chat-opening UI handlers in process, without a model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from webui.chat.characters import CharacterLibrary
from webui.chat.service import ChatService
from webui.config import REPO_ROOT
from webui.generation.params import GenerationParams
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.parameters_tab import FIELD_NAMES, ParamComponents

TUNED = GenerationParams(temperature=0.33, max_new_tokens=77, stop=["END"], samplers={"dry_multiplier": 0.8})


@pytest.fixture
def chat(make_engine, tmp_path: Path) -> ChatService:
    repo = ChatRepository(open_database(sqlite_url(tmp_path)))
    return ChatService(make_engine(tokens=["ok"]), repo, CharacterLibrary([REPO_ROOT / "characters"]))


def test_stored_params_are_the_last_replys(chat: ChatService) -> None:
    conv = chat.new_conversation()
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) is None  # never answered

    list(chat.send(conv.id, "hi", TUNED))
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) == TUNED

    other = TUNED.model_copy(update={"temperature": 1.2})
    list(chat.regenerate(conv.id, other))
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) == other
    list(chat.impersonate(conv.id, GenerationParams(temperature=0.05)))  # stores nothing
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) == other

    list(chat.send(conv.id, "again", GenerationParams()))  # all defaults: stored as {}, still restored
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) == GenerationParams()


def test_unknown_or_bad_stored_params(chat: ChatService) -> None:
    conv = chat.new_conversation()
    chat.repo.update_settings(conv.id, {"params": {"temperature": 0.4, "from_a_newer_version": 1}})
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) == GenerationParams(temperature=0.4)
    chat.repo.update_settings(conv.id, {"params": {"temperature": "hot"}})
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) is None
    chat.repo.update_settings(conv.id, {"params": "nonsense"})
    assert chat.stored_params(chat.repo.get_conversation(conv.id)) is None


def _param_components() -> ParamComponents:
    with gr.Blocks():
        fields = [gr.Textbox() for _ in FIELD_NAMES]
        keys = gr.State([("dry_multiplier", "float"), ("dry_sequence_breakers", "list"), ("xtc_probability", "float")])
        sliders = [gr.Slider(0, 5), gr.Textbox(), gr.Slider(0, 1)]
        buttons = [gr.Markdown(), gr.Dropdown(), gr.Button(), gr.Textbox(), gr.Button(), gr.Button()]
    return ParamComponents([*fields, keys, *sliders], *buttons)  # type: ignore[arg-type]


def test_parameters_tab_values_for_a_chat() -> None:
    params = _param_components()
    outputs = params.chat_outputs()
    assert len(outputs) == len(FIELD_NAMES) + 3 and params.inputs[len(FIELD_NAMES)] not in outputs  # not the keys State

    unchanged = params.chat_values(None)
    assert len(unchanged) == len(outputs) and all(u == gr.update() for u in unchanged)

    values = params.chat_values(
        TUNED.model_copy(update={"samplers": {"dry_multiplier": 0.8, "dry_sequence_breakers": ["\n", ":"]}})
    )
    assert len(values) == len(outputs)
    by_name = dict(zip(FIELD_NAMES, values))
    assert (by_name["temperature"], by_name["max_new_tokens"], by_name["stop"]) == (0.33, 77, "END")
    assert by_name["top_p"] == GenerationParams().top_p  # the rest: the stored reply's defaults
    dry, breakers, xtc = values[len(FIELD_NAMES):]
    assert dry["value"] == 0.8 and json.loads(breakers["value"]) == ["\n", ":"]
    assert xtc == gr.update()  # a sampler the chat never had keeps its value


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real Blocks app in process, without a model: handlers are called directly."""
    from webui.config import Settings
    from webui.context import build_context
    from webui.ui.app import build_ui
    from webui.ui.live_reply import LiveReplies

    ctx = build_context(Settings(data_dir=tmp_path_factory.mktemp("ui") / "data"), load_model=False)
    demo = build_ui(ctx, LiveReplies())
    yield ctx, demo
    ctx.engine.shutdown()


def _handler(demo: gr.Blocks, name: str) -> tuple[Any, list[Any]]:
    found = [
        f
        for f in demo.fns.values()
        if f.name == name and any(getattr(o, "elem_id", None) == "chatbot" for o in f.outputs)
    ]
    assert len(found) == 1, name
    return found[0].fn, found[0].outputs


def _params_in(outputs: list[Any], values: list[Any]) -> dict[str, Any]:
    """The Parameters-tab values among a handler's results, by field name (gr.update(): unchanged)."""
    by_id = {getattr(o, "elem_id", None): v for o, v in zip(outputs, values)}
    return {name: by_id[f"param-{name}"] for name in FIELD_NAMES}


def test_chat_opening_handlers_restore_parameters(ui) -> None:  # type: ignore[no-untyped-def]
    ctx, demo = ui
    tuned = ctx.repo.create_conversation(
        "Tuned", "Assistant", settings={"params": {"temperature": 0.33, "max_new_tokens": 77}}
    )
    ctx.repo.add_message(tuned.id, "user", "hello")
    plain = ctx.repo.create_conversation("Plain", "Assistant")

    open_chat, outputs = _handler(demo, "open_chat")
    values = open_chat(tuned.id, None)
    assert len(values) == len(outputs)
    restored = _params_in(outputs, values)
    assert (restored["temperature"], restored["max_new_tokens"], restored["top_p"]) == (
        0.33, 77, GenerationParams().top_p
    )
    values = open_chat(plain.id, None)
    assert all(v == gr.update() for v in _params_in(outputs, values).values())  # no stored params: unchanged

    on_load, outputs = _handler(demo, "on_load")  # a reload reopens the most recent chat
    values = on_load(None)
    assert len(values) == len(outputs) and all(v == gr.update() for v in _params_in(outputs, values).values())

    new_chat, outputs = _handler(demo, "new_chat")  # a new chat starts from the current values
    values = new_chat("Assistant", "(none)", "chat", 0, None)
    assert len(values) == len(outputs) and all(v == gr.update() for v in _params_in(outputs, values).values())

    # a branch (the Branch button on a message) keeps its source's parameters
    message_action, outputs = _handler(demo, "message_action")
    values = message_action(tuned.id, gr.EventData(None, {"action": "branch", "index": 0}), None)
    assert len(values) == len(outputs) and _params_in(outputs, values)["temperature"] == 0.33

    import_chat, outputs = _handler(demo, "import_chat")
    data = ctx.repo.export_conversation(tuned.id)
    values = import_chat(json.dumps(data).encode(), None)
    assert len(values) == len(outputs) and _params_in(outputs, values)["max_new_tokens"] == 77

    open_found, outputs = _handler(demo, "open_found")  # a search result
    values = open_found(tuned.id, None)
    assert len(values) == len(outputs) and _params_in(outputs, values)["temperature"] == 0.33
    delete, outputs = _handler(demo, "delete")  # deleting opens the next chat
    assert len(delete(plain.id, None)) == len(outputs)
