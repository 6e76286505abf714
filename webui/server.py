"""One FastAPI app on one port: the API routers and the Gradio UI mounted at /."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from webui.context import AppContext
from webui.ui.app import TITLE, build_ui, offline_theme


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(title=TITLE, docs_url="/docs", redoc_url=None)
    app.state.ctx = ctx

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": ctx.engine.model_name}

    blocks = build_ui(ctx)
    return gr.mount_gradio_app(app, blocks, path="", theme=offline_theme(), footer_links=["api"])
