"""Training runs through the real RunManager and worker processes, on the tiny random Llama:
Stop leaves a checkpoint that Resume continues from the same step; a killed worker is reported
failed; DPO raises the chosen-over-rejected margin on held-out pairs; every bad input is refused
with one message and leaves nothing behind; ``python app.py train`` exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webui.config import REPO_ROOT
from webui.errors import UserFacingError
from webui.training.runs import RunManager
from webui.training.types import Hyperparams, TrainRequest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _sft_rows(n: int = 24) -> list[dict]:
    return [{"prompt": f"Say the word number {i}.", "completion": f"Word {i}: banana."} for i in range(n)]


def _wait_for_step(manager: RunManager, run_id: str, step: int, timeout: float = 600):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.status(run_id)
        assert status.state in ("queued", "running"), status.message
        if status.step >= step:
            return status
        time.sleep(0.3)
    raise AssertionError(f"step {step} not reached in {timeout} s")


def _left_behind(data_dir: Path) -> list[str]:
    return [str(p.relative_to(data_dir)) for sub in ("loras", "training/runs") if (data_dir / sub).is_dir()
            for p in (data_dir / sub).iterdir()]


def test_stop_leaves_a_checkpoint_and_resume_continues_from_its_step(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = _write(tmp_path / "d.jsonl", _sft_rows())
    manager = RunManager(tmp_path / "data")
    request = TrainRequest(name="stopper", base_model=str(tiny_llama_dir), data_file=str(data),
                           hyper=Hyperparams(max_steps=40, batch_size=2, max_length=64, learning_rate=1e-3,
                                             eval_steps=1000, n_samples=1, sample_max_tokens=4))
    run_id = manager.start(request).id
    _wait_for_step(manager, run_id, 2)
    manager.stop(run_id)
    stopped = manager.wait(run_id, timeout=600)
    assert stopped.state == "stopped", stopped.message
    assert 2 <= stopped.step < 40
    assert stopped.checkpoint and Path(stopped.checkpoint).name == f"checkpoint-{stopped.step}"
    assert (Path(stopped.checkpoint) / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "data" / "loras" / "stopper").exists()
    assert [s for s, _ in stopped.train_loss] == list(range(1, stopped.step + 1))
    with pytest.raises(UserFacingError, match="not running"):
        manager.stop(run_id)

    resumed = manager.resume(run_id)
    assert resumed.state == "queued"
    # the resumed worker's first step is the one after the checkpoint: no step is trained twice or skipped
    done = manager.wait(run_id, timeout=900)
    assert done.state == "done", done.message
    assert done.step == 40
    steps = [s for s, _ in done.train_loss]
    assert steps == list(range(1, 41)), steps
    assert (tmp_path / "data" / "loras" / "stopper" / "adapter_model.safetensors").is_file()
    with pytest.raises(UserFacingError, match="Only a stopped or failed run"):
        manager.resume(run_id)


def test_a_killed_worker_is_reported_failed_and_a_new_manager_sees_it(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = _write(tmp_path / "d.jsonl", _sft_rows())
    manager = RunManager(tmp_path / "data")
    run_id = manager.start(TrainRequest(name="victim", base_model=str(tiny_llama_dir), data_file=str(data),
                                        hyper=Hyperparams(max_steps=500, batch_size=2, max_length=64))).id
    status = _wait_for_step(manager, run_id, 1)
    os.kill(status.pid, signal.SIGKILL)
    failed = manager.wait(run_id, timeout=30)
    assert failed.message.startswith("The training process ended unexpectedly")
    assert [s.state for s in RunManager(tmp_path / "data").list()] == ["failed"]  # after a "restart" too
    assert not (tmp_path / "data" / "loras" / "victim").exists()
    manager.delete(run_id)
    assert manager.list() == []


def _margins(model_dir: Path, adapter: Path | None, pairs: list[dict]) -> float:
    """Mean log p(chosen) - log p(rejected) over ``pairs`` (answer tokens only, given the prompt)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()

    def logp(prompt: str, answer: str) -> float:
        head = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        ids_head = tokenizer(head, add_special_tokens=False)["input_ids"]
        ids = tokenizer(head + answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
        targets = torch.tensor(ids[1:])
        picked = logits.gather(1, targets[:, None])[:, 0]
        return float(picked[len(ids_head) - 1:].sum())

    values = [logp(p["prompt"], p["chosen"]) - logp(p["prompt"], p["rejected"]) for p in pairs]
    return sum(values) / len(values)


def _pairs(topics: list[str]) -> list[dict]:
    return [{"prompt": f"Tell me about {t}.", "chosen": f"Certainly! {t.capitalize()} is wonderful.",
             "rejected": f"no. {t} bad"} for t in topics]


def test_dpo_raises_the_margin_of_the_preferred_style_on_held_out_pairs(tmp_path: Path, tiny_llama_dir: Path) -> None:
    train_topics = ["apples", "rivers", "clocks", "maps", "violins", "tigers", "comets", "bridges", "gardens",
                    "lanterns", "harbors", "castles", "deserts", "glaciers", "meadows", "islands"]
    held_topics = ["forests", "trains", "candles", "oceans"]
    data = _write(tmp_path / "prefs.jsonl", _pairs(train_topics))
    val = _write(tmp_path / "prefs-val.jsonl", _pairs(held_topics))
    manager = RunManager(tmp_path / "data")
    run_id = manager.start(TrainRequest(
        name="polite", base_model=str(tiny_llama_dir), method="dpo", data_file=str(data), validation_file=str(val),
        hyper=Hyperparams(max_steps=12, batch_size=4, learning_rate=5e-3, rank=8, max_length=64, beta=0.1,
                          eval_steps=6, n_samples=1, sample_max_tokens=4))).id
    done = manager.wait(run_id, timeout=900)
    assert done.state == "done", done.message
    adapter = tmp_path / "data" / "loras" / "polite"
    meta = json.loads((adapter / "webui-lora.json").read_text())
    assert meta["method"] == "dpo" and meta["data_format"] == "Preference"
    held = _pairs(held_topics)
    before, after = _margins(tiny_llama_dir, None, held), _margins(tiny_llama_dir, adapter, held)
    assert after > before + 1.0, (before, after)
    assert done.val_loss[0][0] == 0 and done.val_loss[-1][0] == 12, done.val_loss
    assert done.val_loss[-1][1] < done.val_loss[0][1], done.val_loss  # DPO's own loss on the held-out pairs


@pytest.fixture
def tiny_request(tmp_path: Path, tiny_llama_dir: Path):  # type: ignore[no-untyped-def]
    data = _write(tmp_path / "ok.jsonl", _sft_rows(8))

    def make(**changes) -> TrainRequest:  # type: ignore[no-untyped-def]
        hyper = changes.pop("hyper", Hyperparams(max_steps=2))
        fields = {"name": "ok", "base_model": str(tiny_llama_dir), "data_file": str(data), **changes}
        return TrainRequest(hyper=hyper, **fields)

    return make


def _bad_cases(tmp_path: Path) -> dict[str, tuple[dict, str]]:
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"question": "hi"}\n', encoding="utf-8")
    unknown = tmp_path / "unknown-arch"
    unknown.mkdir()
    (unknown / "config.json").write_text('{"model_type": "no-such-architecture"}', encoding="utf-8")
    (tmp_path / "notes.md").write_text("hello", encoding="utf-8")
    return {
        "bad name": ({"name": "../escape"}, "cannot name an adapter"),
        "remote base": ({"base_model": "http://127.0.0.1:1/v1"}, "remote model server"),
        "missing base": ({"base_model": str(tmp_path / "nope")}, "Base model not found"),
        "unknown architecture": ({"base_model": str(unknown)}, "architecture"),
        "not a model file": ({"base_model": str(tmp_path / "notes.md")}, "neither a model folder nor a .gguf"),
        "empty data": ({"data_file": str(tmp_path / "empty.jsonl")}, "empty"),
        "malformed data": ({"data_file": str(tmp_path / "bad.jsonl")}, "line 1"),
        "missing data": ({"data_file": str(tmp_path / "nope.jsonl")}, "nope.jsonl"),
        "no data": ({"data_file": None}, "Choose the training data"),
        "dpo on sft rows": ({"method": "dpo"}, "preference rows"),
        "zero steps": ({"hyper": Hyperparams(max_steps=0)}, "at least 1"),
        "bad learning rate": ({"hyper": Hyperparams(learning_rate=5.0)}, "learning rate"),
    }


def test_bad_inputs_are_refused_with_one_message_and_leave_nothing(tmp_path: Path, tiny_request) -> None:  # type: ignore[no-untyped-def]
    import torch

    manager = RunManager(tmp_path / "data")
    cases = _bad_cases(tmp_path)
    if not torch.cuda.is_available():
        cases["4-bit without CUDA"] = ({"hyper": Hyperparams(quantization="4bit")}, "needs a CUDA GPU")
    for label, (changes, expected) in cases.items():
        with pytest.raises(UserFacingError) as caught:
            manager.start(tiny_request(**changes))
        message = str(caught.value)
        assert expected in message, (label, message)
        assert "\n" not in message and "Traceback" not in message, (label, message)
        assert _left_behind(tmp_path / "data") == [], label


def test_no_disk_space_and_an_existing_name_are_refused(tmp_path: Path, tiny_request, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shutil as real_shutil

    from webui.training import runs

    manager = RunManager(tmp_path / "data")
    (tmp_path / "data" / "loras" / "taken").mkdir(parents=True)
    with pytest.raises(UserFacingError, match="already exists"):
        manager.validate(tiny_request(name="taken"))
    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda _p: usage._replace(free=10 * 2**20))
    with pytest.raises(UserFacingError, match="Not enough disk space"):
        manager.start(tiny_request())
    assert _left_behind(tmp_path / "data") == ["loras/taken"]


def app_py(*args: str, data_dir: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def test_the_train_command(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = _write(tmp_path / "d.jsonl", _sft_rows(10))
    data_dir = tmp_path / "data"
    ok = app_py("train", str(data), "--name", "cli-lora", "--model", str(tiny_llama_dir), "--max-steps", "3",
                "--lr", "1e-3", "--rank", "4", "--batch-size", "2", data_dir=data_dir)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "step 3/3" in ok.stdout and "Saved the adapter cli-lora" in ok.stdout, ok.stdout
    meta = json.loads((data_dir / "loras" / "cli-lora" / "webui-lora.json").read_text())
    assert meta["hyperparams"]["rank"] == 4 and meta["hyperparams"]["alpha"] == 8 and meta["steps"] == 3

    again = app_py("train", str(data), "--name", "cli-lora", "--model", str(tiny_llama_dir), data_dir=data_dir)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [again.stderr.strip()] and "already exists" in again.stderr

    missing = app_py("train", str(tmp_path / "nope.jsonl"), "--name", "x", "--model", str(tiny_llama_dir),
                     data_dir=data_dir)
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr

    usage = app_py("train", str(data), data_dir=data_dir)  # no --name
    assert usage.returncode == 2 and "--name" in usage.stderr
