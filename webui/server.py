"""One FastAPI app on one port: the API routers and the Gradio UI mounted at /."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from webui.api import internal, internal_inspect, internal_model, lora_routes, ollama, openai_routes
from webui.api.auth import Authenticator, load_accounts, load_api_keys
from webui.api.errors import install_catch_all, install_error_handlers
from webui.api.limits import install_request_limits
from webui.browser_identity import BrowserIdentityMiddleware
from webui.context import AppContext
from webui.ui import live_reply
from webui.ui.app import BASE_CSS, TITLE, build_ui, offline_theme
from webui.ui.extensions_tab import extension_assets
from webui.ui.quiet_queue import quiet_when_idle


def create_api_app(ctx: AppContext) -> FastAPI:
    """The API half of the app: auth, error bodies, the /v1 and /api routers, /healthz, the browser
    identities (reachable without accounts) and the request limits, outermost. ``create_app`` adds the
    UI; tests serve this alone to reach the real API assembly without building the page."""
    app = FastAPI(title=TITLE, docs_url="/docs", redoc_url=None)
    app.state.ctx = ctx
    # Accounts and API keys (raises UserFacingError on a bad --auth-file); the API routers come
    # before the Gradio mount so /v1 and /api take precedence over the UI's catch-all route.
    app.state.accounts = accounts = load_accounts(ctx.settings)
    app.state.authenticator = Authenticator(accounts, load_api_keys(ctx.settings), ctx.repo.ensure_user,
                                            reachable=ctx.settings.reachable)
    install_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(ollama.router)
    app.add_middleware(ollama.JSONBodyMiddleware)
    app.include_router(internal.router)
    app.include_router(internal_inspect.router)  # encode, decode, token-count, logits
    app.include_router(lora_routes.router)  # /v1/internal/lora/list, load, unload
    app.include_router(internal_model.router)  # health, model/info|list|load|unload, stop-generation

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": ctx.engine.model_name}

    # after every /v1 and /api router
    install_catch_all(app, [openai_routes.router, ollama.router, internal.router, internal_inspect.router,
                            lora_routes.router, internal_model.router])
    if ctx.browsers is not None:  # reachable without accounts: each browser its own history (webui.browser_identity)
        app.add_middleware(BrowserIdentityMiddleware, identities=ctx.browsers)
    install_request_limits(app, ctx.settings.max_request_mb)  # outermost: after every other middleware
    return app


def create_app(ctx: AppContext) -> FastAPI:
    """The whole app: ``create_api_app`` plus the live reply stream and the Gradio UI mounted at /."""
    app = create_api_app(ctx)
    accounts = app.state.accounts
    browsers = ctx.browsers
    replies = live_reply.LiveReplies()  # the chat's streamed replies: a route here, the turns in the UI
    identify = (lambda request: browsers.user_name(request.cookies)) if browsers is not None else None
    app.include_router(live_reply.router(replies, identify))
    ctx.extensions.check_all()  # enabled extensions are imported now, the others read from their files; problems listed
    blocks = build_ui(ctx, replies)
    quiet_when_idle(blocks)  # an idle app costs ~0.5% of a core instead of ~5% (webui.ui.quiet_queue)
    login = app.state.authenticator.check_login if accounts else None
    assets = extension_assets(ctx)  # custom_css / custom_js of the extensions enabled at start-up
    assets["css"] = BASE_CSS + assets.get("css", "")
    return gr.mount_gradio_app(
        app, blocks, path="", theme=offline_theme(), footer_links=["api"], auth=login,
        allowed_paths=[str(ctx.settings.data_dir / "avatars")],  # character and persona pictures
        auth_message="Log in with the account the server's owner gave you." if accounts else None,
        max_file_size=ctx.settings.max_upload_mb * 2**20,  # uploads skip --max-request-mb (webui.api.limits)
        **assets,
    )
