"""The Problems collector, and each source reporting the files it skipped (webui.problems)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import webui.chat.cards as cards_module
from tests.support.extensions import write_ext
from webui.chat.characters import CharacterLibrary
from webui.chat.instruct import InstructionTemplates
from webui.engine.catalog import check_models_dir
from webui.file_checks import model_settings_problems, preset_problems, template_problems
from webui.generation.presets import PresetLibrary
from webui.plugins import ExtensionManager, JsonFileStore
from webui.problems import Problem, Problems, one_line


def test_a_source_replaces_what_it_reported_and_each_new_problem_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    problems = Problems()
    a, b = Problem.of("preset", "/p/a.yaml", "bad\n  value"), Problem.of("preset", "/p/b.yaml", "worse")
    with caplog.at_level(logging.WARNING, logger="webui.problems"):
        problems.report("presets", [a, b])
        problems.report("presets", [a, b])  # the same again: nothing new to log
        problems.report("characters", [Problem.of("character", "/c/x.json", "no name")])
    assert [r.getMessage() for r in caplog.records] == [
        "skipped preset /p/a.yaml: bad value", "skipped preset /p/b.yaml: worse",
        "skipped character /c/x.json: no name"]
    assert problems.all() == [a, b, Problem("character", "/c/x.json", "no name")]
    problems.report("presets", [b])  # a.yaml was fixed
    assert problems.of("presets") == [b] and len(problems) == 2
    problems.report("characters", [b])  # the same file noticed by two sources is listed once
    assert problems.all() == [b]


def test_a_reason_is_one_line_and_bounded() -> None:
    assert one_line("a\n\n b\t c ") == "a b c"
    assert len(one_line("x" * 2000)) == 500 and one_line("x" * 2000).endswith("…")
    assert Problem.of("model file", Path("/m/j.gguf"), "line1\nline2").as_dict() == {
        "kind": "model file", "file": "/m/j.gguf", "reason": "line1 line2"}


def test_a_character_file_whose_parser_raises_anything_is_skipped(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Good.yaml").write_text("name: Good\n", encoding="utf-8")
    (tmp_path / "Odd.yaml").write_text("name: Odd\n", encoding="utf-8")
    real = cards_module.load_character

    def flaky(path: Path):  # type: ignore[no-untyped-def]
        if path.name == "Odd.yaml":
            raise TypeError("a parser bug")
        return real(path)

    monkeypatch.setattr(cards_module, "load_character", flaky)
    problems = Problems()
    library = CharacterLibrary([tmp_path], problems)
    assert library.has("Good") and not library.has("Odd")
    [problem] = problems.all()
    assert problem.file == str(tmp_path / "Odd.yaml") and "TypeError: a parser bug" in problem.reason
    monkeypatch.setattr(cards_module, "load_character", real)
    library.reload()  # the file is fine now: the list follows
    assert library.has("Odd") and problems.all() == []


def broken_extensions(base: Path) -> None:
    write_ext(base, "exits", "import sys\nsys.exit(3)\n")
    write_ext(base, "badmeta", "params = {'a': 1}\nparams_meta = {'a': 'not a dict'}\n")
    write_ext(base, "badreq", "x = 1\n")
    (base / "badreq" / "requirements.txt").write_bytes(b"\xff\xfe not utf-8")
    write_ext(base, "ok", "params = {'level': 3}\n")


def test_extensions_that_cannot_load_are_reported_not_raised(tmp_path: Path) -> None:
    broken_extensions(tmp_path / "ext")
    problems = Problems()
    manager = ExtensionManager([tmp_path / "ext"], entry_point_group=None,
                               store=JsonFileStore(tmp_path / "extensions.json"), problems=problems)
    manager.check_all()  # without importing: what the files show (a disabled extension is never imported)
    assert {Path(p.file).parent.name for p in problems.of("extensions")} == {"badmeta", "badreq"}
    manager.set_enabled(["exits"])  # an import-time exit only shows when it is enabled
    manager.check_all()
    reasons = {Path(p.file).parent.name: p.reason for p in problems.of("extensions")}
    assert set(reasons) == {"exits", "badmeta", "badreq"}
    assert "SystemExit: 3" in reasons["exits"]
    assert "invalid settings" in reasons["badmeta"]
    assert "cannot read" in reasons["badreq"] and "requirements.txt" in reasons["badreq"]
    assert manager.param_specs("ok")["level"].default == 3
    (tmp_path / "ext" / "exits" / "script.py").write_text("x = 1\n", encoding="utf-8")  # fixed
    manager.check_all()
    assert {Path(p.file).parent.name for p in problems.of("extensions")} == {"badmeta", "badreq"}


@pytest.mark.parametrize("broken", ["{oops", "[1, 2]"])
def test_a_broken_extension_settings_file_is_reported_and_left_alone(tmp_path: Path, broken: str) -> None:
    write_ext(tmp_path / "ext", "ok", "params = {'level': 3}\n")
    store_file = tmp_path / "extensions.json"
    store_file.write_text(broken, encoding="utf-8")
    problems = Problems()
    manager = ExtensionManager([tmp_path / "ext"], entry_point_group=None, store=JsonFileStore(store_file),
                               problems=problems)
    assert manager.restore_enabled() == {} and manager.enabled() == []
    assert manager.param_specs("ok")["level"].default == 3  # loads with its defaults
    [problem] = problems.all()
    assert (problem.kind, problem.file) == ("extension settings", str(store_file))
    assert store_file.read_text() == broken


def test_a_saved_setting_an_extension_cannot_use_is_reported(tmp_path: Path) -> None:
    write_ext(tmp_path / "ext", "ok", "params = {'level': 3}\n")
    store_file = tmp_path / "extensions.json"
    store_file.write_text(json.dumps({"ok": {"level": "high"}, "@enabled": {"order": ["ok", "ghost"]}}))
    problems = Problems()
    manager = ExtensionManager([tmp_path / "ext"], entry_point_group=None, store=JsonFileStore(store_file),
                               problems=problems)
    refused = manager.restore_enabled()
    assert manager.enabled() == ["ok"] and list(refused) == ["ghost"]
    assert manager.get_params("ok")["level"] == 3
    listed = {(p.kind, p.file): p.reason for p in problems.all()}
    assert "'ghost'" in listed[("extension", str(store_file))]  # who asked for the unknown name
    assert "'level'" in listed[("extension settings", str(store_file))]


def test_files_in_the_models_folder_that_cannot_be_models_are_skipped(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "hf").mkdir(parents=True)
    (models / "hf" / "config.json").write_text("{}")
    (models / "broken").mkdir()
    (models / "broken" / "config.json").write_text("{not json")
    (models / "good.gguf").write_bytes(b"GGUF" + b"\3\0\0\0" + b"\0" * 16)
    (models / "junk.gguf").write_bytes(b"PK\3\4 not a model")
    (models / ".partial.gguf").write_bytes(b"x")
    (models / "notes.txt").write_text("notes")
    entries, skipped = check_models_dir(models)
    assert sorted(e.label for e in entries) == ["good.gguf", "hf"]
    assert {p.name if p.name != "config.json" else p.parent.name for p, _ in skipped} == {"junk.gguf", "broken"}


def test_presets_templates_and_model_settings_that_cannot_load_are_listed(tmp_path: Path) -> None:
    presets_dir, templates_dir = tmp_path / "presets", tmp_path / "instruction-templates"
    presets_dir.mkdir()
    templates_dir.mkdir()
    (presets_dir / "ok.yaml").write_text("temperature: 0.5\n")
    (presets_dir / "typo.yaml").write_text("temprature: 0.5\n")
    (templates_dir / "ok.jinja").write_text("{{ messages[0].content }}")
    (templates_dir / "open.jinja").write_text("{% if x %}")
    (templates_dir / "nokey.yaml").write_text("something_else: 1\n")
    found = {Path(p.file).name for p in preset_problems(PresetLibrary([presets_dir]))}
    assert found == {"typo.yaml"}
    found = {Path(p.file).name for p in template_problems(InstructionTemplates(templates_dir))}
    assert found == {"open.jinja", "nokey.yaml"}
    assert model_settings_problems(tmp_path) == []
    (tmp_path / "model-settings.json").write_text("[1, 2]")
    [problem] = model_settings_problems(tmp_path)
    assert problem.kind == "model settings" and "JSON object" in problem.reason
