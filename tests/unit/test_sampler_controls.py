"""The Parameters tab's sampler controls: one per user-settable field, each value round-trips through its
control and a saved preset, bad text is one clear message, and ignored fields carry a note."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
import yaml

from tests.support.ui_context import param_values, ui_context
from webui.context import AppContext
from webui.generation.params import GenerationParams
from webui.generation.presets import NEUTRAL
from webui.ui import parameters_tab as params
from webui.ui.sampler_controls import CONTROLS, FIELD_NAMES, GROUPS, bounds, component, info_updates

# A value other than the default for every control (within the field's constraints).
TUNED = GenerationParams(
    max_new_tokens=99, truncation_length=1024, seed=7, ban_eos_token=True, stop=["END", "###"],
    temperature=0.4, top_p=0.8, top_k=30, min_p=0.05, typical_p=0.9,
    repetition_penalty=1.1, repetition_penalty_range=256, presence_penalty=0.3, frequency_penalty=-0.2,
    no_repeat_ngram_size=3,
    dynamic_temperature=True, dynatemp_low=0.5, dynatemp_high=1.5, dynatemp_exponent=2.0, smoothing_factor=0.3,
    smoothing_curve=2.0, temperature_last=True,
    top_n_sigma=1.5, top_a=0.2, tfs=0.95, epsilon_cutoff=3.0, eta_cutoff=4.0,
    dry_multiplier=0.8, dry_allowed_length=3, dry_base=2.0, dry_penalty_last_n=512,
    dry_sequence_breakers=["\n", '"', "and, or"],
    xtc_threshold=0.2, xtc_probability=0.5,
    mirostat_mode=2, mirostat_tau=4.0, mirostat_eta=0.2,
    guidance_scale=1.5, negative_prompt="Be rude.\nBe brief.",
    custom_token_bans=[13, 198], banned_strings=["delve", "tapestry"], logit_bias={42: -5.5, 7: 3.0}, min_tokens=5,
    do_sample=False, encoder_repetition_penalty=1.2, add_bos_token=False, skip_special_tokens=False,
    sampler_priority=["min_p", "temperature"],
)


@pytest.fixture
def ui_ctx(tmp_path: Path, fake_backend: None) -> Iterator[AppContext]:
    with ui_context(tmp_path / "data") as ctx:
        yield ctx


def test_every_user_setting_has_one_control() -> None:
    # samplers: the extension sliders (extension_params); logprobs: an API output option, not a sampler
    assert sorted(FIELD_NAMES) == sorted(set(GenerationParams.model_fields) - {"samplers", "logprobs"})
    assert len(set(FIELD_NAMES)) == len(FIELD_NAMES) == sum(len(g.controls) for g in GROUPS)  # each laid out once
    assert FIELD_NAMES[:2] == ["max_new_tokens", "temperature"]  # the tab's original order comes first
    changed = {k for k, v in TUNED.model_dump().items() if v != GenerationParams().model_dump()[k]}
    assert changed == set(FIELD_NAMES)  # TUNED exercises every control


def test_controls_span_the_fields_constraints() -> None:
    with gr.Blocks():
        for control in CONTROLS:
            value = params.from_params(GenerationParams())[FIELD_NAMES.index(control.name)]
            comp = component(control, value)
            low, high, _ = bounds(control.name)
            if isinstance(comp, gr.Slider):
                assert (low, high) != (None, None) and comp.maximum == high, control.name
                assert comp.minimum <= getattr(TUNED, control.name) <= comp.maximum
    assert bounds("top_p") == (0.0, 1.0, True) and bounds("seed") == (None, None, False)


def test_values_round_trip_through_the_controls_and_a_preset(ui_ctx: AppContext) -> None:
    shown = params.from_params(TUNED)
    by_name = dict(zip(FIELD_NAMES, shown))
    assert by_name["dry_sequence_breakers"] == '"\\n", "\\"", "and, or"'  # text-generation-webui's form
    assert by_name["custom_token_bans"] == "13, 198" and by_name["banned_strings"] == "delve\ntapestry"
    assert by_name["logit_bias"] == "42: -5.5\n7: 3"
    assert params.to_params(shown) == TUNED

    params.save(ui_ctx, "Everything", *shown)
    path = ui_ctx.presets.user_dir / "Everything.yaml"  # type: ignore[union-attr]
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert stored["dry_multiplier"] == 0.8 and stored["banned_strings"] == ["delve", "tapestry"]
    assert stored["logit_bias"] == {42: -5.5, 7: 3.0} and "top_k" in stored
    assert params.to_params(params.load(ui_ctx, "Everything")) == TUNED

    neutral = params.from_params(GenerationParams(**NEUTRAL))
    params.save(ui_ctx, "Neutral", *neutral)
    assert yaml.safe_load((ui_ctx.presets.user_dir / "Neutral.yaml").read_text()) == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(("field", "text", "message"), [
    ("logit_bias", "198 -5", "Logit bias: write one token_id: value per line"),
    ("logit_bias", "198: lots", "logit_bias"),
    ("custom_token_bans", "13, x", "token ids separated by commas"),
    ("xtc_probability", 1.5, "xtc_probability"),
])
def test_bad_values_are_one_message_and_save_nothing(ui_ctx: AppContext, field: str, text: object,
                                                     message: str) -> None:
    values = list(param_values())
    values[FIELD_NAMES.index(field)] = text
    with pytest.raises(gr.Error, match=message):
        params.save(ui_ctx, "Broken", *values)
    assert "Broken" not in ui_ctx.presets.names()  # type: ignore[union-attr]


def test_ignored_fields_carry_a_note(ui_ctx: AppContext) -> None:
    notes = dict(zip(FIELD_NAMES, (u["info"] for u in info_updates("llama.cpp"))))
    assert notes["guidance_scale"].endswith("⚠ Ignored by llama.cpp (classifier-free guidance needs the model run "
                                            "on the negative prompt beside the prompt).")
    assert "Ignored by llama.cpp" in notes["negative_prompt"] and "Ignored" not in (notes["dry_multiplier"] or "")
    transformers = dict(zip(FIELD_NAMES, (u["info"] for u in info_updates("transformers"))))
    assert "Ignored by transformers" in transformers["banned_strings"]
    assert "Ignored" not in transformers["xtc_threshold"]
    assert all("Ignored" not in (u["info"] or "") for u in info_updates(None))
    assert len(params.control_notes(ui_ctx)) == len(FIELD_NAMES)  # the fake backend: whatever it ignores
