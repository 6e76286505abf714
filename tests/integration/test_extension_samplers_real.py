"""Extension samplers and logits-processor hooks through the real backends.

transformers on the tiny random Llama, llama.cpp on the embedded SmolLM2 GGUF: the parameters of
avoid_words (a sampler extension written for the tests, tests/support/sampler_extensions) in
GenerationParams.samplers change the greedy output, and a processor appended by
logits_processor_modifier sees the real logits and steers decoding. The built-in DRY field
(once an extension too) is checked here in a real decode, next to the extension samplers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.extensions import SAMPLER_EXTENSIONS_DIR, write_ext
from tests.support.real_engine import loaded_engine
from webui.chat.hooks import TurnHooks
from webui.config import REPO_ROOT
from webui.engine.engine import Engine
from webui.generation.params import GenerationParams
from webui.plugins import ExtensionManager, MemoryStore

FORCE = """
import torch
seen = []
params = {"token_id": 0}
def logits_processor_modifier(processor_list, input_ids):
    seen.append(("prompt", tuple(input_ids.shape)))
    def force(ids, scores):
        seen.append((tuple(ids.shape), tuple(scores.shape)))
        out = torch.full_like(scores, float("-inf"))
        out[..., params["token_id"]] = 0.0
        return out
    processor_list.append(force)
    return processor_list
"""

BROKEN = """
calls = []
def logits_processor_modifier(processor_list, input_ids):
    def broken(ids, scores):
        calls.append(1)
        raise RuntimeError("broken processor")
    return [*processor_list, broken]
"""


@pytest.fixture
def manager(tmp_path: Path) -> ExtensionManager:
    write_ext(tmp_path, "force", FORCE)
    write_ext(tmp_path, "broken", BROKEN)
    return ExtensionManager([REPO_ROOT / "extensions", SAMPLER_EXTENSIONS_DIR, tmp_path], entry_point_group=None,
                            store=MemoryStore())


@pytest.fixture(scope="module")
def hf_engine(tiny_llama_dir: Path) -> Iterator[Engine]:
    yield from loaded_engine(tiny_llama_dir, "transformers")


@pytest.fixture(scope="module")
def llama_engine(embedded_gguf: Path) -> Iterator[Engine]:
    yield from loaded_engine(embedded_gguf, "llama.cpp", n_ctx=1024)


def greedy(hooks: TurnHooks, engine: Engine, prompt: str, n: int = 24, fields: dict | None = None,
           **samplers: object) -> str:
    """The greedy reply with extension sampler values ``samplers`` and GenerationParams ``fields``."""
    params = GenerationParams(**{"temperature": 0, "max_new_tokens": n, "seed": 1, **(fields or {})},
                              samplers=samplers)
    return hooks.complete(engine, prompt, params).text()


def chat_prompt(engine: Engine, content: str = "Count: one two one two one two one two") -> str:
    return engine.format_chat([{"role": "user", "content": content}])


def test_llama_cpp_extension_sampler_changes_the_greedy_reply(manager: ExtensionManager,
                                                              llama_engine: Engine) -> None:
    hooks = TurnHooks(manager)
    prompt = chat_prompt(llama_engine, "What is the capital of France? One word.")
    manager.set_enabled(["avoid_words"], persist=False)
    plain = greedy(hooks, llama_engine, prompt, n=8)
    assert "Paris" in plain
    assert plain == greedy(TurnHooks(None), llama_engine, prompt, n=8)  # neutral values: no effect
    avoided = greedy(hooks, llama_engine, prompt, n=8, avoid_words=["Paris"], avoid_penalty=100.0)
    assert avoided.strip() and "Paris" not in avoided
    manager.disable("avoid_words")  # values of a disabled extension's sampler are ignored
    assert greedy(hooks, llama_engine, prompt, n=8, avoid_words=["Paris"], avoid_penalty=100.0) == plain
    assert manager.failures() == []


def test_llama_cpp_built_in_dry_breaks_a_greedy_loop(llama_engine: Engine) -> None:
    """(XTC and mirostat in a real decode: tests/integration/test_native_samplers.py.)"""
    hooks = TurnHooks(None)  # no extension: the field alone
    prompt = chat_prompt(llama_engine)
    plain = greedy(hooks, llama_engine, prompt)
    dry = greedy(hooks, llama_engine, prompt, fields={"dry_multiplier": 2.0})
    # The plain greedy reply loops ("two two two ..."); DRY breaks the loop.
    assert plain.count("two") > 10 and dry.count("two") < plain.count("two") / 2


def test_llama_cpp_logits_processor_modifier(manager: ExtensionManager, llama_engine: Engine) -> None:
    manager.set_enabled(["force"], persist=False)
    ext = manager.load("force").obj
    llm = llama_engine.model._llm  # type: ignore[union-attr]
    ext.params["token_id"] = llm.tokenize(b" banana", add_bos=False)[0]
    out = greedy(TurnHooks(manager), llama_engine, chat_prompt(llama_engine), n=4)
    assert out.strip() == "banana banana banana banana"
    assert ext.seen[0][0] == "prompt" and ext.seen[1][1] == (1, llm.n_vocab())


def test_a_raising_processor_from_logits_processor_modifier_is_isolated(manager: ExtensionManager,
                                                                        llama_engine: Engine) -> None:
    """The reply goes on as if the processor were not there; the extension is reported and disabled."""
    prompt = chat_prompt(llama_engine)
    plain = greedy(TurnHooks(None), llama_engine, prompt, n=8)
    manager.set_enabled(["broken"], persist=False)
    assert greedy(TurnHooks(manager), llama_engine, prompt, n=8) == plain
    assert manager.load("broken").obj.calls == [1]  # called once, then passed through
    [failure] = manager.failures()
    assert (failure.extension, failure.hook) == ("broken", "logits_processor_modifier")
    assert "broken processor" in failure.message and "broken" not in manager.enabled()


def test_transformers_samplers_and_logits_processor_modifier(manager: ExtensionManager, hf_engine: Engine) -> None:
    hooks = TurnHooks(manager)
    prompt = chat_prompt(hf_engine)
    manager.set_enabled(["avoid_words", "force"], persist=False)
    ext = manager.load("force").obj
    tok = hf_engine.model._tok  # type: ignore[union-attr]
    ext.params["token_id"] = tok(" banana", add_special_tokens=False)["input_ids"][0]
    assert greedy(hooks, hf_engine, prompt, n=4).strip() == "banana banana banana banana"
    assert ext.seen[0] == ("prompt", (1, len(tok(prompt, add_special_tokens=False)["input_ids"])))
    assert ext.seen[1][1] == (1, hf_engine.model._model.config.vocab_size)  # type: ignore[union-attr]

    manager.disable("force")
    plain = greedy(hooks, hf_engine, prompt)
    # The tiny random model writes only newlines: avoiding "\n" makes it write something else.
    assert set(plain) == {"\n"}
    avoided = greedy(hooks, hf_engine, prompt, avoid_words=["\n"], avoid_penalty=100.0)
    assert avoided.strip() and "\n" not in avoided
    # The built-in DRY field (without sequence breakers) penalises the loop too, with no extension.
    dry = greedy(TurnHooks(None), hf_engine, prompt, fields={"dry_multiplier": 5.0, "dry_sequence_breakers": []})
    assert dry != plain and len(set(dry)) > len(set(plain))
    assert manager.failures() == []
