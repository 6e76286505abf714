"""SillyTavern's requests for its three ways of connecting, replayed against ``python app.py`` (the embedded
GGUF on llama.cpp): the bodies as SillyTavern (1.13) builds them (``createTextGenGenerationData`` in
``public/scripts/textgen-settings.js`` with its default settings; the OpenAI body of
``sendOpenAIRequest``; the Ollama body of ``src/endpoints/backends/text-completions.js``), streaming and
not, and a disconnect to stop. Every call answers with the fields SillyTavern reads.

Run without ``--api-key``: SillyTavern's Ollama type sends no key (README, "SillyTavern")."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server_utils import RunningApp, start_app

pytestmark = pytest.mark.slow

PROMPT = "<|im_start|>system\nWrite Aria's next reply.<|im_end|>\n<|im_start|>user\nHi Aria!<|im_end|>\n" \
         "<|im_start|>assistant\nAria:"
STOP = ["\nUser:", "<|im_end|>"]
# Fields of the textgenerationwebui body this server applies (none may be reported as ignored)
HONOURED = ("temperature", "top_p", "typical_p", "min_p", "repetition_penalty", "frequency_penalty",
            "presence_penalty", "top_k", "min_tokens", "add_bos_token", "smoothing_factor", "smoothing_curve",
            "dry_allowed_length", "dry_multiplier", "dry_base", "dry_sequence_breakers", "dry_penalty_last_n",
            "sampler_priority", "stopping_strings", "stop", "truncation_length", "ban_eos_token",
            "skip_special_tokens", "top_a", "tfs", "epsilon_cutoff", "eta_cutoff", "mirostat_mode", "mirostat_tau",
            "mirostat_eta", "custom_token_bans", "banned_strings", "xtc_threshold", "xtc_probability", "nsigma",
            "top_n_sigma", "repetition_penalty_range", "encoder_repetition_penalty", "no_repeat_ngram_size",
            "temperature_last", "do_sample", "guidance_scale", "negative_prompt", "seed", "max_new_tokens",
            "max_tokens", "rep_pen", "rep_pen_range", "typical", "min_length", "repeat_penalty", "repeat_last_n",
            "n_predict", "num_predict", "mirostat", "ignore_eos")


def textgen_body(max_tokens: int = 8, stream: bool = False, **changes: Any) -> dict[str, Any]:
    """What SillyTavern's Text Completion -> Text Generation WebUI sends, with its default settings."""
    body: dict[str, Any] = {
        "prompt": PROMPT, "max_new_tokens": max_tokens, "max_tokens": max_tokens, "temperature": 0.7,
        "top_p": 0.5, "typical_p": 1, "typical": 1, "min_p": 0, "repetition_penalty": 1.2, "frequency_penalty": 0,
        "presence_penalty": 0, "top_k": 40, "skew": 0, "min_length": 0, "min_tokens": 0, "num_beams": 1,
        "length_penalty": 1, "early_stopping": False, "add_bos_token": True, "smoothing_factor": 0,
        "smoothing_curve": 1, "dry_allowed_length": 2, "dry_multiplier": 0, "dry_base": 1.75,
        "dry_sequence_breakers": '["\\n", ":", "\\"", "*"]', "dry_penalty_last_n": 0, "max_tokens_second": 0,
        "sampler_priority": ["repetition_penalty", "presence_penalty", "frequency_penalty", "dry", "top_n_sigma",
                             "temperature", "dynamic_temperature", "quadratic_sampling", "top_k", "top_p",
                             "typical_p", "epsilon_cutoff", "eta_cutoff", "tfs", "top_a", "min_p", "mirostat", "xtc",
                             "encoder_repetition_penalty", "no_repeat_ngram"],
        "stopping_strings": STOP, "stop": STOP, "truncation_length": 2048, "ban_eos_token": False,
        "skip_special_tokens": True, "include_reasoning": True, "top_a": 0, "tfs": 1, "epsilon_cutoff": 0,
        "eta_cutoff": 0, "mirostat_mode": 0, "mirostat_tau": 5, "mirostat_eta": 0.1, "custom_token_bans": "",
        "banned_strings": [], "api_type": "ooba", "api_server": "http://127.0.0.1:5000", "xtc_threshold": 0.1,
        "xtc_probability": 0, "nsigma": 0, "top_n_sigma": 0, "min_keep": 0, "adaptive_target": -0.01,
        "adaptive_decay": 0.9, "stream": stream, "rep_pen": 1.2, "rep_pen_range": 0,
        "repetition_penalty_range": 0, "encoder_repetition_penalty": 1, "no_repeat_ngram_size": 0,
        "penalty_alpha": 0, "temperature_last": True, "do_sample": True, "guidance_scale": 1, "negative_prompt": "",
        "repeat_penalty": 1.2, "repeat_last_n": 0, "n_predict": max_tokens, "num_predict": max_tokens,
        "num_ctx": 2048, "mirostat": 0, "ignore_eos": False, "rep_pen_slope": 1, "seed": 7,
    }
    body.update(changes)
    return body


def sse_events(response: httpx.Response) -> Iterator[Any]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            yield data if data == "[DONE]" else json.loads(data)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedded_gguf: Path) -> Iterator[RunningApp]:
    running = start_app(tmp_path_factory.mktemp("sillytavern") / "data", "--model", str(embedded_gguf))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=180) as c:  # one kept-alive connection, as SillyTavern's server
        yield c


def test_text_generation_webui_type(client: httpx.Client) -> None:
    models = client.get("/v1/models").json()
    assert models["data"][0]["id"]
    info = client.get("/v1/internal/model/info").json()  # the status check reads model_name
    assert info["model_name"] == models["data"][0]["id"] and info["lora_names"] == [] and info["loader"] == "llama.cpp"
    encoded = client.post("/v1/internal/encode", json={"text": "Hello there"}).json()  # token counting
    assert encoded["length"] == len(encoded["tokens"]) > 0

    done = client.post("/v1/completions", json=textgen_body())
    assert done.status_code == 200, done.text
    assert isinstance(done.json()["choices"][0]["text"], str)
    ignored = set(done.headers.get("X-Ignored-Params", "").split(","))
    assert ignored & set(HONOURED) == set(), ignored
    assert {"num_beams", "penalty_alpha", "api_type"} <= ignored  # listed, with the reason in docs/api.md

    with client.stream("POST", "/v1/completions", json=textgen_body(stream=True, logprobs=10)) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    chunks = [e["choices"][0] for e in events[:-1] if e.get("choices")]
    assert chunks[-1]["finish_reason"] in ("stop", "length")
    with_probs = [c for c in chunks if c["text"]]
    assert with_probs and all(isinstance(c["logprobs"]["top_logprobs"][0], dict) for c in with_probs)


def test_every_sampler_field_at_work(client: httpx.Client) -> None:
    """Non-neutral values of what SillyTavern exposes (DRY breakers typed comma-separated) are accepted."""
    body = textgen_body(max_tokens=6, dry_multiplier=0.8, dry_sequence_breakers="\\n,:,*", xtc_probability=0.5,
                        top_a=0.1, tfs=0.95, epsilon_cutoff=3, eta_cutoff=3, smoothing_factor=0.3, nsigma=2,
                        min_tokens=2, custom_token_bans="1,2", banned_strings=["Hello"], dynamic_temperature=True,
                        dynatemp_low=0.5, dynatemp_high=1.5, encoder_repetition_penalty=1.1, no_repeat_ngram_size=3)
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert "Hello" not in response.json()["choices"][0]["text"]
    mirostat = client.post("/v1/completions", json=textgen_body(max_tokens=4, mirostat_mode=2))
    assert mirostat.status_code == 200


@pytest.mark.parametrize("bad", [{"tfs": 5}, {"dry_sequence_breakers": 5}, {"custom_token_bans": "a,b"},
                                 {"mirostat_mode": 7}, {"dry_allowed_length": "many"}])
def test_bad_sampler_values_are_client_errors(client: httpx.Client, bad: dict[str, Any]) -> None:
    for path, body in (("/v1/completions", textgen_body(max_tokens=2, **bad)),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
                                                 **bad})):
        response = client.post(path, json=body)
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["error"]["message"]
    assert client.get("/v1/internal/health").json() == {"status": "ok"}  # the same connection still serves


def test_disconnect_stops_the_generation(client: httpx.Client, app: RunningApp) -> None:
    long = textgen_body(max_tokens=1500, stream=True, ban_eos_token=True, stopping_strings=[], stop=[])
    with httpx.Client(base_url=app.url, timeout=180) as other, other.stream("POST", "/v1/completions",
                                                                          json=long) as response:
        for event in sse_events(response):
            if isinstance(event, dict) and event["choices"] and event["choices"][0]["text"]:
                break  # SillyTavern's Stop button: it aborts the request
    started = time.perf_counter()
    quick = client.post("/v1/completions", json=textgen_body(max_tokens=2))
    assert quick.status_code == 200
    assert time.perf_counter() - started < 60  # not queued behind 1500 tokens


def test_custom_openai_compatible_type(client: httpx.Client) -> None:
    assert client.get("/v1/models").json()["data"]
    body = {"messages": [{"role": "system", "content": "You are Aria."}, {"role": "user", "content": "Hi!"}],
            "model": "default", "temperature": 1, "frequency_penalty": 0, "presence_penalty": 0, "top_p": 1,
            "max_tokens": 8, "stream": False, "logit_bias": {}, "stop": [], "top_k": 0, "seed": 3, "n": 1,
            "logprobs": True, "top_logprobs": 5}
    done = client.post("/v1/chat/completions", json=body).json()
    assert isinstance(done["choices"][0]["message"]["content"], str)
    assert done["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        events = list(sse_events(response))
    deltas = [e["choices"][0]["delta"] for e in events[:-1] if e.get("choices")]
    assert events[-1] == "[DONE]" and any(d.get("content") for d in deltas)


def test_ollama_type(client: httpx.Client) -> None:
    tags = client.get("/api/tags").json()
    name = tags["models"][0]["name"]
    body = {"model": name, "prompt": PROMPT, "stream": False, "keep_alive": -1, "raw": True,
            "options": {"num_predict": 6, "num_ctx": 2048, "stop": STOP, "temperature": 0.7, "repeat_penalty": 1.2,
                        "presence_penalty": 0, "frequency_penalty": 0, "top_k": 40, "top_p": 0.5, "tfs_z": 1,
                        "typical_p": 1, "seed": 7, "repeat_last_n": 0, "min_p": 0}}
    done = client.post("/api/generate", json=body).json()
    assert isinstance(done["response"], str) and done["done"] is True
    with client.stream("POST", "/api/generate", json={**body, "stream": True}) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["done"] is True and all("response" in line for line in lines)
