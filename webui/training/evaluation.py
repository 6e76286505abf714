"""What a finished run shows: base vs adapter answers on held-out prompts, and, for preference
data, the perplexity of the chosen answers (the SFT perplexity is the Trainer's own eval loss)."""

from __future__ import annotations

import math
from typing import Any

from webui.training.render import render, tokenize_chat

TEXT_PROMPT_CHARS = 120  # a text row's sample prompt: its beginning


def sample_prompt(row: dict[str, Any], tokenizer: Any) -> tuple[str, str] | None:
    """(what to show, what the model is given) for one held-out row; None when it has no prompt."""
    if "text" in row and "messages" not in row:
        head = row["text"][:TEXT_PROMPT_CHARS]
        return (head, head) if head.strip() else None
    messages = row.get("prompt") if "chosen" in row else row.get("messages")
    if not messages:
        return None
    if "chosen" not in row:  # a conversation: everything before its last assistant reply
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
        messages = messages[:last]
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        return None
    return users[-1]["content"], render(messages, tokenizer, add_generation_prompt=True)


def greedy(model: Any, tokenizer: Any, text: str, max_new_tokens: int) -> str:
    import torch

    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, use_cache=True)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def samples(model: Any, tokenizer: Any, rows: list[dict[str, Any]], *, limit: int,
            max_new_tokens: int) -> list[dict[str, str]]:
    """Up to ``limit`` held-out prompts, each answered greedily without and with the adapter."""
    out: list[dict[str, str]] = []
    model.eval()
    for row in rows:
        if len(out) >= limit:
            break
        prompt = sample_prompt(row, tokenizer)
        if prompt is None:
            continue
        shown, text = prompt
        with model.disable_adapter():
            base = greedy(model, tokenizer, text, max_new_tokens)
        out.append({"prompt": shown, "base": base, "adapter": greedy(model, tokenizer, text, max_new_tokens)})
    return out


def chosen_perplexity(model: Any, tokenizer: Any, rows: list[dict[str, Any]], *, max_length: int) -> float | None:
    """exp(mean loss) over the chosen answers' tokens of preference rows, given their prompts."""
    import torch

    total, count = 0.0, 0
    model.eval()
    for row in rows:
        conversation = [*row["prompt"], {"role": "assistant", "content": _text(row["chosen"])}]
        ids, mask = tokenize_chat(conversation, tokenizer, train_on="assistant")
        ids, mask = ids[:max_length], mask[:max_length]
        if sum(mask[1:]) == 0:
            continue
        labels = [t if m else -100 for t, m in zip(ids, mask, strict=True)]
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids], device=model.device),
                         labels=torch.tensor([labels], device=model.device)).loss
        n = sum(1 for m in mask[1:] if m)
        total += float(loss) * n
        count += n
    return math.exp(total / count) if count else None


def _text(answer: Any) -> str:
    """A preference answer as text: a string, or TRL's one-message list."""
    if isinstance(answer, list):
        return "".join(str(m.get("content", "")) for m in answer)
    return str(answer)

