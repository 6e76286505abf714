"""The sampler-extension mechanism (``register_samplers``, typed sampler parameters, processors built per
generation, the llama.cpp adapter, isolation) on avoid_words, a sampler extension written for the tests
(tests/support/sampler_extensions), and that the old dry/xtc/mirostat extension names point to the
built-in samplers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.extensions import SAMPLER_EXTENSIONS_DIR, manager_for, write_ext
from webui.plugins import ExtensionManager, JsonFileStore, ParamError, SamplerContext, for_llama_cpp
from webui.plugins.store import ENABLED_KEY
from webui.problems import Problems

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

# A toy word-level tokenizer: a word with its leading space is one token, as in BPE vocabularies.
VOCAB = {"a": 1, " a": 2, "Paris": 3, " Paris": 4, "Rome": 5, " Rome": 6, " ": 7, "is": 8, " is": 9}


def encode(text: str) -> list[int]:
    return [VOCAB[piece] for piece in re.findall(r" ?\w+| ", text)]


CTX = SamplerContext(encode=encode)
ON = {"avoid_words": ["Paris"], "avoid_penalty": 5.0}


@pytest.fixture
def mgr() -> ExtensionManager:
    manager = manager_for(SAMPLER_EXTENSIONS_DIR)
    assert manager.set_enabled(["avoid_words"]) == {}
    return manager


def ids(*tokens: int):
    return torch.tensor([list(tokens)])


def build(mgr: ExtensionManager, values: dict, ctx: SamplerContext | None = CTX):
    processors = mgr.build_logits_processors(values, ctx)
    assert len(processors) == 1, processors
    return processors[0]


def test_registered_sampler_and_its_parameters(mgr: ExtensionManager) -> None:
    (sampler,) = mgr.samplers().values()
    assert (sampler.name, sampler.extension) == ("avoid_words", "avoid_words")
    assert [(p.key, p.type) for p in mgr.sampler_params()] == [
        ("avoid_words", "list"), ("avoid_penalty", "float"), ("avoid_from_token", "int")]
    # Neutral by default: nothing changes a generation until the values ask for it.
    assert mgr.build_logits_processors({}, CTX) == []
    assert mgr.build_logits_processors({"avoid_penalty": 5.0}, CTX) == []  # no words
    assert mgr.build_logits_processors({"avoid_words": ["Paris"]}, CTX) == []  # no penalty


def test_the_processor_lowers_the_first_token_of_each_word_in_both_forms(mgr: ExtensionManager) -> None:
    processor = build(mgr, ON)
    scores = torch.zeros(1, 10)
    out = processor(ids(1, 9), scores)
    expected = torch.zeros(1, 10)
    expected[0, [3, 4]] = -5.0
    assert torch.equal(out, expected) and torch.equal(scores, torch.zeros(1, 10))  # a new tensor
    # A JSON list (as an API field or a Parameters-tab textbox sends it) is coerced; several words.
    both = build(mgr, {"avoid_words": '["Paris", "Rome"]', "avoid_penalty": "2.5"})
    assert (both(ids(1), torch.zeros(1, 10))[0] == -2.5).nonzero().flatten().tolist() == [3, 4, 5, 6]


def test_a_fresh_stateful_processor_per_generation(mgr: ExtensionManager) -> None:
    values = {**ON, "avoid_from_token": 2}
    first = build(mgr, values)
    prompt = [1, 9, 2]
    assert torch.equal(first(ids(*prompt), torch.zeros(1, 10)), torch.zeros(1, 10))  # 0 reply tokens
    assert torch.equal(first(ids(*prompt, 6), torch.zeros(1, 10)), torch.zeros(1, 10))  # 1
    assert first(ids(*prompt, 6, 9), torch.zeros(1, 10))[0, 4] == -5.0  # 2: from here on
    # The next generation gets its own processor, which learns its own prompt length.
    second = build(mgr, values)
    assert second is not first
    assert torch.equal(second(ids(*prompt, 6, 9), torch.zeros(1, 10)), torch.zeros(1, 10))


def test_without_a_tokenizer_the_processor_changes_nothing(mgr: ExtensionManager) -> None:
    processor = build(mgr, ON, None)
    assert torch.equal(processor(ids(1), torch.zeros(1, 10)), torch.zeros(1, 10))


def test_through_the_llama_cpp_adapter(mgr: ExtensionManager) -> None:
    processor = for_llama_cpp(build(mgr, ON))
    out = processor(np.array([1, 9], dtype=np.intc), np.zeros(10, dtype=np.single))
    assert out.shape == (10,) and out.dtype == np.single
    assert out[3] == out[4] == pytest.approx(-5.0) and (np.delete(out, [3, 4]) == 0).all()


def test_invalid_values_are_refused_and_a_disabled_extension_ignores_its_values(mgr: ExtensionManager) -> None:
    with pytest.raises(ParamError, match="avoid_penalty"):
        mgr.build_logits_processors({"avoid_penalty": "lots"}, CTX)
    with pytest.raises(ParamError, match="avoid_words"):
        mgr.build_logits_processors({"avoid_words": "Paris, Rome", "avoid_penalty": 1}, CTX)
    mgr.disable("avoid_words")
    assert mgr.samplers() == {} and mgr.build_logits_processors(ON, CTX) == []


def test_failing_sampler_is_isolated(tmp_path: Path) -> None:
    write_ext(tmp_path, "flaky", """
        from webui.plugins import SamplerSpec
        def broken(input_ids, scores):
            raise IndexError("vocab mismatch")
        def register_samplers():
            return [SamplerSpec(name="flaky", factory=lambda params: broken)]
    """)
    mgr = manager_for(tmp_path)
    mgr.enable("flaky")
    (processor,) = mgr.build_logits_processors({})
    scores = torch.zeros(1, 4)
    assert processor(ids(1), scores) is scores
    assert mgr.enabled() == [] and mgr.failures()[0].hook == "sampler flaky"
    assert processor(ids(1), scores) is scores  # stays a pass-through
    assert len(mgr.failures()) == 1


@pytest.mark.parametrize(("name", "group"), [("dry", "DRY"), ("xtc", "XTC"), ("mirostat", "Mirostat")])
def test_the_retired_sampler_extensions_point_to_the_built_in_samplers(name: str, group: str, tmp_path: Path) -> None:
    problems = Problems()
    mgr = ExtensionManager([SAMPLER_EXTENSIONS_DIR], entry_point_group=None, problems=problems)
    refused = mgr.set_enabled([name, "avoid_words"], persist=False, origin="--extensions")
    message = f"{name} is built in now: set {group} on the Parameters tab or in the request"
    assert refused == {name: message} and mgr.enabled() == ["avoid_words"]  # the others still enabled
    assert [(p.kind, p.file, p.reason) for p in problems.of("extensions")] == [("extension", "--extensions", message)]
    # A user's own extension with that name is still theirs.
    write_ext(tmp_path, name, "params = {'display_name': 'mine'}\n")
    own = manager_for(tmp_path)
    assert own.set_enabled([name]) == {} and own.info(name).display_name == "mine"


def test_a_saved_enabled_list_naming_a_retired_extension_starts_without_it(tmp_path: Path) -> None:
    settings = tmp_path / "extensions.json"
    settings.write_text(json.dumps({ENABLED_KEY: {"order": ["mirostat", "avoid_words"]}}), encoding="utf-8")
    problems = Problems()
    mgr = ExtensionManager([SAMPLER_EXTENSIONS_DIR], entry_point_group=None, store=JsonFileStore(settings),
                           problems=problems)
    assert mgr.restore_enabled() == {"mirostat": "mirostat is built in now: set Mirostat on the Parameters tab or "
                                                 "in the request"}
    assert mgr.enabled() == ["avoid_words"]
    assert [(p.file, p.reason.split(":")[0]) for p in problems.all()] == [(str(settings), "mirostat is built in now")]
