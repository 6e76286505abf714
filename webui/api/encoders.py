"""Wire formats of a reply: OpenAI's JSON bodies and SSE chunks, Ollama's JSON and NDJSON lines.

Each encoder reads a reply's progress (``ReplyProgress``: the text so far, and on the last one
why it ended and the token counts) and writes what the client sees; nothing here generates or
validates. A stream that fails after its headers were sent reports the error in the stream, in
the API's error shape (the status code can no longer change).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from webui.api.errors import error_body, user_error
from webui.api.protocol import Usage, openai_finish_reason
from webui.chat.reply_stream import ReplyProgress
from webui.engine.protocol import TokenLogprob
from webui.errors import StorageError

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
NDJSON = "application/x-ndjson"
Clock = Callable[[], float]


@dataclass(frozen=True)
class ReplyMeta:
    """What every body or chunk of one OpenAI response repeats."""

    id: str
    created: int
    model: str
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    logprobs: bool = False  # the request asked for token log-probabilities


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event (``data: ...`` and a blank line); a str is sent as is (``[DONE]``)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def ndjson(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _usage(p: ReplyProgress) -> dict[str, int]:
    return Usage.of(p.prompt_tokens, p.completion_tokens, p.cached_tokens).model_dump()


def _failure(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, StorageError):  # e.g. the disk is full: the reply was sent but not saved
        return user_error(exc).body()
    return error_body(f"Generation failed: {exc}", "server_error", code="generation_error")


async def _deltas(progress: AsyncIterator[ReplyProgress]) -> AsyncIterator[tuple[str, ReplyProgress]]:
    """(new text, progress) per progress: the text added since the last one ("" when none was
    added, or when the text was rewritten and only its end could be sent). Closes ``progress``."""
    sent = ""
    async with aclosing(progress):
        async for p in progress:
            new = ""
            if p.text.startswith(sent) and len(p.text) > len(sent):
                new, sent = p.text[len(sent):], p.text
            yield new, p


# -- log-probabilities ---------------------------------------------------------------------------


def chat_logprobs(items: list[TokenLogprob]) -> dict[str, Any]:
    """Chat completions' ``logprobs``: ``{"content": [{token, logprob, bytes, top_logprobs}], "refusal"}``."""
    return {"content": [{
        "token": t.token, "logprob": t.logprob, "bytes": list(t.bytes),
        "top_logprobs": [{"token": text, "logprob": lp, "bytes": list(raw)} for text, raw, lp in t.top],
    } for t in items], "refusal": None}


def completion_logprobs(items: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """Text completions' ``logprobs``: parallel lists; ``text_offset`` counts from ``offset``."""
    offsets = []
    for t in items:
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": [t.token for t in items],
        "token_logprobs": [t.logprob for t in items],
        "top_logprobs": [_top_dict(t) for t in items],
        "text_offset": offsets,
    }


def _top_dict(t: TokenLogprob) -> dict[str, float]:
    """The alternatives as {text: logprob}, best first (two tokens with one text: the better)."""
    out: dict[str, float] = {}
    for text, _raw, lp in t.top:
        out.setdefault(text, lp)
    return out


class _LogprobCursor:
    """The log-probabilities not sent yet, read off a progress's growing list."""

    def __init__(self, offset: int = 0) -> None:
        self.sent = 0
        self.offset = offset  # text_offset of the next token

    def take(self, p: ReplyProgress) -> list[TokenLogprob]:
        items = list(p.logprobs[self.sent:])
        self.sent += len(items)
        return items

    def completion(self, p: ReplyProgress) -> dict[str, Any]:
        items = self.take(p)
        out = completion_logprobs(items, self.offset)
        self.offset += sum(len(t.token) for t in items)
        return out


# -- OpenAI chat completions ------------------------------------------------------------------


def chat_chunk(meta: ReplyMeta, delta: dict[str, Any], finish: str | None = None,
               logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    }
    if meta.include_usage:
        data["usage"] = None
    return data


def chat_completion_body(meta: ReplyMeta, last: ReplyProgress, conversation_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": last.text},
            "logprobs": chat_logprobs(list(last.logprobs)) if meta.logprobs else None,
            "finish_reason": openai_finish_reason(last.finish_reason),
        }],
        "usage": _usage(last),
    }
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    return body


async def chat_completion_events(progress: AsyncIterator[ReplyProgress], meta: ReplyMeta) -> AsyncIterator[str]:
    """The SSE body: the role, one chunk per new text, the finish reason, the usage (if asked), ``[DONE]``."""
    yield sse(chat_chunk(meta, {"role": "assistant", "content": ""}))
    cursor = _LogprobCursor()
    try:
        async for new, p in _deltas(progress):
            if new:
                lps = chat_logprobs(cursor.take(p)) if meta.logprobs else None
                yield sse(chat_chunk(meta, {"content": new}, logprobs=lps))
            if p.done:
                rest = cursor.take(p) if meta.logprobs else []
                yield sse(chat_chunk(meta, {}, openai_finish_reason(p.finish_reason),
                                     logprobs=chat_logprobs(rest) if rest else None))
                if meta.include_usage:
                    yield sse({"id": meta.id, "object": "chat.completion.chunk", "created": meta.created,
                               "model": meta.model, "choices": [], "usage": _usage(p)})
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
        log.exception("chat completion stream failed")
        yield sse(_failure(exc))
    yield sse("[DONE]")


# -- OpenAI text completions ------------------------------------------------------------------


def completion_chunk(meta: ReplyMeta, text: str, finish: str | None = None,
                     logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
                            "choices": [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish}]}
    if meta.include_usage:
        data["usage"] = None
    return data


def completion_body(meta: ReplyMeta, last: ReplyProgress, prefix: str = "") -> dict[str, Any]:
    """``prefix``: the prompt, when it is echoed."""
    return {
        "id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
        "choices": [{"text": prefix + last.text, "index": 0,
                     "logprobs": completion_logprobs(list(last.logprobs), len(prefix)) if meta.logprobs else None,
                     "finish_reason": openai_finish_reason(last.finish_reason)}],
        "usage": _usage(last),
    }


async def completion_events(
    progress: AsyncIterator[ReplyProgress], meta: ReplyMeta, prefix: str = ""
) -> AsyncIterator[str]:
    """The SSE body: the echoed prompt (if any), one chunk per new text, the finish reason, the usage, ``[DONE]``."""
    cursor = _LogprobCursor(len(prefix))
    try:
        if prefix:
            yield sse(completion_chunk(meta, prefix))
        async for new, p in _deltas(progress):
            if new:
                yield sse(completion_chunk(meta, new, logprobs=cursor.completion(p) if meta.logprobs else None))
            if p.done:
                rest = cursor.completion(p) if meta.logprobs and len(p.logprobs) > cursor.sent else None
                yield sse(completion_chunk(meta, "", openai_finish_reason(p.finish_reason), logprobs=rest))
                if meta.include_usage:
                    yield sse({"id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
                               "choices": [], "usage": _usage(p)})
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
        log.exception("completion stream failed")
        yield sse(_failure(exc))
    yield sse("[DONE]")


# -- Ollama -------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def ollama_piece(model: str, field: str, text: str) -> dict[str, Any]:
    """A not-final object; ``field`` is "message" (/api/chat) or "response" (/api/generate)."""
    if field == "message":
        message = {"role": "assistant", "content": text}
        return {"model": model, "created_at": now_iso(), "message": message, "done": False}
    return {"model": model, "created_at": now_iso(), "response": text, "done": False}


def ollama_final(
    model: str, started: float, first: float | None, last: ReplyProgress, clock: Clock = time.perf_counter
) -> dict[str, Any]:
    """The last object's fields: why it ended, token counts, durations in nanoseconds (``started``:
    when the request was queued; ``first``: when its first text came, both on ``clock``)."""
    end = clock()
    first = first or end
    return {
        "model": model, "created_at": now_iso(), "done": True,
        "done_reason": "length" if last.finish_reason == "length" else "stop",
        "total_duration": int((end - started) * 1e9), "load_duration": 0,
        "prompt_eval_count": last.prompt_tokens, "prompt_eval_duration": int((first - started) * 1e9),
        "eval_count": last.completion_tokens, "eval_duration": int((end - first) * 1e9),
    }


def ollama_body(model: str, field: str, started: float, first: float | None, last: ReplyProgress,
                clock: Clock = time.perf_counter) -> dict[str, Any]:
    """The whole answer of a ``"stream": false`` request."""
    return {**ollama_piece(model, field, last.text), **ollama_final(model, started, first, last, clock)}


def ollama_loaded(model: str, field: str) -> dict[str, Any]:
    """Ollama's answer to a request with nothing to generate (it loads the model and says so)."""
    return {**ollama_piece(model, field, ""), "done": True, "done_reason": "load"}


async def ollama_lines(progress: AsyncIterator[ReplyProgress], model: str, field: str, started: float,
                       clock: Clock = time.perf_counter) -> AsyncIterator[str]:
    """The NDJSON body: one object per new text, then the final one with ``"done": true``."""
    first: float | None = None
    try:
        async for new, p in _deltas(progress):
            if new:
                first = first or clock()
                yield ndjson(ollama_piece(model, field, new))
            if p.done:
                yield ndjson({**ollama_piece(model, field, ""), **ollama_final(model, started, first, p, clock)})
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in the stream
        log.exception("ollama stream failed")
        yield ndjson({"error": _failure(exc)["error"]["message"]})  # Ollama's error shape
