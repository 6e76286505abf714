"""Offline and private by default: no analytics, no telemetry, no update checks."""

from __future__ import annotations

import os

PRIVATE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_private_defaults() -> None:
    """Set the variables before gradio/huggingface_hub are imported (they read them once)."""
    for key, value in PRIVATE_ENV.items():
        os.environ.setdefault(key, value)
