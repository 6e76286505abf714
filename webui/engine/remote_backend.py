"""A remote OpenAI-compatible server as a backend (vLLM, TGI, llama.cpp server, Ollama, ...).

The spec's path is the server's base URL; options carry the API key, the model name and the
context length. Replies stream over Server-Sent Events with httpx; when the user stops a reply the
stream is closed, which closes the connection, and the server stops generating.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from jinja2.sandbox import ImmutableSandboxedEnvironment

from webui.engine.options import normalize
from webui.engine.protocol import Backend, BackendInfo, Emit, GenerationStats, LoadedModel, ModelInfo, ModelSpec, is_url
from webui.errors import ModelLoadError, UserFacingError
from webui.generation.decode import DecodeHooks
from webui.generation.fallback_template import FALLBACK_CHAT_TEMPLATE
from webui.generation.params import GenerationParams

log = logging.getLogger(__name__)
RENDERED_KEPT = 32
CHARS_PER_TOKEN = 3  # no tokenizer here: a conservative estimate keeps prompts inside the context


class RemoteError(UserFacingError):
    """The remote server refused or broke off a request."""


def api_base(url: str) -> str:
    """'http://host:8000' -> 'http://host:8000/v1'; a URL that already names its /v1 path is kept."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelLoadError(f"{url!r} is not a server URL; give one like http://127.0.0.1:8000/v1.")
    return url if "/v1" in parts.path else f"{url}/v1"


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.read().decode("utf-8", errors="replace")
        data = json.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", body) if isinstance(error, dict) else str(error)
    except (ValueError, httpx.HTTPError):
        message = response.reason_phrase
    return f"HTTP {response.status_code}: {str(message)[:300]}"


def sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Decode the JSON payloads of an SSE stream, up to ``data: [DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        if payload:
            try:
                yield json.loads(payload)
            except ValueError:
                log.warning("remote server sent a malformed SSE line: %.200s", payload)


def sampling_body(params: GenerationParams) -> dict[str, Any]:
    """OpenAI fields, plus the common extensions (top_k, min_p, repetition_penalty) only when set."""
    body: dict[str, Any] = {
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.presence_penalty:
        body["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        body["frequency_penalty"] = params.frequency_penalty
    if params.seed >= 0:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = params.stop[:4]
    if params.top_k:
        body["top_k"] = params.top_k
    if params.min_p:
        body["min_p"] = params.min_p
    if params.repetition_penalty != 1.0:
        body["repetition_penalty"] = params.repetition_penalty
    return body


class RemoteModel(LoadedModel):
    counts_off_worker = True  # count_tokens is arithmetic on the text's length

    def __init__(self, base: str, model: str, name: str, context_length: int, client: httpx.Client) -> None:
        self.base = base
        self.model = model
        # the server applies the model's template; nothing is held here (footprint 0); no tokenizer
        # here either, so token ids (logit_bias) cannot be checked: vocab_size None
        self.info = ModelInfo(name=name, loader=RemoteBackend.info.name, context_length=context_length,
                              has_own_template=True)
        self._client = client
        self._template = ImmutableSandboxedEnvironment().from_string(FALLBACK_CHAT_TEMPLATE)
        self._rendered: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """A ChatML rendering (for token budgets), remembered so that ``generate`` given exactly
        this prompt sends the messages to /chat/completions and the server applies the real template."""
        prompt = self._template.render(messages=messages, add_generation_prompt=True)
        self._rendered[prompt] = [{"role": m["role"], "content": m["content"]} for m in messages]
        self._rendered.move_to_end(prompt)
        while len(self._rendered) > RENDERED_KEPT:
            self._rendered.popitem(last=False)
        return prompt

    def count_tokens(self, text: str) -> int:
        return max(1, -(-len(text) // CHARS_PER_TOKEN))

    def generate(self, prompt: str, params: GenerationParams, emit: Emit,
                 hooks: DecodeHooks | None = None) -> GenerationStats:
        """A prompt this model rendered goes to /chat/completions as its messages (the server
        applies the real template); any other text to /completions. Local logits-processor hooks
        cannot run remotely and are ignored (BackendInfo.extension_processors is False)."""
        messages = self._rendered.get(prompt)
        if messages is not None:
            body = {"model": self.model, "messages": messages, "stream": True, **sampling_body(params)}
            return self._stream("/chat/completions", body, emit, self.count_tokens(prompt), chat=True)
        body = {"model": self.model, "prompt": prompt, "stream": True, **sampling_body(params)}
        return self._stream("/completions", body, emit, self.count_tokens(prompt), chat=False)

    def _stream(
        self, path: str, body: dict[str, Any], emit: Emit, prompt_tokens: int, *, chat: bool
    ) -> GenerationStats:
        stats = GenerationStats(prompt_tokens=prompt_tokens)
        try:
            with self._client.stream("POST", self.base + path, json=body) as response:
                if response.status_code >= 400:
                    raise RemoteError(f"The remote server refused the request ({_server_message(response)}).")
                for chunk in sse_data(response.iter_lines()):
                    if "error" in chunk:
                        raise RemoteError(f"The remote server reported an error: {chunk['error']}")
                    usage = chunk.get("usage") or {}
                    if usage.get("prompt_tokens"):
                        stats.prompt_tokens = int(usage["prompt_tokens"])
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                        if choice.get("finish_reason"):
                            stats.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
                        if text:
                            stats.completion_tokens += 1
                            if not emit(text):
                                return stats  # leaving the with-block closes the connection
        except httpx.HTTPError as exc:
            raise RemoteError(f"Lost the connection to {self.base}: {exc}") from exc
        return stats

    def unload(self) -> None:
        self._client.close()


class RemoteBackend(Backend):
    info = BackendInfo(
        name="remote",
        # what sampling_body sends: the OpenAI fields plus the common extensions
        params=frozenset({
            "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
            "seed",
        }),
        applies_chat_template=True,
    )

    def can_load(self, path: str) -> bool:
        return is_url(path)

    def preflight(self, spec: ModelSpec) -> None:
        api_base(spec.path)
        normalize("remote", spec.options)

    def load(self, spec: ModelSpec) -> RemoteModel:
        base = api_base(spec.path)
        options = normalize("remote", spec.options)
        headers = {"Authorization": f"Bearer {options['remote_api_key']}"} if options["remote_api_key"] else {}
        timeout = httpx.Timeout(float(options["timeout"]), connect=min(10.0, float(options["timeout"])))
        client = httpx.Client(headers=headers, timeout=timeout)
        try:
            served = self._served_models(client, base)
            model = options["remote_model"] or (served[0] if served else "")
            if not model:
                raise ModelLoadError(f"The remote server at {base} lists no models; give the model name.")
            if served and model not in served:
                log.warning("%s is not in the models %s lists (%s); trying it anyway", model, base, ", ".join(served))
        except BaseException:
            client.close()
            raise
        name = spec.display_name or f"{model} @ {urlsplit(base).netloc}"
        return RemoteModel(base, model, name, int(options["context_length"]), client)

    @staticmethod
    def _served_models(client: httpx.Client, base: str) -> list[str]:
        """Ask the server which models it serves; this also checks that it answers and takes the key."""
        try:
            response = client.get(f"{base}/models")
        except httpx.HTTPError as exc:
            raise ModelLoadError(f"Cannot reach the remote server at {base}: {exc}. Is it running?") from exc
        if response.status_code in (401, 403):
            raise ModelLoadError(f"The remote server at {base} refused the API key ({_server_message(response)}).")
        if response.status_code == 404:
            return []  # some servers do not list models; the name must then be given
        if response.status_code >= 400:
            raise ModelLoadError(f"The remote server at {base} answered {_server_message(response)}.")
        try:
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (ValueError, AttributeError, KeyError, TypeError):
            raise ModelLoadError(f"{base}/models did not return an OpenAI-style model list.") from None
