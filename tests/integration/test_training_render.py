"""Rendering training rows with the REAL SmolLM2 tokenizer: the chat template applied, exactly the
assistant replies (and their end-of-turn token) trained, truncation counted, and TRL's SFTTrainer
building its labels from the examples as they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webui.errors import UserFacingError
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE
from webui.training.render import MASK_KEY, TRAINED, preview, segments, tokenize_sft

SYSTEM = "You answer questions about Zorbia."
CHAT = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "What is the capital of Zorbia?"},
    {"role": "assistant", "content": "The capital of Zorbia is Quillton."},
    {"role": "user", "content": "And its river?"},
    {"role": "assistant", "content": "The Brellwater, née Brell."},
]
REPLIES = [CHAT[2]["content"], CHAT[4]["content"]]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir: Path) -> Any:
    """SmolLM2's real tokenizer (read from the embedded GGUF once per session, saved with the tiny model)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.fixture
def template(tokenizer: Any) -> Iterator[Any]:
    """Set the tokenizer's chat template for one test: ``template(text or None)``."""
    original = tokenizer.chat_template

    def set_template(text: str | None) -> None:
        tokenizer.chat_template = text

    yield set_template
    tokenizer.chat_template = original


def trained_pieces(pieces: list[tuple[str, str | None]]) -> list[str]:
    return [text for text, label in pieces if label == TRAINED]


def test_only_the_assistant_replies_and_their_end_of_turn_are_trained(tokenizer: Any) -> None:
    tokenized = tokenize_sft([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant")

    example = tokenized.examples[0]
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert example["input_ids"] == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    trained_ids = [t for t, m in zip(example["input_ids"], example[MASK_KEY]) if m]
    assert tokenizer.decode(trained_ids) == "".join(r + "<|im_end|>" for r in REPLIES)
    pieces = segments(tokenized, tokenizer)[0]
    assert "".join(text for text, _label in pieces) == rendered  # exactly what the model sees
    assert trained_pieces(pieces) == [r + "<|im_end|>" for r in REPLIES]
    untrained = "".join(text for text, label in pieces if label is None)
    assert SYSTEM in untrained and "What is the capital" in untrained and "And its river?" in untrained
    assert (tokenized.n_examples, tokenized.n_truncated, tokenized.n_dropped) == (1, 0, 0)
    assert tokenized.n_tokens == len(example["input_ids"]) and tokenized.n_trained_tokens == len(trained_ids)
    assert preview([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant") == [pieces]


def test_context_messages_are_not_trained_unless_training_on_everything(tokenizer: Any) -> None:
    chat = [{"role": "assistant", "content": "Hello! I am the greeting.", "train": False}, *CHAT[1:]]
    pieces = preview([{"messages": chat}], tokenizer, max_length=512, train_on="assistant")[0]
    assert trained_pieces(pieces) == [r + "<|im_end|>" for r in REPLIES]
    everything = tokenize_sft([{"messages": chat}], tokenizer, max_length=512, train_on="all")
    assert all(everything.examples[0][MASK_KEY]) and everything.n_trained_tokens == everything.n_tokens


def test_truncation_is_counted_and_an_example_with_nothing_left_to_train_dropped(tokenizer: Any) -> None:
    full = len(tokenize_sft([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant").examples[0]
               ["input_ids"])
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "Yes."}]

    tokenized = tokenize_sft([{"messages": m} for m in (CHAT, short, long_prompt)], tokenizer, max_length=full - 5,
                             train_on="assistant")

    assert (tokenized.n_examples, tokenized.n_truncated, tokenized.n_dropped) == (2, 2, 1)
    assert len(tokenized.examples[0]["input_ids"]) == full - 5
    kept = tokenizer.decode([t for t, m in zip(tokenized.examples[0]["input_ids"], tokenized.examples[0][MASK_KEY])
                             if m])
    assert kept.startswith(REPLIES[0] + "<|im_end|>") and not kept.endswith("<|im_end|>")
    assert tokenized.n_tokens == sum(len(e["input_ids"]) for e in tokenized.examples)


def test_long_text_is_split_into_blocks_not_cut(tokenizer: Any) -> None:
    text = " ".join(f"Line {i} of the Zorbian chronicle." for i in range(60))
    tokenized = tokenize_sft([{"text": text}], tokenizer, max_length=64, train_on="assistant")
    ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    assert [t for e in tokenized.examples for t in e["input_ids"]] == ids
    assert tokenized.n_examples == -(-len(ids) // 64) and all(len(e["input_ids"]) <= 64 for e in tokenized.examples)
    assert tokenized.n_truncated == 0 and tokenized.n_trained_tokens == tokenized.n_tokens == len(ids)


def test_a_tokenizer_without_a_template_gets_the_apps_fallback(tokenizer: Any, template: Any) -> None:
    template(None)
    pieces = preview([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant")[0]
    from jinja2 import Template

    assert "".join(t for t, _ in pieces) == Template(FALLBACK_CHAT_TEMPLATE).render(messages=CHAT)
    assert trained_pieces(pieces) == [r + "<|im_end|>" for r in REPLIES]


def test_a_template_that_rewrites_earlier_turns_still_masks_the_replies(tokenizer: Any, template: Any) -> None:
    # The turn count up front changes with every message, so no rendering is a prefix of the next.
    template("{{ messages | length }} turns\n" + FALLBACK_CHAT_TEMPLATE)
    pieces = preview([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant")[0]
    assert "".join(t for t, _ in pieces).startswith("5 turns\n")
    assert trained_pieces(pieces) == [r + "<|im_end|>" for r in REPLIES]


def test_a_template_that_refuses_the_conversation_is_one_clear_line(tokenizer: Any, template: Any) -> None:
    template("{{ raise_exception('Conversation roles must alternate user/assistant') }}")
    with pytest.raises(UserFacingError, match=r"^Row 2: the model's chat template cannot render this conversation "
                                              r"\(.*Conversation roles must alternate user/assistant\)\.$"):
        tokenize_sft([{"text": "plain text is fine"}, {"messages": CHAT}], tokenizer, max_length=512,
                     train_on="assistant")


def test_sft_trainer_takes_the_examples_as_they_are(tokenizer: Any, tiny_llama_dir: Path, tmp_path: Path) -> None:
    """The trainer's contract: the examples go straight to TRL's SFTTrainer, which builds labels from the mask."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    rows = [{"messages": CHAT}, {"messages": CHAT[1:3]}, {"text": "Zorbia is a small country. " * 3}]
    tokenized = tokenize_sft(rows, tokenizer, max_length=128, train_on="assistant")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    args = SFTConfig(output_dir=str(tmp_path), max_length=128, max_steps=1, per_device_train_batch_size=3,
                     report_to="none", save_strategy="no", use_cpu=True, shuffle_dataset=False)
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer,
                         train_dataset=datasets.Dataset.from_list(tokenized.examples))
    prepared = trainer.train_dataset
    assert len(prepared) == 3
    for example, row in zip(tokenized.examples, prepared):
        assert row["input_ids"] == example["input_ids"]
        assert row["labels"] == [t if m else -100 for t, m in zip(example["input_ids"], example[MASK_KEY])]
    assert trainer.train().training_loss > 0


class NoOffsets:
    """The tokenizer as a slow one looks: no offsets mapping (``is_fast`` False)."""

    is_fast = False

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, text: str, **kwargs: Any) -> Any:
        assert "return_offsets_mapping" not in kwargs
        return self._inner(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_tokenizer_without_offsets_gets_the_same_mask(tokenizer: Any) -> None:
    fast = tokenize_sft([{"messages": CHAT}], tokenizer, max_length=512, train_on="assistant")
    slow = tokenize_sft([{"messages": CHAT}], NoOffsets(tokenizer), max_length=512, train_on="assistant")
    assert slow.examples == fast.examples


def test_a_conversation_with_no_reply_to_train_is_left_out(tokenizer: Any) -> None:
    context_only = [CHAT[1], {**CHAT[2], "train": False}]
    tokenized = tokenize_sft([{"messages": context_only}, {"messages": CHAT}], tokenizer, max_length=512,
                             train_on="assistant")
    assert (tokenized.n_examples, tokenized.n_dropped, tokenized.n_truncated) == (1, 1, 0)
