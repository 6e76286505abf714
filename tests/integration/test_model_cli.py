"""Model flags as a user runs them, and per-model settings surviving a restart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.integration.test_app_cli import assert_clean_failure, run_app
from tests.support.server_utils import start_app
from webui.config import load_settings
from webui.context import build_context

pytestmark = pytest.mark.slow


def test_cuda_only_flags_are_refused_without_a_traceback(tmp_path: Path) -> None:
    r = run_app("--n-gpu-layers", "20", "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "GPU layers needs a GPU build of llama-cpp-python")
    r = run_app("--cache-type", "q4_0", "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "needs flash attention")
    r = run_app("--model", "http://127.0.0.1:9/v1", "--data-dir", str(tmp_path / "d"))
    assert_clean_failure(r, "Cannot reach the remote server at http://127.0.0.1:9/v1")


def test_quantization_flag_loads_and_is_remembered(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Start with --model NAME (found in --models-dir) and --quantization quanto, then restart with
    only --model: the saved options are used again."""
    models = tmp_path / "models"
    shutil.copytree(tiny_llama_dir, models / "tiny")
    data = tmp_path / "data"
    cli = {"data_dir": str(data), "models_dir": str(models), "model": "tiny"}
    ctx = build_context(load_settings({**cli, "quantization": "quanto", "dtype": "float32"}, environ={}))
    try:
        assert ctx.engine.load_info.loader == "transformers"
        assert ctx.engine.spec.options["quantization"] == "quanto-int8"
    finally:
        ctx.engine.shutdown()
    saved = json.loads((data / "model-settings.json").read_text())
    assert saved[str((models / "tiny").resolve())]["options"]["quantization"] == "quanto-int8"

    ctx = build_context(load_settings(cli, environ={}))
    try:
        assert ctx.engine.spec.options["quantization"] == "quanto-int8"
        assert ctx.engine.spec.options["dtype"] == "float32"
    finally:
        ctx.engine.shutdown()


def test_app_serves_a_bnb_4bit_model_from_flags(tmp_path: Path, tiny_llama_dir: Path) -> None:
    app = start_app(
        tmp_path / "data", "--model", str(tiny_llama_dir), "--load-in-4bit", "--quant-type", "fp4", "--use-double-quant"
    )
    try:
        assert httpx.get(f"{app.url}/healthz", timeout=10).json()["model"] == tiny_llama_dir.name
    finally:
        app.stop()
    saved = json.loads((tmp_path / "data" / "model-settings.json").read_text())[str(tiny_llama_dir.resolve())]
    assert saved["options"]["quantization"] == "bnb-4bit" and saved["options"]["quant_type"] == "fp4"
