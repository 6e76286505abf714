"""``POST /v1/internal/chat-prompt``: the exact prompt text the model would see for a chat body.

The body is an OpenAI chat-completions body plus ``character``, ``mode``, ``persona`` (and
``instruction_template``), see ``protocol.ChatPromptBody``; the prompt comes from
``ChatService.api_prompt``, the same code a real turn uses. Same auth and error bodies as /v1.
The body is read by hand, not declared: any body that is not a valid chat body is a 400.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from webui.api import serving
from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of
from webui.api.errors import APIError
from webui.api.protocol import ChatPromptResponse

router = APIRouter()


@router.post("/v1/internal/chat-prompt", response_model=ChatPromptResponse)
async def chat_prompt(request: Request, principal: Principal = Depends(require_principal)) -> ChatPromptResponse:
    try:
        raw = await request.json()
    except ValueError:
        raise APIError(400, "The body must be JSON.", code="invalid_json") from None
    return ChatPromptResponse(prompt=serving.chat_prompt(ctx_of(request), raw, principal))
