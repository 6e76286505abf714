"""The lora endpoints and ``--lora`` against the real app (``python app.py``) on the embedded GGUF.

The adapter is a PEFT LoRA written directly (random q/v matrices in SmolLM2's shapes), so no model
has to be loaded to make it; the llama.cpp backend exports it as a GGUF LoRA when it is applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.echo_upstream import echo_upstream
from tests.support.server_utils import RunningApp, start_app
from webui.config import REPO_ROOT

pytestmark = pytest.mark.slow

ERROR_KEYS = {"message", "type", "param", "code"}
PROMPT = "The capital of France is"
# SmolLM2-135M: 30 layers, hidden 576, 9 heads, 3 KV heads (q: 576x576, v: 192x576)
SHAPES = {"self_attn.q_proj": (576, 576), "self_attn.v_proj": (192, 576)}


def write_adapter(data_dir: Path, name: str, seed: int) -> Path:
    from safetensors.numpy import save_file

    folder = data_dir / "loras" / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(30):
        for module, (out, inp) in SHAPES.items():
            key = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = (rng.standard_normal((8, inp)) * 0.1).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = (rng.standard_normal((out, 8)) * 0.1).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
              "base_model_name_or_path": "SmolLM2-135M-Instruct"}
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = tmp_path_factory.mktemp("lora-api") / "data"
    write_adapter(data, "alpha", seed=0)
    (data / "loras" / "broken").mkdir()  # listed by the Model tab with its problem, never applied
    running = start_app(data, "--lora", "alpha", "--lora", "ghost")
    yield running
    running.stop()


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == ERROR_KEYS and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    return err


def complete(app: RunningApp) -> str:
    body = {"model": "default", "prompt": PROMPT, "max_tokens": 6, "temperature": 0}
    resp = httpx.post(f"{app.url}/v1/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["text"]


def lora_list(app: RunningApp, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{app.url}/v1/internal/lora/list", timeout=60, **kwargs)  # type: ignore[arg-type]


def post(app: RunningApp, path: str, body: object = None, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{app.url}/v1/internal/lora/{path}", json=body, timeout=120, **kwargs)  # type: ignore[arg-type]


def test_startup_applies_lora_and_lists_the_missing_one(app: RunningApp) -> None:
    listed = lora_list(app).json()
    assert listed == {"lora_names": ["alpha"], "applied": [{"name": "alpha", "weight": 1.0}]}
    problems = httpx.get(f"{app.url}/v1/internal/problems", timeout=30).json()
    ghost = [p for p in problems if p["kind"] == "LoRA adapter"]
    assert len(ghost) == 1 and ghost[0]["file"].endswith("ghost") and "No LoRA adapter named 'ghost'" in \
        ghost[0]["reason"]
    assert (app.data_dir / "loras" / "alpha" / "adapter.gguf").is_file()  # exported for llama.cpp on demand


def test_unload_and_load_change_the_answers(app: RunningApp) -> None:
    with_adapter = complete(app)
    assert post(app, "unload").json() == "OK"
    assert lora_list(app).json()["applied"] == []
    base = complete(app)
    assert base != with_adapter
    resp = post(app, "load", {"lora_names": ["alpha"], "lora_weights": [1.0]})
    assert resp.status_code == 200 and resp.json() == "OK"
    assert complete(app) == with_adapter
    assert post(app, "load", {"lora_names": ["alpha"], "lora_weights": [0.0]}).json() == "OK"
    assert lora_list(app).json()["applied"] == [{"name": "alpha", "weight": 0.0}]
    assert complete(app) == base  # weight 0: the base model's answer
    assert post(app, "load", {"lora_names": ["alpha"]}).json() == "OK"  # weights optional, 1.0


def test_bad_requests_get_clear_errors(app: RunningApp) -> None:
    err = assert_error(post(app, "load", {"lora_names": ["nope"]}), 404, "lora_not_found")
    assert "No LoRA adapter named 'nope'" in err["message"] and "alpha" in err["message"]
    assert "not an adapter name" in assert_error(post(app, "load", {"lora_names": ["../loras"]}), 400)["message"]
    assert "cannot be used" in assert_error(post(app, "load", {"lora_names": ["broken"]}), 400)["message"]
    assert "one weight per adapter" in assert_error(
        post(app, "load", {"lora_names": ["alpha"], "lora_weights": [1, 2]}), 400)["message"]
    assert_error(post(app, "load", {"lora_names": "alpha"}), 400)
    assert_error(post(app, "load", {}), 400)
    assert lora_list(app).json()["applied"] == [{"name": "alpha", "weight": 1.0}]  # a refused load changes nothing
    assert complete(app)  # still serving


def test_key_required_and_a_loader_that_cannot_apply(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_adapter(data, "alpha", seed=0)
    with echo_upstream() as (url, _requests):
        running = start_app(data, "--model", url, "--api-key", "s3cret")
        try:
            assert_error(lora_list(running), 401)
            assert_error(post(running, "unload"), 401)
            auth = {"headers": {"Authorization": "Bearer s3cret"}}
            assert lora_list(running, **auth).json() == {"lora_names": ["alpha"], "applied": []}
            err = assert_error(post(running, "load", {"lora_names": ["alpha"]}, **auth), 400)
            assert "remote loader cannot apply LoRA adapters" in err["message"]
            assert lora_list(running, **auth).json()["applied"] == []
        finally:
            running.stop()


def test_cli_run_with_lora(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_adapter(data, "alpha", seed=0)
    base = [sys.executable, str(REPO_ROOT / "app.py"), "run", "--data-dir", str(data), "--max-tokens", "4",
            "--log-level", "info"]
    ok = subprocess.run([*base, "--lora", "alpha", "hi"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "LoRA adapters applied: alpha (1)" in ok.stderr
    missing = subprocess.run([*base, "--lora", "ghost", "hi"], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 0, missing.stderr
    assert "ghost" in missing.stderr and "No LoRA adapter named 'ghost'" in missing.stderr
