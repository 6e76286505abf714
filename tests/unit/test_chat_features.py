"""Chat features on the fake backend and a real database: versions, continue, impersonate,
start-with, edit/delete/branch, search, export/import, personas, modes, lorebook, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webui.chat.character import Character, Lorebook, LorebookEntry
from webui.chat.characters import CharacterLibrary
from webui.chat.instruct import InstructionTemplates
from webui.chat.prompt import ChatSetup, PromptTools, build_prompt
from webui.chat.service import ChatActionError, ChatService
from webui.chat.transfer import ImportProblem, parse_chat_file
from webui.config import REPO_ROOT
from webui.generation.params import GenerationParams
from webui.generation.presets import PresetError, PresetLibrary, diff_from_neutral, resolve_params
from webui.storage.db import open_database
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository

P = GenerationParams()


def render(messages) -> str:
    return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"


TOOLS = PromptTools(render, lambda t: len(t.split()), budget=None)


@pytest.fixture
def svc(make_engine, tmp_path: Path, database_url: str):
    db = open_database(database_url)
    repo = ChatRepository(db)
    chars_dir = tmp_path / "characters"
    chars = CharacterLibrary([REPO_ROOT / "characters", chars_dir])
    templates = InstructionTemplates(tmp_path / "instruction-templates")

    def make(tokens=("A", "B")) -> ChatService:
        return ChatService(
            make_engine(tokens=list(tokens)), repo, chars, personas=PersonaRepository(db), templates=templates
        )

    return make


def test_regenerate_keeps_versions_and_switching_changes_the_prompt(svc) -> None:
    chat = svc(["one"])
    conv = chat.new_conversation()
    list(chat.send(conv.id, "hi", P))
    chat.engine.model.tokens = ["two"]
    last = list(chat.regenerate(conv.id, P))[-1]
    assert last.text == "two"
    msg = chat.repo.messages(conv.id)[-1]
    assert (msg.content, msg.active_version, msg.version_count) == ("two", 1, 2)
    chat.repo.set_active_version(msg.id, 0)
    assert chat.repo.messages(conv.id)[-1].content == "one"
    # the regenerate prompt never contains the reply being replaced
    assert "one" not in chat.engine.model.prompts[-1].split("<user>hi")[1]
    list(chat.send(conv.id, "next", P))
    assert "<assistant>one\n<user>next" in chat.engine.model.prompts[-1]  # history uses the active version


def test_continue_extends_the_same_version_and_start_with_prefixes(svc) -> None:
    chat = svc([" more"])
    conv = chat.new_conversation()
    list(chat.send(conv.id, "hi", P, start_with="Well,"))
    assert chat.repo.messages(conv.id)[-1].content == "Well, more"
    assert chat.engine.model.prompts[-1].endswith("<assistant>Well,")
    list(chat.continue_reply(conv.id, P))
    msg = chat.repo.messages(conv.id)[-1]
    assert (msg.content, msg.version_count) == ("Well, more more", 1)
    assert chat.engine.model.prompts[-1].endswith("<assistant>Well, more")


def test_actions_without_a_reply_give_a_clear_error(svc) -> None:
    chat = svc()
    conv = chat.repo.create_conversation("empty", "Assistant")
    with pytest.raises(ChatActionError, match="no reply to regenerate"):
        list(chat.regenerate(conv.id, P))
    with pytest.raises(ChatActionError, match="no reply to continue"):
        list(chat.continue_reply(conv.id, P))


def test_impersonate_writes_the_users_message_and_stores_nothing(svc) -> None:
    chat = svc(["I", " agree"])
    conv = chat.new_conversation()
    before = chat.repo.messages(conv.id)
    out = list(chat.impersonate(conv.id, P))[-1]
    assert out.text == "I agree"
    assert chat.repo.messages(conv.id) == before
    assert "Write You's next message" in chat.engine.model.prompts[-1]


def test_edit_delete_branch_and_search(svc) -> None:
    chat = svc(["reply about tomatoes"])
    conv = chat.new_conversation()
    list(chat.send(conv.id, "tell me about gardening", P))
    msgs = chat.repo.messages(conv.id)
    chat.repo.edit_message(msgs[1].id, "tell me about greenhouses")
    assert chat.repo.messages(conv.id)[1].content == "tell me about greenhouses"
    branch = chat.repo.branch_conversation(conv.id, msgs[1].id)
    assert [m.content for m in chat.repo.messages(branch.id)] == [msgs[0].content, "tell me about greenhouses"]
    assert branch.character == "Assistant" and branch.title.endswith("(branch)")
    hits = chat.repo.search_messages("TOMATO")
    assert [(h.conversation_id, h.role) for h in hits] == [(conv.id, "assistant")]
    assert "tomatoes" in hits[0].snippet
    assert {h.conversation_id for h in chat.repo.search_messages("greenhouse")} == {conv.id, branch.id}
    assert chat.repo.search_messages("100%") == []  # LIKE wildcards are escaped
    chat.repo.delete_message(msgs[2].id)
    assert [m.role for m in chat.repo.messages(conv.id)] == ["assistant", "user"]


def test_export_import_round_trip_with_versions(svc) -> None:
    chat = svc(["v1"])
    conv = chat.new_conversation()
    list(chat.send(conv.id, "hi", P))
    chat.engine.model.tokens = ["v2"]
    list(chat.regenerate(conv.id, P))
    data = chat.repo.export_conversation(conv.id)
    parsed = parse_chat_file(json.dumps(data).encode())
    new = chat.repo.import_conversation(parsed)
    assert [(m.role, m.content, m.version_count, m.active_version) for m in chat.repo.messages(new.id)] == [
        (m.role, m.content, m.version_count, m.active_version) for m in chat.repo.messages(conv.id)
    ]
    assert new.character == "Assistant" and new.title == "hi"


def test_import_oobabooga_history_and_bad_files() -> None:
    ooba = {"internal": [["<|BEGIN-VISIBLE-CHAT|>", "Hello there"], ["How are you?", "Fine."]], "visible": []}
    parsed = parse_chat_file(json.dumps(ooba).encode())
    assert [(m["role"], m["versions"][0]) for m in parsed["messages"]] == [
        ("assistant", "Hello there"), ("user", "How are you?"), ("assistant", "Fine.")
    ]
    assert parsed["title"] == "How are you?"
    for bad, why in [(b"not json", "not a JSON"), (b"[1,2]", "neither"), (b'{"internal": [[1, 2]]}', "pair of strings"),
                     (b'{"format": "webui-chat", "messages": [{"role": "robot", "versions": ["x"]}]}', "role")]:
        with pytest.raises(ImportProblem, match=why):
            parse_chat_file(bad)


def test_persona_sets_user_name_description_and_avatar_survives(svc, database_url: str) -> None:
    chat = svc(["ok"])
    chat.personas.save("Alice", "A botanist from {{char}}'s village.", b"\x89PNG-avatar")
    conv = chat.new_conversation(persona="Alice")
    list(chat.send(conv.id, "hi", P))
    prompt = chat.engine.model.prompts[-1]
    assert "answers Alice's questions" in prompt and "Alice's persona: A botanist from Assistant's village." in prompt
    chat.configure(conv.id, persona=None)
    assert "Alice" not in chat.show_prompt(conv.id, P).prompt
    reopened = PersonaRepository(open_database(database_url))
    assert reopened.get("Alice").avatar == b"\x89PNG-avatar"


def test_card_fields_in_prompt_and_creator_notes_never() -> None:
    char = Character(
        name="Sera", description="{{char}} guards the forest.", personality="kind", scenario="{{user}} is lost.",
        mes_example="<START>\n{{user}}: Hi\n{{char}}: Hello, traveller.", system_prompt="Roleplay. {{original}}",
        post_history_instructions="Stay in character, {{char}}.", creator_notes="SECRET NOTES",
        character_book=Lorebook(entries=[
            LorebookEntry(keys=["glade"], content="The glade is sacred.", position="after_char"),
            LorebookEntry(keys=["ruins"], content="The ruins are cursed."),
        ]),
    )
    built = build_prompt(
        ChatSetup(char, user_name="Bob"), [("assistant", "Welcome."), ("user", "Take me to the glade")], TOOLS
    )
    system = built.messages[0]["content"]
    assert system.startswith("Roleplay. Write Sera's next reply in a fictional chat between Sera and Bob.")
    assert system.index("Sera guards the forest.") < system.index("The glade is sacred.")  # after_char
    assert "Sera's personality: kind" in system and "Scenario: Bob is lost." in system
    assert "Example dialogue:\nBob: Hi\nSera: Hello, traveller." in system
    assert "ruins are cursed" not in system and built.lore_entries == 1
    assert built.messages[-1]["content"] == "Take me to the glade\n\nStay in character, Sera."
    assert "SECRET" not in built.prompt


def test_modes_and_custom_instruction_template(svc, tmp_path: Path) -> None:
    chat = svc(["ok"])
    ci = chat.api_prompt([("user", "hi")], P, character="Assistant", mode="chat-instruct")
    assert 'Write a single reply for the character "Assistant"' in ci.prompt and ci.prompt.endswith("Assistant:")
    assert "You: hi" in ci.prompt and "\nYou:" in ci.stops
    plain = chat.api_prompt([("system", "Be brief."), ("user", "hi")], P, mode="instruct")
    assert plain.prompt == "<system>Be brief.\n<user>hi\n<assistant>"
    (tmp_path / "instruction-templates").mkdir()
    (tmp_path / "instruction-templates" / "Alpaca.jinja").write_text(
        "{% for m in messages %}{% if m.role == 'user' %}### Instruction:\n{{ m.content }}\n\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}### Response:\n{% endif %}"
    )
    conv = chat.new_conversation(mode="instruct")
    chat.configure(conv.id, template="Alpaca")
    list(chat.send(conv.id, "Name a fruit", P))
    assert chat.engine.model.prompts[-1] == "### Instruction:\nName a fruit\n\n### Response:\n"
    with pytest.raises(ChatActionError):
        chat.configure(conv.id, mode="poetry")


def test_greeting_choice_per_chat(svc, tmp_path: Path) -> None:
    chat = svc()
    chat.characters.save(Character(name="Greeter", first_mes="Hi {{user}}!", alternate_greetings=["Yo {{user}}."]))
    conv = chat.new_conversation("Greeter", greeting=1)
    assert [m.content for m in chat.repo.messages(conv.id)] == ["Yo You."]
    chat.configure(conv.id, greeting=0)
    assert [m.content for m in chat.repo.messages(conv.id)] == ["Hi You!"]
    assert chat.repo.get_conversation(conv.id).settings["greeting"] == 0


def test_presets_shipped_save_load_delete_and_api_resolution(tmp_path: Path) -> None:
    lib = PresetLibrary([REPO_ROOT / "presets", tmp_path / "presets"])
    assert {"Deterministic", "Balanced", "Creative"} <= set(lib.names())
    for name in ("Deterministic", "Balanced", "Creative"):
        values = lib.values(name)
        assert values and values == diff_from_neutral(lib.load(name))  # files hold only non-neutral values
    assert lib.load("Deterministic").greedy
    lib.save("Mine", GenerationParams(temperature=0.3, top_k=20, stop=["END"]))
    assert lib.values("Mine") == {"temperature": 0.3, "top_k": 20, "stop": ["END"], "top_p": 0.9}
    p = resolve_params({"preset": "Mine", "max_tokens": 7, "messages": [], "stop": "X"}, lib)
    assert (p.temperature, p.top_k, p.max_new_tokens, p.stop) == (0.3, 20, 7, ["X"])
    (tmp_path / "presets" / "Broken.yaml").write_text("temperature: hot\n")
    with pytest.raises(PresetError, match="temperature"):
        lib.load("Broken")
    (tmp_path / "presets" / "Typo.yaml").write_text("temprature: 1\n")
    with pytest.raises(PresetError, match="temprature"):
        lib.load("Typo")
    with pytest.raises(PresetError, match="shipped"):
        lib.delete("Creative")
    lib.delete("Mine")
    with pytest.raises(PresetError, match="No preset"):
        lib.load("Mine")


def test_parameter_support_is_reported_per_backend() -> None:
    from webui.generation.support import unsupported

    # both apply every parameter but one pair each (webui.generation.support.BACKEND_LIMITS says why)
    assert unsupported("llama.cpp") == ["guidance_scale", "negative_prompt"]
    assert unsupported("transformers") == ["banned_strings"]
    assert "no_repeat_ngram_size" in unsupported("remote") and "temperature" not in unsupported("remote")
    assert unsupported(None) == [] and unsupported("fake") == []
