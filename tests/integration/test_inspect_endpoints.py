"""/v1/internal/encode, decode, token-count and logits over HTTP against ``python app.py``, on the
tiny Llama (transformers) and on the embedded GGUF (llama.cpp), checked against the model computed
directly in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.server_utils import RunningApp, start_app

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def hf_app(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Iterator[RunningApp]:
    app = start_app(tmp_path_factory.mktemp("inspect-hf") / "data", "--model", str(tiny_llama_dir))
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def gguf_app(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path) -> Iterator[RunningApp]:
    app = start_app(tmp_path_factory.mktemp("inspect-gguf") / "data", "--model", str(embedded_gguf))
    try:
        yield app
    finally:
        app.stop()


def post(app: RunningApp, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{app.url}/v1/internal/{path}", json=body, timeout=120)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def hf_direct(tiny_llama_dir: Path, text: str) -> tuple[list[int], np.ndarray]:
    """The tiny Llama's ids for ``text`` and its next-token logits, computed here with transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    return ids, logits


def gguf_direct(embedded_gguf: Path, text: str) -> tuple[list[int], np.ndarray]:
    """The GGUF's ids for ``text`` and its next-token logits, computed here with llama-cpp-python."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(embedded_gguf), n_ctx=512, logits_all=True, verbose=False)
    try:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.eval(ids)
        return list(ids), np.array(llm.scores[len(ids) - 1], dtype=np.float32)
    finally:
        llm.close()


def check_token_endpoints(app: RunningApp, expected_ids: list[int]) -> None:
    encoded = post(app, "encode", {"text": PROMPT})
    assert encoded.status_code == 200, encoded.text
    assert encoded.json() == {"tokens": expected_ids, "length": len(expected_ids)}
    # SillyTavern reads data.length / data.tokens; a field this server does not know is named back
    sent = post(app, "encode", {"text": PROMPT, "made_up_field": 1})
    assert sent.json()["length"] == len(expected_ids)
    assert sent.headers["X-Ignored-Params"] == "made_up_field"
    assert post(app, "token-count", {"text": PROMPT}).json() == {"length": len(expected_ids)}
    assert post(app, "decode", {"tokens": expected_ids}).json() == {"text": PROMPT}
    pieces = [post(app, "decode", {"tokens": [i]}).json()["text"] for i in expected_ids]  # SillyTavern: one by one
    assert "".join(pieces) == PROMPT
    bad = post(app, "decode", {"tokens": [10**9]})
    assert bad.status_code == 400 and "Token ids must be in 0.." in bad.json()["error"]["message"]
    assert post(app, "decode", {"tokens": "abc"}).status_code == 400
    assert post(app, "logits", {"prompt": "", "top_logits": 5}).status_code == 400  # nothing to predict from
    too_long = post(app, "logits", {"prompt": "word " * 10000, "top_logits": 5})
    assert too_long.status_code == 400 and "more than the model's context" in too_long.json()["error"]["message"]


def check_logits(app: RunningApp, logits: np.ndarray) -> None:
    raw = post(app, "logits", {"prompt": PROMPT, "top_logits": 10})
    assert raw.status_code == 200, raw.text
    got = list(raw.json().values())
    expected = np.sort(softmax(logits))[::-1][:10]
    assert len(got) == 10 and sum(got) <= 1.0 + 1e-6
    assert got == sorted(got, reverse=True)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-6)

    warm = post(app, "logits", {"prompt": PROMPT, "top_logits": 10, "use_samplers": True,
                                "temperature": 0.5, "top_p": 1.0})
    warm_probs = list(warm.json().values())
    np.testing.assert_allclose(warm_probs, np.sort(softmax(logits, 0.5))[::-1][:10], rtol=2e-3, atol=1e-6)
    assert not np.allclose(warm_probs, got, rtol=1e-3)  # the samplers changed the distribution

    top3 = post(app, "logits", {"prompt": PROMPT, "use_samplers": True, "temperature": 1.0, "top_p": 1.0,
                                "top_k": 3}).json()
    assert len(top3) == 3 and abs(sum(top3.values()) - 1.0) < 1e-4  # only the three kept share the mass
    greedy = post(app, "logits", {"prompt": PROMPT, "use_samplers": True, "temperature": 0}).json()
    assert list(greedy.values()) == [1.0] and list(greedy) == list(raw.json())[:1]
    refused = post(app, "logits", {"prompt": PROMPT, "use_samplers": True, "temperature": 9})
    assert refused.status_code == 400  # a bad sampler value is the client's error, not a 500


def test_transformers_inspect_endpoints(hf_app: RunningApp, tiny_llama_dir: Path) -> None:
    ids, logits = hf_direct(tiny_llama_dir, PROMPT)
    check_token_endpoints(hf_app, ids)
    check_logits(hf_app, logits)


def test_llamacpp_inspect_endpoints(gguf_app: RunningApp, embedded_gguf: Path) -> None:
    ids, logits = gguf_direct(embedded_gguf, PROMPT)
    check_token_endpoints(gguf_app, ids)
    check_logits(gguf_app, logits)
    assert next(iter(post(gguf_app, "logits", {"prompt": PROMPT, "top_logits": 1}).json())) == " Paris"


def test_llamacpp_inspect_leaves_the_prompt_cache_usable(gguf_app: RunningApp) -> None:
    """generate -> inspect (the same prompt, a longer one, another one) -> generate: the same greedy text."""
    body = {"prompt": PROMPT, "max_tokens": 12, "temperature": 0}

    def complete() -> str:
        reply = httpx.post(f"{gguf_app.url}/v1/completions", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        return reply.json()["choices"][0]["text"]

    first = complete()
    assert first.strip()
    for other in (PROMPT, PROMPT + " Paris, and the capital of Spain is", "Once upon a time"):
        assert post(gguf_app, "logits", {"prompt": other, "top_logits": 3}).status_code == 200
        assert complete() == first, other
