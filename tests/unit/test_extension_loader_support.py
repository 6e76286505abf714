"""The Extensions tab says which loaders cannot run an extension, from what each backend declares
(BackendInfo.token_hooks / extension_processors) and the backends its samplers list."""

from __future__ import annotations

from pathlib import Path

from tests.support.extensions import write_ext
from tests.support.ui_context import ui_context
from webui.ui.extensions_tab import loaders_without, status_markdown

REAL = ("llama.cpp", "transformers", "remote")


def test_loaders_without_follow_the_declared_capabilities(tmp_path: Path, fake_backend: None) -> None:
    exts = tmp_path / "data" / "extensions"
    write_ext(exts, "plain", "def input_modifier(string, state):\n    return string\n")
    write_ext(exts, "tok", "def tokenizer_modifier(state, prompt, input_ids, input_embeds):\n"
                           "    return prompt, input_ids, input_embeds\n")
    write_ext(exts, "procs", "def logits_processor_modifier(processor_list, input_ids):\n    return processor_list\n")
    write_ext(exts, "tfsampler", """
        from webui.plugins import SamplerSpec

        def register_samplers():
            return [SamplerSpec(name="tf_only", factory=lambda params: None, backends=("transformers",))]
        """)
    with ui_context(tmp_path / "data") as ctx:
        def real(name: str) -> list[str]:
            return [loader for loader in loaders_without(ctx, name) if loader in REAL]

        assert real("plain") == []
        assert real("tok") == ["llama.cpp", "remote"]  # only transformers declares token_hooks
        assert real("procs") == ["remote"]  # a remote server runs no local logits processors
        ctx.extensions.enable("tfsampler")  # an extension's samplers are registered once it is enabled
        assert real("tfsampler") == ["llama.cpp", "remote"]  # the sampler lists transformers only
        assert "not with" not in status_markdown(ctx, "plain")
        assert "not with llama.cpp, remote" in status_markdown(ctx, "tok")
