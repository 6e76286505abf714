"""``POST /v1/internal/chat-prompt``: the exact prompt text the model would see for a chat body.

The body is an OpenAI chat-completions body plus ``character``, ``mode``, ``persona`` (and
``instruction_template``); the prompt comes from ``ChatService.api_prompt``, the same code a
real turn uses.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webui.errors import UserFacingError
from webui.generation.presets import resolve_params

router = APIRouter()


class PromptMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(b.get("text", "")) for b in self.content if isinstance(b, dict) and b.get("type") == "text")
        return self.content or ""


class ChatPromptBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # the rest of a chat-completions body (model, stream, sampling...)

    messages: list[PromptMessage] = Field(min_length=1)
    character: str | None = None
    mode: str | None = None
    persona: str | None = None
    instruction_template: str | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, status_code=status)


@router.post("/v1/internal/chat-prompt")
async def chat_prompt(request: Request) -> Any:
    ctx = request.app.state.ctx
    try:
        raw = await request.json()
    except ValueError:
        return _error(400, "The body must be JSON.")
    if not isinstance(raw, dict):
        return _error(400, "The body must be a JSON object.")
    try:
        body = ChatPromptBody.model_validate(raw)
    except ValidationError as exc:
        return _error(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    if body.character is not None and not ctx.characters.has(body.character):
        return _error(404, f"No character named {body.character!r}. Available: {', '.join(ctx.characters.names())}.")
    auth = getattr(request.app.state, "authenticator", None)  # accounts / API keys, when configured
    user_id = auth.authenticate(request.headers.get("authorization")).user_id if auth is not None else None
    try:
        params = resolve_params(raw, ctx.presets)
        result = ctx.chat.api_prompt(
            [(m.role, m.text()) for m in body.messages],
            params,
            character=body.character,
            mode=body.mode,
            persona=body.persona,
            template=body.instruction_template,
            user_id=user_id,
        )
    except UserFacingError as exc:
        return _error(400, str(exc))
    return {"prompt": result.prompt}
