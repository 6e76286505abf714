"""The adapter library (<data-dir>/loras), the engine's bookkeeping of applied adapters on a loader
that cannot apply them, and ``--lora`` at start-up (fake backend: no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webui.engine.model_settings import apply_startup_loras, startup_lora_names
from webui.errors import UserFacingError
from webui.problems import Problems
from webui.training.lora_library import LoraLibrary, LoraNotFound
from webui.training.types import METADATA_FILE


def make(root: Path, name: str, *, config: object = None, weights: bool = True, meta: object = None) -> Path:
    folder = root / "loras" / name
    folder.mkdir(parents=True)
    if config is not False:
        text = config if isinstance(config, str) else json.dumps(config or {"peft_type": "LORA", "r": 4,
                                                                            "base_model_name_or_path": "x"})
        (folder / "adapter_config.json").write_text(text, encoding="utf-8")
    if weights:
        (folder / "adapter_model.safetensors").write_bytes(b"\0" * 100)
    if meta is not None:
        (folder / METADATA_FILE).write_text(meta if isinstance(meta, str) else json.dumps(meta), encoding="utf-8")
    return folder


def test_list_shows_good_and_malformed_adapters(tmp_path: Path) -> None:
    make(tmp_path, "good", meta={"name": "good", "base_model": "SmolLM2", "method": "dpo",
                                 "created_at": "2026-11-30T08:00:00"})
    make(tmp_path, "no-config", config=False)
    make(tmp_path, "no-weights", weights=False)
    make(tmp_path, "bad-json", config="{nope")
    make(tmp_path, "ia3", config={"peft_type": "IA3"})
    make(tmp_path, "bad-meta", meta="[[[")
    make(tmp_path, ".tmp-half-written")
    (tmp_path / "loras" / "stray.txt").write_text("x")
    entries = {e.name: e for e in LoraLibrary(tmp_path).list()}
    assert sorted(entries) == ["bad-json", "bad-meta", "good", "ia3", "no-config", "no-weights"]
    good = entries["good"]
    assert (good.problem, good.base_model, good.method, good.created_at) == (None, "SmolLM2", "dpo",
                                                                            "2026-11-30T08:00:00")
    assert good.size_bytes > 100 and not good.has_gguf
    assert "adapter_config.json" in entries["no-config"].problem
    assert "weights" in entries["no-weights"].problem
    assert "not valid JSON" in entries["bad-json"].problem
    assert "IA3" in entries["ia3"].problem
    assert METADATA_FILE in entries["bad-meta"].problem
    assert LoraLibrary(tmp_path).names() == ["good"]
    assert LoraLibrary(tmp_path / "nowhere").list() == []


@pytest.mark.parametrize("name", ["../x", "a/b", "", "  ", ".hidden", "..", "a\\b", "x\x00"])
def test_names_cannot_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserFacingError, match="not an adapter name"):
        LoraLibrary(tmp_path).path(name)


def test_resolve_checks_names_and_weights(tmp_path: Path) -> None:
    make(tmp_path, "a")
    make(tmp_path, "b")
    make(tmp_path, "broken", config=False)
    lib = LoraLibrary(tmp_path)
    got = lib.resolve(["a", "b"], [0.5, -1])
    assert [(x.name, x.weight, x.path) for x in got] == [("a", 0.5, lib.root / "a"), ("b", -1.0, lib.root / "b")]
    assert [x.weight for x in lib.resolve(["a"])] == [1.0]
    with pytest.raises(LoraNotFound, match="No LoRA adapter named 'zzz'.*available: a, b"):
        lib.resolve(["zzz"])
    with pytest.raises(UserFacingError, match="cannot be used"):
        lib.resolve(["broken"])
    with pytest.raises(UserFacingError, match="one weight per adapter"):
        lib.resolve(["a", "b"], [1.0])
    with pytest.raises(UserFacingError, match="named twice"):
        lib.resolve(["a", "a"])
    for bad in (float("nan"), float("inf"), 11, True, "1"):
        with pytest.raises(UserFacingError, match="must be a number"):
            lib.resolve(["a"], [bad])  # type: ignore[list-item]


def test_delete(tmp_path: Path) -> None:
    make(tmp_path, "a")
    lib = LoraLibrary(tmp_path)
    lib.delete("a")
    assert lib.list() == []
    with pytest.raises(LoraNotFound):
        lib.delete("a")


def test_a_loader_without_adapters_refuses_and_keeps_nothing_applied(tmp_path: Path, make_engine) -> None:
    make(tmp_path, "a")
    engine = make_engine()
    with pytest.raises(UserFacingError, match="cannot apply LoRA adapters"):
        engine.apply_loras(["a"], library=LoraLibrary(tmp_path))
    assert engine.loras == []
    engine.remove_loras()  # nothing applied: nothing to refuse
    with pytest.raises(LoraNotFound):
        engine.apply_loras(["missing"], library=LoraLibrary(tmp_path))


class _Settings:
    def __init__(self, data_dir: Path, lora: list[str]) -> None:
        self.data_dir, self.lora = data_dir, lora


def test_startup_names_accept_repeats_and_commas(tmp_path: Path) -> None:
    assert startup_lora_names(_Settings(tmp_path, ["a, b", "c", " "])) == ["a", "b", "c"]


def test_startup_adapters_that_cannot_apply_are_listed_in_problems(tmp_path: Path, make_engine) -> None:
    make(tmp_path, "real")
    engine = make_engine()
    problems = Problems()
    apply_startup_loras(engine, _Settings(tmp_path, ["ghost,real"]), problems)
    reasons = {Path(p.file).name: p.reason for p in problems.all()}
    assert set(reasons) == {"ghost", "real"}
    assert "No LoRA adapter named 'ghost'" in reasons["ghost"]
    assert "cannot apply LoRA adapters" in reasons["real"]  # the fake loader cannot
    assert engine.loras == [] and engine.model is not None
