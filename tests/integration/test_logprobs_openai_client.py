"""Token log-probabilities through the official ``openai`` client against ``python app.py``, on both
local backends (the embedded GGUF with llama.cpp, the tiny Llama with transformers), streaming and not.

Greedy replies (temperature 0, no penalties) make the check exact: the chosen token is the most likely
one, so its logprob is the first of its top_logprobs, and every logprob is a log-probability (<= 0)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.support.server_utils import RunningApp, start_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["llama.cpp", "transformers"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path,
           tiny_llama_dir: Path) -> Iterator[OpenAI]:
    model = embedded_gguf if request.param == "llama.cpp" else tiny_llama_dir
    app: RunningApp = start_app(tmp_path_factory.mktemp("logprobs") / "data", "--model", str(model))
    try:
        yield OpenAI(base_url=f"{app.url}/v1", api_key="unused", timeout=120, max_retries=0)
    finally:
        app.stop()


def check_token(token: str, logprob: float, top: list[tuple[str, float]], n: int) -> None:
    assert isinstance(token, str) and logprob <= 0 and math.isfinite(logprob)
    assert 1 <= len(top) <= n
    assert [lp for _, lp in top] == sorted((lp for _, lp in top), reverse=True)
    assert top[0][1] == pytest.approx(logprob, abs=1e-5)  # greedy: the chosen token is the most likely


def test_completions_logprobs(client: OpenAI) -> None:
    done = client.completions.create(model="default", prompt="The capital of France is", max_tokens=6,
                                     temperature=0, logprobs=3)
    choice = done.choices[0]
    lp = choice.logprobs
    assert lp is not None and len(lp.tokens) == done.usage.completion_tokens == len(lp.token_logprobs)
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        check_token(token, logprob, sorted(top.items(), key=lambda kv: -kv[1]), 3)

    chunks = list(client.completions.create(model="default", prompt="The capital of France is", max_tokens=6,
                                            temperature=0, logprobs=3, stream=True))
    streamed = [c.choices[0] for c in chunks if c.choices and c.choices[0].logprobs is not None]
    tokens = [t for c in streamed for t in c.logprobs.tokens]
    assert tokens and "".join(tokens) == "".join(c.choices[0].text for c in chunks if c.choices)
    offsets = [o for c in streamed for o in c.logprobs.text_offset]
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]


def test_chat_logprobs(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "Name a colour."}]
    done = client.chat.completions.create(model="default", messages=messages, max_tokens=6, temperature=0,
                                          logprobs=True, top_logprobs=3)
    choice = done.choices[0]
    content = choice.logprobs.content
    assert content and len(content) == done.usage.completion_tokens
    assert "".join(t.token for t in content).strip() == choice.message.content.strip()
    for item in content:
        assert item.bytes == list(item.token.encode("utf-8")) or item.bytes  # raw bytes of a split character
        check_token(item.token, item.logprob, [(t.token, t.logprob) for t in item.top_logprobs], 3)

    chunks = list(client.chat.completions.create(model="default", messages=messages, max_tokens=6, temperature=0,
                                                 logprobs=True, top_logprobs=3, stream=True))
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # (not compared with the first reply: a cached prompt prefix may round a near tie the other way)
    assert streamed and "".join(t.token for t in streamed).strip() == text.strip()
    for item in streamed:
        check_token(item.token, item.logprob, [(t.token, t.logprob) for t in item.top_logprobs], 3)

    plain = client.chat.completions.create(model="default", messages=messages, max_tokens=2, temperature=0)
    assert plain.choices[0].logprobs is None  # not asked: not computed


def test_logprobs_errors_are_400(client: OpenAI) -> None:
    import openai

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="default", messages=[{"role": "user", "content": "x"}], max_tokens=1,
                                       top_logprobs=2)
