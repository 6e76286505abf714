"""Rendering training rows into the tokens a model trains on, and the mask of the trained ones.

What TRL 1.16's ``SFTTrainer`` does with it (``trl/trainer/sft_trainer.py``, ``_prepare_dataset``): a
dataset with an ``input_ids`` column counts as already tokenized, so it is not re-rendered; when it
has no ``labels`` column, the labels are built from the ``assistant_masks`` column (always honoured;
``completion_mask`` would only be with ``completion_only_loss=True``): tokens whose mask is 0 get
label -100. It then truncates to ``max_length`` and drops examples left with no trained token (so do
we: such an example is counted in ``n_dropped`` and left out).

So each example here is ``{"input_ids": [...], "assistant_masks": [...]}`` (:data:`MASK_KEY`; 1 =
trained), already truncated to ``max_length``, and the trainer (``webui/training/worker.py``) passes
``datasets.Dataset.from_list(tokenized.examples)`` straight to ``SFTTrainer`` with an
``SFTConfig`` that keeps ``assistant_only_loss=False`` (True makes TRL refuse a tokenized dataset,
which it does not see as conversational), ``completion_only_loss=None`` or ``False``,
``packing=False``, the same ``max_length`` (or ``None``) and ``dataset_text_field`` unused.
``train_on="all"`` gives an all-ones mask, which is the same as no mask.

How the mask is found: the conversation is rendered with the tokenizer's own chat template
(``apply_chat_template``; the app's ChatML fallback, ``webui/generation/fallback_template.py``, when
the tokenizer has none, as the backends do). For each trained assistant message the template also
renders the conversation up to it with the generation prompt (where the reply starts) and up to
and including it (where it ends); the characters in between, less trailing whitespace after the
end-of-turn marker, are the reply and its end-of-turn token, and the tokens covering them are
trained. This works for any template whose renderings grow by appending; for one that rewrites
earlier turns, the reply's text is looked up in the full rendering instead. Messages marked
``"train": False`` (context only) are not trained.

Text rows are tokenized as plain text (the tokenizer's special tokens, plus the end-of-sequence
token as TRL adds it), every token trained, and a long text is cut into ``max_length`` blocks
rather than truncated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webui.errors import UserFacingError
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE
from webui.training.types import TrainOn

MASK_KEY = "assistant_masks"  # the column SFTTrainer builds labels from
TRAINED = "trained"  # the label of trained text in a preview (gr.HighlightedText)

Span = tuple[int, int]


@dataclass
class TokenizedSet:
    """Rows as the trainer takes them, and what the Training tab shows about them."""

    examples: list[dict[str, list[int]]] = field(default_factory=list)  # {"input_ids", MASK_KEY}
    n_examples: int = 0
    n_tokens: int = 0  # in the examples, after truncation
    n_trained_tokens: int = 0
    n_truncated: int = 0  # chat examples longer than max_length, cut (text rows are split instead)
    n_dropped: int = 0  # examples with no trained token (TRL drops them too), most cut by truncation: left out


def tokenize_sft(rows: list[dict[str, Any]], tokenizer: Any, *, max_length: int, train_on: TrainOn) -> TokenizedSet:
    """``{"messages"}`` and ``{"text"}`` rows as ``{"input_ids", "assistant_masks"}`` examples."""
    if max_length < 2:
        raise UserFacingError(f"The maximum length must be at least 2 tokens; got {max_length}.")
    out = TokenizedSet()
    for number, row in enumerate(rows, start=1):
        if "text" in row and "messages" not in row:
            for block in _text_blocks(row["text"], tokenizer, max_length):
                _add(out, block, [1] * len(block))
            continue
        if "messages" not in row:
            raise ValueError(f"row {number}: tokenize_sft takes chat or text rows; found keys {sorted(row)}")
        ids, mask = tokenize_chat(row["messages"], tokenizer, train_on=train_on, row=number)
        if len(ids) > max_length:
            out.n_truncated += 1
            ids, mask = ids[:max_length], mask[:max_length]
        if not any(mask):
            out.n_dropped += 1
            continue
        _add(out, ids, mask)
    return out


def _add(out: TokenizedSet, ids: list[int], mask: list[int]) -> None:
    out.examples.append({"input_ids": ids, MASK_KEY: mask})
    out.n_examples += 1
    out.n_tokens += len(ids)
    out.n_trained_tokens += sum(mask)


def _text_blocks(text: str, tokenizer: Any, max_length: int) -> list[list[int]]:
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    blocks = [ids[i : i + max_length] for i in range(0, len(ids), max_length)]
    return [b for b in blocks if len(b) >= 2]  # one token alone has no next token to learn


def chat_template(tokenizer: Any) -> str:
    """The template a conversation is rendered with: the tokenizer's, else the app's fallback."""
    return getattr(tokenizer, "chat_template", None) or FALLBACK_CHAT_TEMPLATE


def render(messages: list[dict[str, Any]], tokenizer: Any, *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it (the ``train`` marks left out)."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(
        plain, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=chat_template(tokenizer)
    )


def tokenize_chat(
    messages: list[dict[str, Any]], tokenizer: Any, *, train_on: TrainOn, row: int = 1
) -> tuple[list[int], list[int]]:
    """(token ids, mask) of one conversation, untruncated."""
    try:
        text = render(messages, tokenizer)
        spans = [(0, len(text))] if train_on == "all" else reply_spans(messages, tokenizer, text)
    except UserFacingError as exc:
        raise UserFacingError(f"Row {row}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a template's raise_exception(), or a Jinja error: one line
        raise UserFacingError(
            f"Row {row}: the model's chat template cannot render this conversation ({type(exc).__name__}: {exc})."
        ) from exc
    ids, offsets = _encode(text, tokenizer)
    mask = [1 if _inside(start, end, spans) else 0 for start, end in offsets]
    return ids, mask


def reply_spans(messages: list[dict[str, Any]], tokenizer: Any, text: str) -> list[Span]:
    """Character spans of ``text`` (the full rendering) holding each trained assistant reply."""
    spans: list[Span] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("train", True) is False:
            continue
        start_text = render(messages[:i], tokenizer, add_generation_prompt=True) if i else ""
        end_text = render(messages[: i + 1], tokenizer)
        start, end = len(start_text), len(end_text.rstrip())
        if i and text.startswith(start_text) and text.startswith(end_text) and end > start:
            span = (start, end)
        else:
            span = _find_reply(text, message["content"], cursor, tokenizer)
        spans.append(span)
        cursor = span[1]
    return spans


def _find_reply(text: str, content: str, cursor: int, tokenizer: Any) -> Span:
    """The reply's text in ``text`` after ``cursor``, with the end-of-turn token that follows it."""
    needle = content.strip()
    at = text.find(needle, cursor)
    if at < 0:
        raise UserFacingError(
            "the model's chat template changes the assistant's text, so which tokens to train cannot be "
            "told apart; train on all tokens instead."
        )
    end = at + len(needle)
    eos = getattr(tokenizer, "eos_token", None)
    rest = text[end:]
    if eos and rest.lstrip(" \n").startswith(eos):
        end += len(rest) - len(rest.lstrip(" \n")) + len(eos)
    return at, end


def _encode(text: str, tokenizer: Any) -> tuple[list[int], list[Span]]:
    """Token ids of ``text`` (no special tokens added: the template wrote them) and each one's span."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    # A slow tokenizer has no offsets: each token's end is found by decoding the growing prefix.
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    offsets: list[Span] = []
    previous = 0
    for n in range(1, len(ids) + 1):
        end = min(len(text), len(tokenizer.decode(ids[:n], skip_special_tokens=False,
                                                  clean_up_tokenization_spaces=False)))
        offsets.append((previous, max(previous, end)))
        previous = max(previous, end)
    return ids, offsets


def _inside(start: int, end: int, spans: list[Span]) -> bool:
    if start == end:
        return any(a <= start < b for a, b in spans)
    return any(start < b and end > a for a, b in spans)


# -- preview --------------------------------------------------------------------------------------


def segments(tokenized: TokenizedSet, tokenizer: Any, limit: int = 3) -> list[list[tuple[str, str | None]]]:
    """Per example, its text cut where training starts or stops: (piece, "trained" or None)."""
    out = []
    for example in tokenized.examples[:limit]:
        pieces: list[tuple[str, str | None]] = []
        ids, mask = example["input_ids"], example[MASK_KEY]
        start = 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or mask[i] != mask[start]:
                piece = tokenizer.decode(ids[start:i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
                pieces.append((piece, TRAINED if mask[start] else None))
                start = i
        out.append(pieces)
    return out


def preview(
    rows: list[dict[str, Any]], tokenizer: Any, *, max_length: int, train_on: TrainOn, limit: int = 3
) -> list[list[tuple[str, str | None]]]:
    """The first ``limit`` examples exactly as the model will see them, trained text marked.

    For the counts of the whole set, ``tokenize_sft`` the rows (``segments`` then previews that
    result without tokenizing again).
    """
    return segments(tokenize_sft(rows[:limit], tokenizer, max_length=max_length, train_on=train_on), tokenizer, limit)
