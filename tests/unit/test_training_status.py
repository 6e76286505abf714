"""The run files and the status callback without a trainer: what status.json says after each event,
a stop request turning into save + stop, and a run whose worker vanished reported failed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from transformers import TrainerControl

from webui.training import run_files as rf
from webui.training.callbacks import StatusCallback
from webui.training.runs import RunManager
from webui.training.types import ChatSelection, Hyperparams, RunStatus, TrainRequest


def _state(step: int, tokens: int, max_steps: int = 10) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, epoch=step / 5, num_input_tokens_seen=tokens, max_steps=max_steps)


def test_the_callback_reports_progress_losses_and_a_stop(tmp_path: Path) -> None:
    stop = {"asked": False}
    status = RunStatus(id="r", name="n", method="sft", state="queued")
    callback = StatusCallback(tmp_path, status, lambda: stop["asked"])
    args = SimpleNamespace(output_dir=str(tmp_path / "checkpoints"))
    control = TrainerControl()
    callback.on_train_begin(args, _state(0, 0), control)
    assert rf.read_status(tmp_path).state == "running" and rf.read_status(tmp_path).max_steps == 10
    callback.on_step_end(args, _state(1, 100), control)
    callback.on_log(args, _state(1, 100), control, logs={"loss": 2.5, "grad_norm": 1.0})
    callback.on_evaluate(args, _state(1, 100), control, metrics={"eval_loss": 2.0})
    callback.on_evaluate(args, _state(1, 100), control, metrics={"eval_loss": 1.9})  # same step: replaced
    on_disk = rf.read_status(tmp_path)
    assert on_disk.step == 1 and on_disk.tokens_per_second > 0 and on_disk.eta_seconds is not None
    assert on_disk.train_loss == [(1, 2.5)] and on_disk.val_loss == [(1, 1.9)]
    assert not control.should_training_stop

    stop["asked"] = True
    control.should_evaluate = True
    callback.on_step_end(args, _state(2, 200), control)
    assert control.should_save and control.should_training_stop and not control.should_evaluate and callback.stopped
    callback.on_save(args, _state(2, 200), control)
    assert rf.read_status(tmp_path).checkpoint == str(tmp_path / "checkpoints" / "checkpoint-2")


def test_requests_and_statuses_round_trip(tmp_path: Path) -> None:
    request = TrainRequest(name="x", base_model="/m", method="dpo", chats=ChatSelection(character="Ann"),
                           hyper=Hyperparams(rank=4, target_modules=["q_proj"]))
    rf.write_request(tmp_path, request)
    assert rf.read_request(tmp_path) == request
    status = RunStatus(id="r", name="x", method="dpo", state="done", train_loss=[(1, 0.5)], samples=[
        {"prompt": "p", "base": "b", "adapter": "a"}])
    rf.write_status(tmp_path, status)
    assert rf.read_status(tmp_path) == status


def test_a_running_run_without_its_process_is_reported_failed_with_its_log(tmp_path: Path) -> None:
    manager = RunManager(tmp_path)
    run_dir = manager.root / "20260101-000000-gone"
    run_dir.mkdir(parents=True)
    rf.write_status(run_dir, RunStatus(id=run_dir.name, name="gone", method="sft", state="running", step=3,
                                       started_at="2026-01-01T00:00:00+00:00"))
    (run_dir / rf.PID).write_text("999999999")  # no such process
    (run_dir / rf.LOG).write_text("loading\nKilled: out of memory\n")
    [status] = manager.list()
    assert status.state == "failed" and status.finished_at
    assert status.message == "The training process ended unexpectedly: loading | Killed: out of memory"
    assert rf.read_status(run_dir).state == "failed"  # recorded, not only shown
    done = manager.root / "20260102-000000-done"
    done.mkdir()
    rf.write_status(done, RunStatus(id=done.name, name="done", method="sft", state="done",
                                    started_at="2026-01-02T00:00:00+00:00"))
    assert [s.id for s in manager.list()] == [done.name, run_dir.name]  # newest first
