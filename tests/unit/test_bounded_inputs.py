"""Hostile files and bodies, one by one: YAML alias bombs, deep nesting, odd YAML values, oversized
API bodies, broken GGUF headers. Each is refused with a clear message, quickly."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tests.support.fuzz_inputs import V2_CARD, billion_laughs
from webui.api.errors import install_error_handlers
from webui.api.limits import install_request_limits, json_depth
from webui.bounded_parse import MAX_DEPTH, load_json, load_yaml, nesting_depth
from webui.chat.cards import load_character_bytes
from webui.chat.instruct import InstructionTemplates, TemplateProblem
from webui.chat.transfer import ImportProblem, parse_chat_file
from webui.config import load_settings
from webui.engine.llamacpp_backend import check_gguf_file, gguf_header_problem
from webui.errors import CharacterError, ModelLoadError, UserFacingError
from webui.generation.presets import PresetError, PresetLibrary
from webui.plugins.store import JsonFileStore, SettingsFileError

DEEP = "[" * 100_000 + "]" * 100_000


def test_yaml_alias_bomb_is_refused_quickly_everywhere(tmp_path: Path) -> None:
    bomb = billion_laughs()
    start = time.perf_counter()
    with pytest.raises(yaml.YAMLError, match="aliases"):
        load_yaml(bomb)
    with pytest.raises(CharacterError, match=r"bomb\.yaml is not valid YAML.*aliases"):
        load_character_bytes(bomb.encode(), "bomb.yaml")
    (tmp_path / "p.yaml").write_text(bomb)
    with pytest.raises(PresetError, match="aliases"):
        PresetLibrary([tmp_path]).load("p")
    (tmp_path / "t.yaml").write_text(bomb)
    with pytest.raises(TemplateProblem, match="aliases"):
        InstructionTemplates(tmp_path).render("t", [])
    (tmp_path / "settings.yaml").write_text(bomb)
    with pytest.raises(UserFacingError, match="settings.yaml.*aliases"):
        load_settings({"data_dir": tmp_path}, environ={})
    assert time.perf_counter() - start < 5


def test_yaml_limits_keep_ordinary_anchors() -> None:
    assert load_yaml("base: &b {k: 1}\nother: *b\nmerged: {<<: *b, m: 2}\n") == {
        "base": {"k": 1}, "other": {"k": 1}, "merged": {"k": 1, "m": 2}}
    with pytest.raises(yaml.YAMLError, match="cycle"):
        load_yaml("a: &x [1, *x]\n")
    with pytest.raises(yaml.YAMLError, match=f"deeper than {MAX_DEPTH}"):
        load_yaml(DEEP)
    with pytest.raises(yaml.YAMLError, match="cannot be read"):
        load_yaml("top_p: !!int x\n")  # PyYAML raises a bare ValueError here


def test_json_depth_is_bounded() -> None:
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(load_json(nested)) == MAX_DEPTH
    for text in (DEEP, "[" + nested + "]"):
        with pytest.raises(json.JSONDecodeError, match="deeper"):
            load_json(text)
    with pytest.raises(ImportProblem, match="chat.json is not a JSON file.*deeper"):
        parse_chat_file(DEEP.encode(), "chat.json")
    with pytest.raises(CharacterError, match="deep"):
        load_character_bytes(DEEP.encode(), "deep.json")


def test_card_fields_of_the_wrong_type_name_the_file_and_field() -> None:
    card = {**V2_CARD, "spec": ["chara_card_v2"]}  # was TypeError: unhashable type: 'list'
    with pytest.raises(CharacterError, match=r"c\.json: unsupported card spec \['chara_card_v2'\]"):
        load_character_bytes(json.dumps(card).encode(), "c.json")
    binary = "name: A\nextensions:\n  blob: !!binary aGVsbG8=\n"  # loaded, then export failed
    with pytest.raises(CharacterError, match=r"c\.yaml: the field 'extensions.blob' holds binary data"):
        load_character_bytes(binary.encode(), "c.yaml")
    with pytest.raises(CharacterError, match="the field 'when' holds a date"):
        load_character_bytes(b"name: A\nwhen: 2024-01-01\n", "c.yaml")


def test_preset_with_odd_keys_or_bytes_is_a_preset_error(tmp_path: Path) -> None:
    (tmp_path / "k.yaml").write_text("1: 2\n")
    with pytest.raises(PresetError, match=r"'k'.*1 is not a parameter name"):
        PresetLibrary([tmp_path]).load("k")  # was TypeError: keywords must be strings
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(PresetError, match="not UTF-8"):
        PresetLibrary([tmp_path]).load("b")


def test_template_code_errors_and_huge_outputs_are_template_problems(tmp_path: Path) -> None:
    templates = InstructionTemplates(tmp_path)
    for i, source in enumerate(["{{ 1 / 0 }}", "{{ messages + 1 }}", "{{ 'x' * 10**10 }}", "{{ 9 ** 99999999 }}",
                                "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"]):
        (tmp_path / f"t{i}.jinja").write_text(source)
        start = time.perf_counter()
        with pytest.raises(TemplateProblem, match=f"'t{i}' failed"):
            templates.render(f"t{i}", [{"role": "user", "content": "hi"}])
        assert time.perf_counter() - start < 5, source
    (tmp_path / "bad.yaml").write_text("instruction_template: [\n")
    with pytest.raises(TemplateProblem, match="not valid YAML"):
        templates.render("bad", [])


def test_a_broken_extension_settings_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "extensions.json"
    path.write_text("{not json")
    store = JsonFileStore(path)
    with pytest.raises(SettingsFileError, match="extensions.json"):
        store.load("demo")
    with pytest.raises(SettingsFileError):
        store.save("demo", {"a": 1})
    assert path.read_text() == "{not json"  # never overwritten by a save


def test_gguf_header_checks(tmp_path: Path) -> None:
    def header(version: int = 3, tensors: int = 1, entries: int = 1) -> bytes:
        return b"GGUF" + struct.pack("<IQQ", version, tensors, entries)

    assert gguf_header_problem(header() + bytes(64), 88) is None
    assert "header" in gguf_header_problem(b"GGML" + bytes(20), 24)
    assert "ends inside" in gguf_header_problem(b"GGUF\x03\x00", 6)
    assert "version 1" in gguf_header_problem(header(version=1), 24)
    assert "big-endian" in gguf_header_problem(b"GGUF" + struct.pack(">IQQ", 3, 1, 1), 24)
    assert "more than the file" in gguf_header_problem(header(tensors=2**63), 24)
    path = tmp_path / "m.gguf"
    path.write_bytes(header(version=7))
    with pytest.raises(ModelLoadError, match="m.gguf is not a GGUF model file this app can load.*version 7"):
        check_gguf_file(path)


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[[[", "b": [1, {"c": "\\"]]]"}]}') == 3
    assert json_depth(b"[" * 500) == 500
    assert json_depth(b'"unterminated [[[[') == 0
    assert json_depth(b"") == 0


@pytest.fixture
def limited() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/ui/echo")
    async def ui_echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    install_request_limits(app, max_request_mb=1)
    return TestClient(app)


def test_request_size_limit(limited: TestClient) -> None:
    assert limited.post("/v1/echo", content=b"[" + b"1," * 1000 + b"1]").json() == {"size": 2003}
    big = b"x" * (2**20 + 1)
    r = limited.post("/v1/echo", content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large", r.text
    assert "1 MB" in r.json()["error"]["message"]
    r = limited.post("/ui/echo", content=big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"y" * 65536

    for path in ("/v1/echo", "/ui/echo"):
        r = limited.post(path, content=chunks())
        assert r.status_code == 413, (path, r.text)
    assert limited.post("/ui/echo", content=b"z" * 1000).json() == {"size": 1000}
