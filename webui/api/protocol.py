"""The API's protocol: pydantic models of every request body, the model lists, the errors and the
internal endpoints' answers (OpenAI, Ollama, internal); the streamed and final reply bodies are
written by ``webui.api.encoders``.

Requests are validated here; the serving layer (``webui.api.serving``) turns them into replies and
``webui.api.encoders`` writes the answers. Request models allow unknown fields: tools such as
SillyTavern send many parameters of other servers. Unknown names are ignored and listed back in the
``X-Ignored-Params`` response header.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# -- OpenAI requests (/v1) ---------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text; content blocks are flattened, non-text blocks are refused upstream."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class SamplingFields(BaseModel):
    """The sampling fields shared by chat and text completions (OpenAI's plus this app's)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(
        default=None, description="the loaded model's id, an alias from GET /v1/models, or 'default'"
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=128, description="only 1 is supported")
    stop: str | list[str] | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = Field(default=None, description="token id -> bias in [-100, 100]")
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    user: str | None = None
    # This app's extra body parameters (same names as the UI's Parameters).
    preset: str | None = Field(default=None, description="a generation preset by name")
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    typical_p: float | None = Field(default=None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=5.0)
    samplers: dict[str, Any] | None = Field(default=None, description="extension sampler parameters by name")


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    character: str | None = Field(
        default=None, description="a character by name: its context becomes the system prompt"
    )
    mode: str | None = Field(default=None, description="chat, chat-instruct or instruct")
    persona: str | None = Field(default=None, description="a saved persona by name: who the user is")
    save: bool | None = Field(
        default=None, description="store this chat in the key's history (default: setting api_save_chats)"
    )
    conversation_id: int | None = Field(
        default=None, ge=1, description="continue a saved chat: its stored history is the context"
    )
    logprobs: bool | None = Field(default=None, description="return each token's log-probability")
    top_logprobs: int | None = Field(default=None, ge=0, le=20, description="and the N most likely tokens "
                                                                            "at each position (needs logprobs)")


class CompletionRequest(SamplingFields):
    prompt: str | list[str] = Field(description="the text to continue (a list must hold exactly one string)")
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20, description="return each token's log-probability "
                                                                        "and the N most likely tokens")


# -- OpenAI responses ---------------------------------------------------------------------------


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # prompt tokens read from the KV cache (the model's own prompt cache)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Usage:
        total = prompt_tokens + completion_tokens
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=total,
                   prompt_tokens_details=PromptTokensDetails(cached_tokens=cached_tokens))


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "webui"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class OllamaErrorResponse(BaseModel):
    """Ollama's error body (under /api): the message alone."""

    error: str


# -- Ollama (/api) ------------------------------------------------------------------------

# Ollama option names -> this app's parameter names.
OLLAMA_OPTION_NAMES = {
    "num_predict": "max_new_tokens",
    "repeat_penalty": "repetition_penalty",
    "repeat_last_n": "repetition_penalty_range",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
    "mirostat": "mirostat_mode",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
    "tfs_z": "tfs",
}


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = ""
    images: list[str] | None = None


class OllamaRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = ""
    stream: bool = True
    options: dict[str, Any] | None = None
    keep_alive: str | int | None = None
    format: Any = None


class OllamaChatRequest(OllamaRequest):
    messages: list[OllamaMessage] = Field(default_factory=list)


class OllamaGenerateRequest(OllamaRequest):
    prompt: str = ""
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None


class OllamaShowRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    name: str | None = None


# -- internal (/v1/internal) ----------------------------------------------------------------


class PromptMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        """The text blocks of a block list, joined (other blocks are left out)."""
        if isinstance(self.content, list):
            blocks = [b for b in self.content if isinstance(b, dict) and b.get("type") == "text"]
            return "".join(str(b.get("text", "")) for b in blocks)
        return self.content or ""


class ChatPromptBody(BaseModel):
    """A chat-completions body (model, stream, sampling... are allowed and read as parameters)
    plus this app's ``character``, ``mode``, ``persona`` and ``instruction_template``."""

    model_config = ConfigDict(extra="allow")

    messages: list[PromptMessage] = Field(min_length=1)
    character: str | None = None
    mode: str | None = None
    persona: str | None = None
    instruction_template: str | None = None


class ChatPromptResponse(BaseModel):
    prompt: str


class FileProblem(BaseModel):
    """One file the app skipped because it could not be loaded (``GET /v1/internal/problems``)."""

    kind: str  # character, extension, extension settings, preset, instruction template, model settings, model file
    file: str
    reason: str


# -- helpers --------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """A response id such as ``chatcmpl-<24 hex>``."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix seconds, for ``created``."""
    return int(time.time())


def openai_finish_reason(reason: str | None) -> str:
    """Our finish reasons (stop/length/cancelled/error) in OpenAI's vocabulary."""
    return "length" if reason == "length" else "stop"
