"""Model options as data, flags, per-model settings, catalog, pre-quantized detection (no model loads)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from webui.config import load_settings
from webui.engine import options as opts
from webui.engine.catalog import resolve_model, scan_catalog, scan_hf_cache, scan_models_dir
from webui.engine.model_settings import ModelSettingsError, ModelSettingsStore, spec_with_saved, startup_spec
from webui.engine.protocol import ModelSpec
from webui.engine.quantization import check_prequantized, detect_prequantized
from webui.errors import ModelLoadError


# -- options as data ----------------------------------------------------------------------------
def test_each_loader_sees_only_its_options() -> None:
    tf = {o.name for o in opts.options_for("transformers")}
    assert {"dtype", "quantization", "device_map", "attn_implementation", "trust_remote_code"} <= tf
    assert "quant_type" not in tf and "n_ctx" not in tf
    assert {"quant_type", "use_double_quant", "compute_dtype"} <= {
        o.name for o in opts.options_for("transformers", "bnb-4bit")
    }
    assert "fp32_cpu_offload" in {o.name for o in opts.options_for("transformers", "bnb-8bit")}
    assert "quant_type" not in {o.name for o in opts.options_for("transformers", "torchao-int8")}
    lcpp = {o.name for o in opts.options_for("llama.cpp")}
    assert lcpp == {
        "n_ctx", "n_gpu_layers", "threads", "n_batch", "flash_attn", "cache_type", "use_mmap", "use_mlock",
        "tensor_split", "prompt_cache_mb", "context_shift",
    }
    assert {o.name for o in opts.options_for("remote")} == {
        "remote_api_key", "remote_model", "context_length", "timeout"
    }


def test_normalize_coerces_fills_defaults_and_drops_other_loaders() -> None:
    out = opts.normalize("llama.cpp", {"n_ctx": "2048", "flash_attn": "true", "dtype": "bfloat16"}, gpu=False)
    assert out["n_ctx"] == 2048 and out["flash_attn"] is True and out["n_batch"] == 512
    assert "dtype" not in out
    tf = opts.normalize("transformers", {"quantization": "bnb-4bit", "quant_type": "fp4"}, gpu=False)
    assert tf["quant_type"] == "fp4" and tf["use_double_quant"] is False and "fp32_cpu_offload" not in tf


@pytest.mark.parametrize(
    ("loader", "options", "message"),
    [
        ("transformers", {"dtype": "float8"}, "Unknown dtype 'float8'; choose one of auto"),
        ("transformers", {"nonsense": 1}, "Unknown model option"),
        ("llama.cpp", {"n_ctx": "lots"}, "not a int number"),
        ("llama.cpp", {"n_ctx": -5}, "at least 0"),
        ("llama.cpp", {"n_gpu_layers": 20}, "GPU build"),
        ("llama.cpp", {"tensor_split": "3,1"}, "GPU build"),
        ("llama.cpp", {"cache_type": "q8_0"}, "flash attention"),
        ("transformers", {"device_map": "cuda"}, "CUDA GPU"),
        ("transformers", {"compile": True}, "CUDA GPU"),
        ("transformers", {"quantization": "bnb-8bit", "fp32_cpu_offload": True}, "CUDA GPU"),
        ("transformers", {"attn_implementation": "flash_attention_2"}, "CUDA GPU"),
        ("transformers", {"max_memory_gpu": "20GiB"}, "CUDA GPU"),
        ("nope", {}, "Unknown loader"),
    ],
)
def test_what_cannot_work_here_is_refused_clearly(loader: str, options: dict, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        opts.normalize(loader, options, gpu=False)


def test_gpu_options_pass_where_a_gpu_exists() -> None:
    out = opts.normalize("llama.cpp", {"n_gpu_layers": -1, "tensor_split": "3,1"}, gpu=True)
    assert out["n_gpu_layers"] == -1 and out["tensor_split"] == "3,1"


# -- flags ---------------------------------------------------------------------------------------
def test_flags_map_to_spec_options() -> None:
    import app

    args = app.parse_args(["--model", "m", "--load-in-4bit", "--quant-type", "fp4", "--use-double-quant",
                           "--compute-dtype", "bfloat16", "--n-ctx", "1024", "--threads", "2", "--no-mmap"])
    values = opts.flag_values(vars(args))
    assert values == {"quantization": "bnb-4bit", "quant_type": "fp4", "use_double_quant": True,
                      "compute_dtype": "bfloat16", "n_ctx": 1024, "threads": 2, "use_mmap": False}
    assert opts.flag_values(vars(app.parse_args(["--load-in-8bit"])))["quantization"] == "bnb-8bit"
    assert opts.flag_values(vars(app.parse_args(["--quantization", "torchao"])))["quantization"] == "torchao-int8"
    assert opts.flag_values(vars(app.parse_args(["--quantization", "quanto"])))["quantization"] == "quanto-int8"
    assert opts.flag_values(vars(app.parse_args([]))) == {}


def test_env_and_settings_file_reach_the_options(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("n_ctx: 512\nload_in_8bit: true\n")
    settings = load_settings(
        {"data_dir": str(tmp_path)}, environ={"WEBUI_THREADS": "3", "WEBUI_MODELS_DIR": str(tmp_path / "m")}
    )
    assert opts.flag_values(settings.model_dump()) == {"n_ctx": 512, "threads": 3, "quantization": "bnb-8bit"}
    assert settings.models_path == tmp_path / "m"
    assert load_settings({"data_dir": str(tmp_path)}, environ={}).models_path == tmp_path.resolve() / "models"


# -- per-model settings ---------------------------------------------------------------------------
def test_store_round_trip_without_secrets_and_survives_corruption(tmp_path: Path) -> None:
    store = ModelSettingsStore.in_data_dir(tmp_path)
    assert store.get("x") is None
    store.put("http://h/v1", "remote", {"remote_api_key": "sk-secret", "remote_model": "m"})
    store.put("/m/a", "transformers", {"quantization": "quanto-int8"})
    assert store.get("/m/a").options == {"quantization": "quanto-int8"}
    saved = store.get("http://h/v1")
    assert saved.loader == "remote" and saved.options == {"remote_model": "m"}
    assert "sk-secret" not in store.path.read_text()
    assert store.problem() is None
    store.path.write_text("{not json")
    assert store.get("/m/a") is None  # unreadable file: nothing saved, no crash
    assert "Cannot read the model settings file" in (store.problem() or "")
    with pytest.raises(ModelSettingsError, match="Fix or delete the file"):
        store.put("/m/a", "transformers", {})  # the broken file is the user's to fix: never overwritten
    assert store.path.read_text() == "{not json"
    store.path.unlink()
    store.put("/m/a", "transformers", {})
    assert store.get("/m/a").loader == "transformers"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model-settings-")]


def test_saved_options_fill_in_and_flags_win(tmp_path: Path) -> None:
    store = ModelSettingsStore.in_data_dir(tmp_path)
    store.put("/m/a", "transformers", {"quantization": "bnb-4bit", "quant_type": "fp4", "dtype": "bfloat16"})
    spec = spec_with_saved(ModelSpec(path="/m/a"), store, {"quant_type": "nf4"})
    assert spec.loader == "transformers"
    assert spec.options == {"quantization": "bnb-4bit", "quant_type": "nf4", "dtype": "bfloat16"}
    # Another loader chosen explicitly: the transformers options do not carry over.
    assert spec_with_saved(ModelSpec(path="/m/a", loader="llama.cpp"), store).options == {}


def test_startup_spec_uses_models_dir_names_and_saved_options(tmp_path: Path) -> None:
    model = tmp_path / "models" / "mine"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    ModelSettingsStore.in_data_dir(tmp_path).put(str(model.resolve()), "transformers", {"quantization": "quanto-int8"})
    settings = load_settings({"data_dir": str(tmp_path), "model": "mine", "n_ctx": 99}, environ={})
    spec = startup_spec(settings)
    assert spec.path == str(model.resolve()) and spec.loader == "transformers"
    assert spec.options["quantization"] == "quanto-int8" and spec.options["n_ctx"] == 99
    with pytest.raises(ModelLoadError, match="Model not found"):
        resolve_model("nothing-here", models_dir=tmp_path / "models")
    remote = resolve_model("http://127.0.0.1:1/v1")
    assert remote.loader == "remote" and remote.path == "http://127.0.0.1:1/v1"


# -- catalog ---------------------------------------------------------------------------------------
def test_models_dir_catalog(tmp_path: Path, embedded_gguf: Path) -> None:
    (tmp_path / "hf-model").mkdir()
    (tmp_path / "hf-model" / "config.json").write_text("{}")
    (tmp_path / "top.gguf").write_bytes(b"GGUF")
    quants = tmp_path / "org_repo-GGUF"
    quants.mkdir()
    for name in ("m.Q4_K_M.gguf", "big-00001-of-00002.gguf", "big-00002-of-00002.gguf"):
        (quants / name).write_bytes(b"GGUF")
    (tmp_path / ".download-x").mkdir()
    (tmp_path / ".download-x" / "config.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    entries = scan_models_dir(tmp_path)
    assert [(e.label, e.loader) for e in entries] == [
        ("top.gguf", "llama.cpp"),
        ("hf-model", "transformers"),
        ("org_repo-GGUF/big-00001-of-00002.gguf", "llama.cpp"),
        ("org_repo-GGUF/m.Q4_K_M.gguf", "llama.cpp"),
    ]
    full = scan_catalog(tmp_path, hf_cache=False)
    assert full[0].source == "embedded" and full[0].path == str(embedded_gguf)
    assert scan_models_dir(tmp_path / "missing") == []


def test_hf_cache_snapshots_are_listed(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--tiny"
    commit = "a" * 40
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "b1").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    os.symlink("../../blobs/b1", snap / "config.json")
    entries = scan_hf_cache(tmp_path)
    assert [(e.label, e.path, e.loader, e.source) for e in entries] == [
        ("org/tiny (HF cache)", str(snap), "transformers", "hf-cache")
    ]
    assert scan_hf_cache(tmp_path / "none") == []


# -- pre-quantized checkpoints -----------------------------------------------------------------------
def _config(folder: Path, qc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": qc}))
    return folder


def test_prequantized_checkpoints_are_detected(tmp_path: Path) -> None:
    gptq = detect_prequantized(_config(tmp_path / "g", {"quant_method": "gptq", "bits": 4}))
    assert gptq is not None and gptq.method == "gptq" and gptq.label == "gptq 4-bit"
    bnb = detect_prequantized(_config(tmp_path / "b", {"load_in_4bit": True}))
    assert bnb is not None and bnb.method == "bitsandbytes" and bnb.label == "bitsandbytes 4-bit"
    assert (
        detect_prequantized(_config(tmp_path / "c", {"quant_method": "compressed-tensors"})).method
        == "compressed-tensors"
    )
    assert detect_prequantized(_config(tmp_path / "f", {"quant_method": "fp8"})).method == "fp8"
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    assert detect_prequantized(tmp_path / "plain") is None


def test_missing_package_for_prequantized_gives_install_line(tmp_path: Path) -> None:
    import importlib.util

    pq = detect_prequantized(_config(tmp_path / "g", {"quant_method": "gptq", "bits": 4}))
    if importlib.util.find_spec("gptqmodel") is None:
        with pytest.raises(ModelLoadError, match="pip install .*gptqmodel"):
            check_prequantized(pq, cuda=False)
    ct = detect_prequantized(_config(tmp_path / "c", {"quant_method": "compressed-tensors"}))
    if importlib.util.find_spec("compressed_tensors") is None:
        with pytest.raises(ModelLoadError, match="pip install compressed-tensors"):
            check_prequantized(ct, cuda=False)
    bnb = detect_prequantized(_config(tmp_path / "b", {"quant_method": "bitsandbytes", "load_in_8bit": True}))
    check_prequantized(bnb, cuda=False)  # installed: no complaint
    with pytest.raises(ModelLoadError, match="CUDA"):
        check_prequantized(detect_prequantized(_config(tmp_path / "e", {"quant_method": "eetq"})), cuda=False)


def test_refused_load_keeps_the_current_model(make_engine, tmp_path: Path, embedded_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    folder = _config(tmp_path / "g", {"quant_method": "gptq", "bits": 4})
    with pytest.raises(ModelLoadError):
        engine.load(ModelSpec(path=str(folder), loader="transformers", options={"quantization": "bnb-8bit"}))
    with pytest.raises(ModelLoadError, match="already quantized"):
        engine.load(ModelSpec(path=str(folder), loader="transformers", options={"quantization": "bnb-8bit"}))
    with pytest.raises(ModelLoadError, match="GPU build"):
        engine.load(ModelSpec(path=str(embedded_gguf), loader="llama.cpp", options={"n_gpu_layers": 5}))
    assert engine.model is not None and engine.model_name == "fake"
