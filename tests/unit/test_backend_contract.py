"""The declared backend contract and the one list of loaders (webui/engine/registry.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from webui.config import REPO_ROOT
from webui.engine import options, registry
from webui.engine.engine import Engine
from webui.engine.protocol import Backend, BackendInfo, Emit, GenerationStats, LoadedModel, ModelInfo, ModelSpec
from webui.errors import ModelLoadError
from webui.generation.decode import DecodeHooks
from webui.generation.params import GenerationParams
from webui.generation.support import ALL_PARAMS, ENGINE_PARAMS, unsupported

TOY_PARAMS = frozenset({"temperature", "seed"})


class ToyModel(LoadedModel):
    def __init__(self, name: str) -> None:
        self.info = ModelInfo(name=name, loader="toy", context_length=64, footprint_bytes=1)

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def generate(self, prompt: str, params: GenerationParams, emit: Emit,
                 hooks: DecodeHooks | None = None) -> GenerationStats:
        for text in ["toy", "!"][: params.max_new_tokens]:
            if not emit(text):
                break
        return GenerationStats(prompt_tokens=self.count_tokens(prompt), completion_tokens=2)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def unload(self) -> None:
        return None


class ToyBackend(Backend):
    """A backend added by a test alone: registered below, edited nowhere else."""

    info = BackendInfo(name="toy", params=TOY_PARAMS)

    def can_load(self, path: str) -> bool:
        return path.endswith(".toy")

    def preflight(self, spec: ModelSpec) -> None:
        if "refuse" in spec.path:
            raise ModelLoadError("the toy refuses this file")

    def load(self, spec: ModelSpec) -> ToyModel:
        return ToyModel("toy model")


@pytest.fixture
def toy_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the toy backend ahead of the others, so that it is asked first about a path."""
    monkeypatch.setattr(registry, "BACKENDS", {"toy": f"{__name__}:ToyBackend", **registry.BACKENDS})


@pytest.mark.parametrize("name", registry.loader_names())
def test_each_registered_backend_declares_its_info_consistently(name: str) -> None:
    cls = registry.backend_class(name)
    assert issubclass(cls, Backend) and cls.info.name == name
    assert cls.info.params <= ALL_PARAMS - ENGINE_PARAMS, cls.info.params - ALL_PARAMS  # real GenerationParams fields
    assert set(unsupported(name)) == ALL_PARAMS - ENGINE_PARAMS - cls.info.params
    # the defaults of the options the table declares for it pass its own validation
    assert set(options.normalize(name, options.defaults(name), gpu=False)) <= set(options.defaults(name))


def test_the_options_table_names_only_registered_loaders() -> None:
    registered = registry.loader_names()
    orphans = {(o.name, loader) for o in options.OPTIONS for loader in o.loaders if loader not in registered}
    assert not orphans


def test_capabilities_are_declared_as_today() -> None:
    info = {name: registry.backend_info(name) for name in ("llama.cpp", "transformers", "remote")}
    assert info["remote"].applies_chat_template and not info["llama.cpp"].applies_chat_template
    assert info["llama.cpp"].extension_processors and info["transformers"].extension_processors
    assert not info["remote"].extension_processors
    assert info["transformers"].token_hooks and not info["llama.cpp"].token_hooks
    assert info["llama.cpp"].logprobs and info["transformers"].logprobs and not info["remote"].logprobs
    assert info["llama.cpp"].native_samplers and not info["transformers"].native_samplers  # llama.cpp's own chain
    assert not info["remote"].adapters and not info["remote"].native_samplers


@pytest.mark.parametrize(("path", "loader"), [
    ("/models/a.gguf", "llama.cpp"),
    ("/models/A.GGUF", "llama.cpp"),
    ("http://127.0.0.1:8000/v1", "remote"),
    ("https://host/files/model.gguf", "remote"),  # a URL goes to the server backend, whatever it ends with
    ("/models/some-folder", "transformers"),
    ("does-not-exist", "transformers"),  # its checks then say the folder is missing
])
def test_the_loader_for_a_path_is_the_first_backend_that_takes_it(path: str, loader: str) -> None:
    assert registry.default_loader(path) == loader
    assert registry.pick_loader(ModelSpec(path)) == loader
    assert registry.pick_loader(ModelSpec(path, loader="remote")) == "remote"  # a named loader wins


def test_a_missing_model_folder_keeps_its_message(tmp_path: Path) -> None:
    engine = Engine()
    try:
        with pytest.raises(ModelLoadError, match="Model folder not found"):
            engine.load(ModelSpec(str(tmp_path / "missing")))
    finally:
        engine.shutdown()


def test_a_backend_registered_by_a_test_is_picked_up_everywhere(toy_first: None) -> None:
    assert registry.loader_names()[0] == "toy"
    assert registry.default_loader("/m/x.toy") == "toy" and registry.default_loader("/m/x.gguf") == "llama.cpp"
    assert options.normalize("toy", {}) == {} and options.options_for("toy") == []
    assert unsupported("toy") == sorted(ALL_PARAMS - ENGINE_PARAMS - TOY_PARAMS)
    engine = Engine()
    try:
        info = engine.load(ModelSpec("/m/x.toy"))
        assert (info.loader, info.name, info.footprint_bytes) == ("toy", "toy model", 1)
        assert engine.model_info is not None and engine.model_info.loader == "toy"
        messages = [{"role": "user", "content": "hi"}]
        assert engine.generate(engine.format_chat(messages), GenerationParams()).text() == "toy!"
    finally:
        engine.shutdown()


def test_preflight_refuses_before_the_current_model_is_unloaded(toy_first: None) -> None:
    engine = Engine()
    try:
        engine.load(ModelSpec("/m/keep.toy"))
        kept = engine.model
        with pytest.raises(ModelLoadError, match="the toy refuses"):
            engine.load(ModelSpec("/m/refuse.toy"))
        assert engine.model is kept and engine.load_info is not None
    finally:
        engine.shutdown()


def test_an_unknown_loader_is_refused_everywhere() -> None:
    listed = ", ".join(registry.loader_names())
    with pytest.raises(ModelLoadError, match=f"Unknown loader 'nope'; choose one of: {listed}"):
        registry.get_backend("nope")
    with pytest.raises(ModelLoadError, match="Unknown loader 'nope'"):
        options.normalize("nope", {})
    assert unsupported("nope") == [] and unsupported(None) == []


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_engine_imports_nothing_from_the_layers_above_it() -> None:
    above = ("webui.chat", "webui.ui", "webui.api")
    upward = {
        f"{path.name}: {name}"
        for path in sorted((REPO_ROOT / "webui" / "engine").glob("*.py"))
        for name in _imported_modules(path)
        if name.startswith(above)
    }
    assert not upward


def test_choosing_a_loader_for_a_gguf_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from webui.engine import registry\n"
        "from webui.generation.support import unsupported\n"
        "assert registry.default_loader('/m/x.gguf') == 'llama.cpp'\n"
        "[unsupported(n) for n in registry.loader_names()]\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
