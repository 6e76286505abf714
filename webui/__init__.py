"""A local web UI for chatting with language models (Gradio + FastAPI)."""

__version__ = "0.1.0"
