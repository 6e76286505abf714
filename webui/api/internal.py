"""``POST /v1/internal/chat-prompt``: the exact prompt text the model would see for a chat body.
``GET /v1/internal/problems``: the files the app skipped because they could not be loaded.

The body is an OpenAI chat-completions body plus ``character``, ``mode``, ``persona`` (and
``instruction_template``), see ``protocol.ChatPromptBody``; the prompt comes from
``ChatService.prepare_answer``, the function a real turn generates from: every extension hook a turn
runs before generating (state_modifier, chat_input_modifier, input_modifier, history_modifier,
custom_tokenized_length, custom_generate_chat_prompt or bot_prefix_modifier) shapes it.
Same auth and error bodies as /v1.
The body is read by hand, not declared: any body that is not a valid chat body is a 400.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from webui.api import serving
from webui.api.auth import Principal, require_principal
from webui.api.common import ctx_of
from webui.api.errors import APIError
from webui.api.protocol import ChatPromptResponse, FileProblem
from webui.file_checks import refresh_all

router = APIRouter()


@router.post("/v1/internal/chat-prompt", response_model=ChatPromptResponse)
async def chat_prompt(request: Request, principal: Principal = Depends(require_principal)) -> ChatPromptResponse:
    try:
        raw = await request.json()
    except (ValueError, RecursionError):  # RecursionError: nested too deep (the limits middleware stops most)
        raise APIError(400, "The body must be JSON.", code="invalid_json") from None
    return ChatPromptResponse(prompt=serving.chat_prompt(ctx_of(request), raw, principal))


@router.get("/v1/internal/problems", response_model=list[FileProblem])
def problems(request: Request, refresh: bool = False,
             principal: Principal = Depends(require_principal)) -> list[FileProblem]:
    """Each skipped file with its kind and the reason, as the page's Problems list; ``?refresh=true``
    re-reads every source first. On a reachable server, the open API (no key, no account) may read
    the list but not make the server rescan its folders and import extensions: 403."""
    ctx = ctx_of(request)
    if refresh and not principal.keeps_chats:
        raise APIError(403, "Refreshing the problems list needs an API key or an account on a server reachable "
                            "from other machines.", code="refresh_not_allowed", param="refresh")
    found = refresh_all(ctx) if refresh else ctx.problems.all()
    return [FileProblem(**p.as_dict()) for p in found]
