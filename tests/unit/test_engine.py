import threading
import time

import pytest

from webui.engine.engine import Engine
from webui.engine.protocol import ModelSpec
from webui.engine.worker import InferenceWorker
from webui.errors import ModelLoadError
from webui.generation.params import GenerationParams


def test_deltas_stream_in_order(make_engine) -> None:
    engine = make_engine(tokens=["a", "b", "c"])
    handle = engine.generate("p", GenerationParams())
    assert list(handle) == ["a", "b", "c"]
    assert handle.stats.completion_tokens == 3
    assert handle.stats.finish_reason == "stop"


def test_all_model_work_runs_on_the_one_worker_thread(make_engine) -> None:
    engine = make_engine()
    engine.generate(engine.format_chat([{"role": "user", "content": "hi"}]), GenerationParams()).text()
    engine.count_tokens("x y")
    assert engine.model.threads == {"inference"}


def test_max_new_tokens_gives_length(make_engine) -> None:
    engine = make_engine(tokens=list("abcdef"))
    handle = engine.generate("p", GenerationParams(max_new_tokens=2))
    assert handle.text() == "ab"
    assert handle.stats.finish_reason == "length"


def test_stop_string_ends_generation_and_is_hidden(make_engine) -> None:
    engine = make_engine(tokens=["Hi", "\n", "Us", "er:", " more", " text"])
    handle = engine.generate("p", GenerationParams(stop=["\nUser:"]))
    assert handle.text() == "Hi"
    assert handle.stats.finish_reason == "stop"
    # generation stopped at the stop string: " more" was never produced
    assert handle.stats.completion_tokens == 4


def test_cancel_stops_mid_reply(make_engine) -> None:
    engine = make_engine(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    handle = engine.generate("p", GenerationParams(max_new_tokens=200))
    got = []
    for delta in handle:
        got.append(delta)
        if len(got) == 5:
            handle.cancel()
    assert 5 <= len(got) < 10
    assert handle.stats.finish_reason == "cancelled"


def test_cancel_before_start_skips_the_job(make_engine) -> None:
    engine = make_engine(tokens=["x"] * 50, delay=0.01)
    first = engine.generate("p", GenerationParams())
    second = engine.generate("p", GenerationParams())
    second.cancel()
    first.text()
    assert second.text() == ""
    assert second.stats.finish_reason == "cancelled"


def test_jobs_run_one_at_a_time_in_order() -> None:
    worker = InferenceWorker()
    order: list[int] = []
    active = threading.Event()
    overlaps: list[bool] = []

    def job(i: int):
        def run() -> int:
            overlaps.append(active.is_set())
            active.set()
            time.sleep(0.01)
            order.append(i)
            active.clear()
            return i

        return run

    threads = [threading.Thread(target=worker.call, args=(job(i),)) for i in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.002)
    for t in threads:
        t.join()
    worker.shutdown()
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert not any(overlaps)


def test_backend_error_reaches_the_reader(make_engine) -> None:
    engine = make_engine()

    def boom(prompt, params, emit, hooks=None):
        emit("partial")
        raise RuntimeError("kaboom")

    engine.model.generate = boom
    handle = engine.generate("p", GenerationParams())
    with pytest.raises(RuntimeError, match="kaboom"):
        list(handle)
    assert handle.stats.finish_reason == "error"
    # the worker survives and serves the next job
    engine.model.generate = type(engine.model).generate.__get__(engine.model)
    assert engine.generate("p", GenerationParams()).text() == "Hello there!"


def test_no_model_loaded_is_a_clear_error() -> None:
    engine = Engine()
    try:
        with pytest.raises(ModelLoadError, match="No model is loaded"):
            engine.generate("p", GenerationParams()).text()
    finally:
        engine.shutdown()


def test_unknown_loader_is_a_clear_error() -> None:
    engine = Engine()
    try:
        with pytest.raises(ModelLoadError, match="Unknown loader"):
            engine.load(ModelSpec(path="x", loader="nope"))
    finally:
        engine.shutdown()


def test_params_reject_unknown_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        GenerationParams(tempreature=1.0)
    with pytest.raises(ValueError):
        GenerationParams(top_p=0)
