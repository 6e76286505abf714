"""Character files: every format, the Seraphina fixture, malformed input, export round trips."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image, PngImagePlugin

from tests.support.shared_fixtures import seraphina_card
from webui.chat.cards import (
    discover_characters,
    export_card_json,
    export_card_png,
    load_character,
    load_character_bytes,
    save_character_yaml,
)
from webui.chat.character import Character, Lorebook, LorebookEntry
from webui.errors import CharacterError


@pytest.fixture
def seraphina_path() -> Path:
    return seraphina_card()


# ------------------------------------------------------------------------------------- helpers


def _png(text_chunks: dict[str, str] | None = None, size: tuple[int, int] = (8, 8)) -> bytes:
    """A small PNG written by Pillow (independent of our writer), with the given tEXt chunks."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text_chunks or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _b64(card: Any) -> str:
    return base64.b64encode(json.dumps(card).encode("utf-8")).decode("ascii")


def _png_texts(png: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return dict(img.text)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _same(a: Character, b: Character) -> bool:
    """Equal in every field (avatar bytes included) except where the file was read from."""
    return a.model_copy(update={"source_path": None}) == b.model_copy(update={"source_path": None})


def _full_character(**overrides: Any) -> Character:
    """A character with every field set to a non-default value (V2 and V3)."""
    book = Lorebook(
        name="World",
        description="The world book",
        scan_depth=6,
        token_budget=300,
        recursive_scanning=True,
        extensions={"tool": {"x": 1}},
        entries=[
            LorebookEntry(
                keys=["dragon", "wyrm"],
                content="Dragons breathe fire near {{user}}.",
                extensions={"depth": 4, "weird": [1, None]},
                enabled=False,
                insertion_order=7,
                case_sensitive=True,
                name="Dragons",
                priority=3,
                id="e1",
                comment="about dragons",
                selective=True,
                secondary_keys=["fire"],
                constant=True,
                position="after_char",
                use_regex=True,
                sticky=2,  # an unknown entry key must survive too
            )
        ],
        unknown_book_key="kept",
    )
    fields: dict[str, Any] = dict(
        name="Ada",
        description="Ada is an engineer. {{char}} likes {{user}}.",
        personality="curious",
        scenario="A workshop",
        first_mes="Hello <USER>!",
        alternate_greetings=["Hi!", "Hey there"],
        mes_example="<START>\n{{user}}: hi\n{{char}}: hello",
        system_prompt="Play {{char}}. {{original}}",
        post_history_instructions="Stay in character.",
        creator_notes="Only for testing",
        tags=["test", "engineer"],
        creator="tester",
        character_version="2.1",
        character_book=book,
        extensions={"depth_prompt": {"prompt": "x", "depth": 4}, "unknown_app": [1, 2]},
        extra_fields={"custom_top_key": {"a": 1}},
        nickname="Addy",
        group_only_greetings=["Hello all"],
        assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        creator_notes_multilingual={"fr": "Pour tester"},
        source=["https://example.invalid/ada"],
        creation_date=1700000000,
        modification_date=1700000500,
        avatar_png=_png(size=(3, 5)),
    )
    fields.update(overrides)
    return Character(**fields)


_V3_ONLY = dict(
    nickname="",
    group_only_greetings=[],
    assets=None,
    creator_notes_multilingual=None,
    source=None,
    creation_date=None,
    modification_date=None,
)


# ------------------------------------------------------------------------------------ Seraphina


def test_seraphina_imports_every_field(seraphina_path: Path) -> None:
    char = load_character(seraphina_path)
    assert char.name == "Seraphina"
    assert char.creator == "OtisAlejandro"
    assert char.character_version == "1.0.0"
    assert char.creator_notes == "ST Default Bot contest winner: roleplay bots category"
    assert char.description.startswith("[Seraphina's Personality=")
    assert "Eldoria" in char.description
    assert "The name's Seraphina, guardian of this forest" in char.first_mes
    assert char.personality == char.scenario == char.mes_example == char.system_prompt == ""
    assert char.tags == [] and char.alternate_greetings == []
    assert char.extensions == {"talkativeness": "0.5", "fav": False, "world": "Eldoria"}
    assert char.extra_fields == {}  # the V1 mirror keys at the top level are not data fields
    assert char.source_path == str(seraphina_path)

    book = char.character_book
    assert book is not None and book.name == "Eldoria"
    assert [e.id for e in book.entries] == [0, 1, 2, 3]
    assert book.entries[0].keys == ["eldoria", "wood", "forest", "magical forest"]
    assert book.entries[1].keys == ["shadowfang", "beast", "monster", "monsters", "beasts"]
    assert book.entries[2].keys == ["glade", "safe haven", "refuge"]
    assert book.entries[3].keys == ["power", "magic", "ability"]
    for entry in book.entries:
        assert entry.enabled and not entry.constant and not entry.selective
        assert entry.insertion_order == 100 and entry.position == "before_char"
        assert entry.extensions == {"position": 0, "probability": None, "useProbability": False}
    assert book.entries[1].content.startswith('{{user}}: "What are Shadowfangs?"')


def test_seraphina_avatar_is_the_picture_without_the_card(seraphina_path: Path) -> None:
    char = load_character(seraphina_path)
    assert char.avatar_png is not None
    with Image.open(io.BytesIO(char.avatar_png)) as img:
        img.load()
        assert img.size == (400, 600)
        assert "chara" not in img.text and "ccv3" not in img.text


def test_seraphina_export_keeps_every_source_value(seraphina_path: Path) -> None:
    """Every key/value the card's own JSON holds comes out of a V2 export unchanged."""
    source = json.loads(base64.b64decode(_png_texts(seraphina_path.read_bytes())["chara"]))["data"]
    exported = export_card_json(load_character(seraphina_path), "v2")["data"]

    def contains(big: Any, small: Any) -> bool:
        if isinstance(small, dict):
            return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
        if isinstance(small, list):
            return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
        return big == small

    assert contains(exported, source)


@pytest.mark.parametrize("spec", ["v2", "v3"])
def test_seraphina_round_trips(seraphina_path: Path, tmp_path: Path, spec: str) -> None:
    char = load_character(seraphina_path)
    png = _write(tmp_path, "out.png", export_card_png(char, spec))  # type: ignore[arg-type]
    assert _same(load_character(png), char)
    card = export_card_json(char, spec)  # type: ignore[arg-type]
    js = _write(tmp_path, "card.json", json.dumps(card))  # no card.png beside it
    assert _same(load_character(js), char.model_copy(update={"avatar_png": None}))


# --------------------------------------------------------------------------------- flat formats


def test_oobabooga_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "Bob.yaml", "name: Bob\ngreeting: Hi {{user}}\ncontext: |\n  Bob is a cook.\n")
    char = load_character(path)
    assert (char.name, char.first_mes, char.description) == ("Bob", "Hi {{user}}", "Bob is a cook.\n")
    assert char.avatar_png is None and char.extra_fields == {}


def test_oobabooga_json_with_sibling_avatar(tmp_path: Path) -> None:
    picture = _png(size=(2, 2))
    _write(tmp_path, "Bob.png", picture)
    char = load_character(_write(tmp_path, "Bob.json", json.dumps({"name": "Bob", "context": "c"})))
    assert char.avatar_png == picture


def test_pygmalion_keys(tmp_path: Path) -> None:
    raw = {
        "char_name": "Pyg",
        "char_persona": "A friendly bot",
        "char_greeting": "Hello!",
        "world_scenario": "A chat room",
        "example_dialogue": "<START>\nYou: hi\nPyg: hello",
    }
    char = load_character(_write(tmp_path, "pyg.json", json.dumps(raw)))
    assert char.name == "Pyg"
    assert char.description == "A friendly bot"
    assert char.first_mes == "Hello!"
    assert char.scenario == "A chat room"
    assert char.mes_example == "<START>\nYou: hi\nPyg: hello"
    assert char.extra_fields == {}


def test_persona_goes_to_personality_when_context_is_given(tmp_path: Path) -> None:
    text = "name: Mix\ncontext: The context\nchar_persona: The persona\n"
    char = load_character(_write(tmp_path, "mix.yml", text))
    assert (char.description, char.personality) == ("The context", "The persona")


def test_tavernai_v1_json_keeps_unknown_keys(tmp_path: Path) -> None:
    raw = {
        "name": "Vee",
        "description": "desc",
        "personality": "pers",
        "scenario": "scen",
        "first_mes": "first",
        "mes_example": "ex",
        "creatorcomment": "notes",
        "talkativeness": "0.5",
        "chat": "Vee - 2023",
    }
    char = load_character(_write(tmp_path, "vee.json", json.dumps(raw)))
    assert (char.description, char.personality, char.scenario) == ("desc", "pers", "scen")
    assert (char.first_mes, char.mes_example, char.creator_notes) == ("first", "ex", "notes")
    assert char.extra_fields == {"talkativeness": "0.5", "chat": "Vee - 2023"}
    again = load_character(_write(tmp_path, "again.json", json.dumps(export_card_json(char, "v2"))))
    assert _same(again, char)


def test_real_world_sloppiness_is_tolerated(tmp_path: Path) -> None:
    raw = {
        "spec": "chara_card_v2",
        "data": {
            "name": "  Sloppy  ",
            "character_version": 2,
            "tags": "a, b,,c",
            "alternate_greetings": None,
            "extensions": None,
            "character_book": {"entries": [{"keys": "x, y", "content": "lore", "case_sensitive": None}]},
        },
    }
    char = load_character(_write(tmp_path, "s.json", json.dumps(raw)))
    assert char.name == "Sloppy" and char.character_version == "2"
    assert char.tags == ["a", "b", "c"] and char.alternate_greetings == [] and char.extensions == {}
    assert char.character_book is not None and char.character_book.entries[0].keys == ["x", "y"]


# ------------------------------------------------------------------------------------ V2 and V3


def test_v3_json_reads_every_field(tmp_path: Path) -> None:
    expected = _full_character(avatar_png=None)
    card = export_card_json(expected, "v3")
    assert card["spec"] == "chara_card_v3" and card["data"]["nickname"] == "Addy"
    char = load_character(_write(tmp_path, "ada.json", json.dumps(card)))
    assert char.nickname == "Addy" and char.creation_date == 1700000000
    assert char.character_book is not None
    entry = char.character_book.entries[0]
    assert entry.use_regex and entry.model_extra == {"sticky": 2}
    assert char.character_book.model_extra == {"unknown_book_key": "kept"}
    assert char.extensions["unknown_app"] == [1, 2]
    assert char.extra_fields == {"custom_top_key": {"a": 1}}
    assert _same(char, expected)


def test_v2_export_shape() -> None:
    card = export_card_json(_full_character(), "v2")
    assert card["spec"] == "chara_card_v2" and card["spec_version"] == "2.0"
    assert card["name"] == "Ada" and card["first_mes"] == "Hello <USER>!"  # V1 mirror for old readers
    data = card["data"]
    assert "nickname" not in data and "group_only_greetings" not in data  # no place for them in V2
    assert data["character_book"]["entries"][0]["use_regex"] is True
    assert "use_regex" not in export_card_json(_full_character(character_book=Lorebook(
        entries=[LorebookEntry(keys=["k"], content="c")])), "v2")["data"]["character_book"]["entries"][0]


def test_v3_png_chunk_is_preferred_over_v2(tmp_path: Path) -> None:
    v2 = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "OldV2", "description": "two"}}
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "NewV3", "nickname": "Three"}}
    both = _write(tmp_path, "both.png", _png({"chara": _b64(v2), "ccv3": _b64(v3)}))
    char = load_character(both)
    assert (char.name, char.nickname, char.description) == ("NewV3", "Three", "")
    only_v2 = load_character(_write(tmp_path, "v2.png", _png({"chara": _b64(v2)})))
    assert (only_v2.name, only_v2.description) == ("OldV2", "two")


def test_load_character_bytes_for_uploads() -> None:
    card = {"spec": "chara_card_v2", "data": {"name": "Up"}}
    assert load_character_bytes(_png({"chara": _b64(card)}), "upload.png").name == "Up"
    assert load_character_bytes(b"name: Y\n", "y.yaml").name == "Y"


# ----------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("spec", ["v2", "v3"])
def test_png_round_trip(tmp_path: Path, spec: str) -> None:
    char = _full_character() if spec == "v3" else _full_character(**_V3_ONLY)
    png = export_card_png(char, spec)  # type: ignore[arg-type]
    texts = _png_texts(png)
    assert json.loads(base64.b64decode(texts["chara"]))["spec"] == "chara_card_v2"
    assert ("ccv3" in texts) == (spec == "v3")
    again = load_character(_write(tmp_path, "c.png", png))
    assert again.avatar_png == char.avatar_png
    assert _same(again, char)


@pytest.mark.parametrize("spec", ["v2", "v3"])
def test_json_round_trip(tmp_path: Path, spec: str) -> None:
    char = _full_character(avatar_png=None) if spec == "v3" else _full_character(avatar_png=None, **_V3_ONLY)
    again = load_character(_write(tmp_path, "c.json", json.dumps(export_card_json(char, spec))))  # type: ignore[arg-type]
    assert _same(again, char)


def test_v2_export_loses_only_v3_fields(tmp_path: Path) -> None:
    char = _full_character()
    again = load_character(_write(tmp_path, "c.png", export_card_png(char, "v2")))
    assert again.nickname == "" and again.creation_date is None
    assert _same(again, char.model_copy(update=_V3_ONLY))


def test_png_export_avatar_choices(tmp_path: Path) -> None:
    plain = _full_character(avatar_png=None)
    with Image.open(io.BytesIO(export_card_png(plain, "v2"))) as img:
        assert img.format == "PNG" and img.size[0] > 0  # a generated picture
    jpeg = io.BytesIO()
    Image.new("RGB", (6, 4), (1, 2, 3)).save(jpeg, "JPEG")
    with Image.open(io.BytesIO(export_card_png(plain, "v3", avatar=jpeg.getvalue()))) as img:
        assert (img.format, img.size) == ("PNG", (6, 4))
    given = _png(size=(7, 9))
    exported = export_card_png(_full_character(), "v2", given)
    assert load_character(_write(tmp_path, "a.png", exported)).avatar_png == given
    with pytest.raises(ValueError):
        export_card_png(plain, "v4")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        export_card_json(plain, "v1")  # type: ignore[arg-type]
    with pytest.raises(CharacterError, match="avatar is not a readable image"):
        export_card_png(plain, "v2", avatar=b"not an image")


def test_save_character_yaml_round_trip(tmp_path: Path) -> None:
    char = _full_character()
    path = tmp_path / "sub" / "Ada.yaml"
    save_character_yaml(char, path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["spec"] == "chara_card_v3"
    assert (tmp_path / "sub" / "Ada.png").read_bytes() == char.avatar_png
    again = load_character(path)
    assert _same(again, char)
    found, errors = discover_characters([tmp_path / "sub"])
    assert list(found) == ["Ada"] and errors == []  # the avatar PNG is not taken for a card
    with pytest.raises(CharacterError, match=r"\.yaml or \.yml"):
        save_character_yaml(char, tmp_path / "Ada.json")


def test_save_seraphina_yaml_round_trip(seraphina_path: Path, tmp_path: Path) -> None:
    char = load_character(seraphina_path)
    save_character_yaml(char, tmp_path / "Seraphina.yaml")
    assert _same(load_character(tmp_path / "Seraphina.yaml"), char)


# ------------------------------------------------------------------------------------- discovery


def test_discover_characters(seraphina_path: Path, tmp_path: Path) -> None:
    repo, data, missing = tmp_path / "repo", tmp_path / "data", tmp_path / "nope"
    repo.mkdir()
    data.mkdir()
    _write(repo, "Bob.yaml", "name: Bob\ncontext: repo bob\n")
    _write(repo, "Bob.png", _png())  # Bob's avatar, not a card
    _write(repo, "Seraphina.png", seraphina_path.read_bytes())
    _write(repo, "broken.json", "{not json")
    _write(repo, "notes.txt", "ignored")
    _write(repo, "Bob2.json", json.dumps({"name": "Bob", "context": "duplicate"}))
    _write(data, "bob-override.yaml", "name: Bob\ncontext: data bob\n")
    _write(data, "plain.png", _png())

    found, errors = discover_characters([repo, missing, data])
    assert sorted(found) == ["Bob", "Seraphina"]
    assert found["Bob"].description == "data bob"  # the later directory wins
    assert found["Seraphina"].creator == "OtisAlejandro"
    assert len(errors) == 3
    assert any(e.path == repo / "broken.json" and "not valid JSON" in e.reason for e in errors)
    assert any(e.path == repo / "Bob2.json" and "both define" in e.reason for e in errors)
    assert any(e.path == data / "plain.png" and "without a character card" in e.reason for e in errors)


def test_discover_in_repo_characters_dir() -> None:
    repo_chars = Path(__file__).resolve().parents[2] / "characters"
    found, errors = discover_characters([repo_chars])
    assert errors == [] and "Assistant" in found


# ------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.txt", "name: X", r"unsupported character file type '\.txt'"),
        ("c", "name: X", r"unsupported character file type '\(none\)'"),
        ("c.json", "{oops", r"c\.json is not valid JSON: .*line 1"),
        ("c.yaml", "name: [unclosed", r"c\.yaml is not valid YAML"),
        ("c.yaml", "- a\n- b\n", r"expected a mapping of fields, found a list"),
        ("c.yaml", "", r"found nothing \(empty file\)"),
        ("c.json", b"\xff\xfe\x00garbage", r"c\.json is not UTF-8 text"),
        ("c.yaml", "greeting: hi\ncontext: no name\n", r"has no character name \('name' or 'char_name'\)"),
        ("c.json", json.dumps({"spec": "chara_card_v2", "data": {"description": "x"}}), r"no character name in its"),
        ("c.json", json.dumps({"spec": "chara_card_v2", "name": "X"}), r"needs a 'data' object"),
        ("c.json", json.dumps({"spec": "chara_card_v9", "data": {"name": "X"}}), r"unsupported card spec 'chara_c"),
        ("c.json", json.dumps({"name": "X", "tags": {"a": 1}}), r"fields of the wrong type \(tags"),
        ("c.json", json.dumps({"name": ["X"]}), r"has no character name"),
        (
            "c.json",
            json.dumps({"spec": "chara_card_v2", "data": {"name": "X", "character_book": {"entries": [3]}}}),
            r"wrong type \(character_book\.entries\.0",
        ),
    ],
)
def test_malformed_text_files(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(CharacterError, match=message):
        load_character(path)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: b"definitely not a png", r"c\.png is not a readable PNG image"),
        (lambda: _png({"chara": _b64({"name": "X"})})[:60], r"c\.png is not a readable PNG image"),
        (_jpeg, r"c\.png is not a PNG image \(it is JPEG\)"),
        (lambda: _png({"Comment": "hello"}), r"c\.png is a PNG picture without a character card"),
        (lambda: _png({"chara": "!!!not base64!!!"}), r"'chara' chunk is not valid base64"),
        (lambda: _png({"ccv3": base64.b64encode(b"not json").decode()}), r"'ccv3' chunk does not hold valid JSON"),
        (lambda: _png({"chara": base64.b64encode(b"\xff\xfe{").decode()}), r"'chara' chunk does not decode to UTF-8"),
        (lambda: _png({"chara": _b64({"spec": "chara_card_v2", "data": {"name": ""}})}), r"no character name"),
    ],
)
def test_malformed_png_files(tmp_path: Path, content: Any, message: str) -> None:
    path = _write(tmp_path, "c.png", content())
    with pytest.raises(CharacterError, match=message):
        load_character(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CharacterError, match="does not exist"):
        load_character(tmp_path / "ghost.yaml")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(CharacterError, match="not a file"):
        load_character(tmp_path / "dir.yaml")
