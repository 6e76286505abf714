"""The API's wire formats (webui.api.encoders), from a scripted reply progress to the exact text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import anyio

from webui.api import encoders
from webui.api.encoders import ReplyMeta
from webui.chat.reply_stream import ReplyProgress

META = ReplyMeta("chatcmpl-1", 1700000000, "tiny")
DONE = ReplyProgress("Hello there", done=True, finish_reason="length", prompt_tokens=7, completion_tokens=3)
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "prompt_tokens_details": {"cached_tokens": 0}}


async def scripted(items: Iterable[ReplyProgress | Exception]) -> AsyncIterator[ReplyProgress]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


def read(body: AsyncIterator[str]) -> list[str]:
    async def main() -> list[str]:
        return [part async for part in body]

    return anyio.run(main)


def events(body: AsyncIterator[str]) -> list[dict | str]:
    """The SSE body's payloads, each checked to be one ``data:`` line and a blank line."""
    out: list[dict | str] = []
    for part in read(body):
        assert part.startswith("data: ") and part.endswith("\n\n") and part.count("\n") == 2, part
        data = part[len("data: "):-2]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_chat_stream_sends_role_deltas_finish_usage_and_done() -> None:
    progress = [ReplyProgress(t) for t in ("Hel", "Hello", "Hello", "Hello there")] + [DONE]
    meta = ReplyMeta("chatcmpl-1", 1700000000, "tiny", include_usage=True)
    out = events(encoders.chat_completion_events(scripted(progress), meta))
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "tiny"}
    deltas = [e["choices"][0]["delta"] for e in out[:-2]]  # type: ignore[index]
    assert deltas == [{"role": "assistant", "content": ""}, *({"content": t} for t in ("Hel", "lo", " there")), {}]
    assert all({k: e[k] for k in head} == head and e["usage"] is None for e in out[:-2])  # type: ignore[index]
    assert [e["choices"][0]["finish_reason"] for e in out[:-2]] == [None, None, None, None, "length"]  # type: ignore[index]
    assert out[-2] == {**head, "choices": [], "usage": USAGE}
    assert out[-1] == "[DONE]"


def test_chat_stream_without_usage_has_no_usage_field_and_maps_finish_reasons() -> None:
    cancelled = ReplyProgress("Hi", done=True, finish_reason="cancelled")
    out = events(encoders.chat_completion_events(scripted([ReplyProgress("Hi"), cancelled]), META))
    assert all("usage" not in e for e in out[:-1])
    assert out[-2]["choices"][0]["finish_reason"] == "stop" and out[-1] == "[DONE]"  # type: ignore[index]


def test_a_failure_after_the_headers_is_reported_in_the_stream() -> None:
    out = events(encoders.chat_completion_events(scripted([ReplyProgress("Hi"), RuntimeError("worker died")]), META))
    assert out[-2] == {"error": {"message": "Generation failed: worker died", "type": "server_error", "param": None,
                                 "code": "generation_error"}}
    assert out[-1] == "[DONE]" and out[1]["choices"][0]["delta"] == {"content": "Hi"}  # type: ignore[index]


def test_chat_completion_body() -> None:
    body = encoders.chat_completion_body(META, DONE, conversation_id=12)
    assert body == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "logprobs": None,
                     "finish_reason": "length"}],
        "usage": USAGE,
        "conversation_id": 12,
    }
    assert "conversation_id" not in encoders.chat_completion_body(META, DONE)


def test_text_completion_stream_echoes_the_prompt_then_deltas() -> None:
    meta = ReplyMeta("cmpl-1", 1, "tiny", include_usage=True)
    out = events(encoders.completion_events(scripted([ReplyProgress("Hello"), DONE]), meta, prefix="Say: "))
    texts = [(e["choices"][0]["text"], e["choices"][0]["finish_reason"]) for e in out[:-2]]  # type: ignore[index]
    assert texts == [("Say: ", None), ("Hello", None), (" there", None), ("", "length")]
    assert out[0]["object"] == "text_completion" and out[0]["usage"] is None  # type: ignore[index]
    assert out[-2]["choices"] == [] and out[-2]["usage"]["total_tokens"] == 10  # type: ignore[index]
    body = encoders.completion_body(meta, DONE, prefix="Say: ")
    assert body["choices"] == [{"text": "Say: Hello there", "index": 0, "logprobs": None, "finish_reason": "length"}]
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
                             "prompt_tokens_details": {"cached_tokens": 0}}


def test_usage_says_how_many_prompt_tokens_came_from_the_cache() -> None:
    done = ReplyProgress("Hi", done=True, finish_reason="stop", prompt_tokens=50, completion_tokens=2, cached_tokens=42)
    body = encoders.completion_body(ReplyMeta("cmpl-2", 1, "tiny"), done)
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 42}


def test_ollama_lines_are_ndjson_with_a_final_summary() -> None:
    ticks = iter([10.5, 12.0])  # first text at 10.5 s, end at 12.0 s; queued at 10.0 s
    lines = read(encoders.ollama_lines(scripted([ReplyProgress("Hello"), DONE]), "tiny", "message", 10.0,
                                       clock=lambda: next(ticks)))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    objs = [json.loads(line) for line in lines]
    assert [o["message"] for o in objs] == [{"role": "assistant", "content": c} for c in ("Hello", " there", "")]
    assert [o["done"] for o in objs] == [False, False, True] and all(o["model"] == "tiny" for o in objs)
    final = objs[-1]
    assert final["done_reason"] == "length" and final["load_duration"] == 0
    assert (final["prompt_eval_count"], final["eval_count"]) == (7, 3)
    durations = (final["total_duration"], final["prompt_eval_duration"], final["eval_duration"])
    assert durations == (2_000_000_000, 500_000_000, 1_500_000_000)


def test_ollama_generate_body_loaded_answer_and_errors() -> None:
    body = encoders.ollama_body("tiny", "response", 1.0, None, ReplyProgress("x", done=True, finish_reason="stop"),
                                clock=lambda: 3.0)
    assert body["response"] == "x" and body["done"] and body["done_reason"] == "stop"
    assert body["eval_duration"] == 0 and body["prompt_eval_duration"] == 2_000_000_000  # no text came: all prompt time
    loaded = encoders.ollama_loaded("tiny", "message")
    assert loaded.pop("created_at").endswith("Z")
    assert loaded == {"model": "tiny", "message": {"role": "assistant", "content": ""}, "done": True,
                      "done_reason": "load"}
    lines = read(encoders.ollama_lines(scripted([RuntimeError("boom")]), "tiny", "response", 0.0))
    assert [json.loads(line) for line in lines] == [{"error": "Generation failed: boom"}]  # Ollama's shape


def test_encoders_close_the_progress_they_read() -> None:
    closed: list[bool] = []

    async def progress() -> AsyncIterator[ReplyProgress]:
        try:
            yield ReplyProgress("a")
            yield ReplyProgress("ab")
        finally:
            closed.append(True)

    async def main() -> None:
        body = encoders.chat_completion_events(progress(), META)
        assert (await body.__anext__()).startswith("data: ")
        assert '"a"' in await body.__anext__()
        await body.aclose()  # the server drops the response mid-stream

    anyio.run(main)
    assert closed == [True]
