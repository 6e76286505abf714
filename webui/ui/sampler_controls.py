"""The Parameters tab's controls, one per user-settable GenerationParams field, grouped as
text-generation-webui groups them (curve shape, cutoffs, repetition suppression, ...).

Each control is described once (``Control``): its component, the text form of a list field and back,
its range (read from GenerationParams' pydantic constraints, so a value the model accepts always fits
the control) and its help text. ``info_updates`` appends a note to the controls the loaded backend
ignores (``webui.generation.support``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import annotated_types as at
import gradio as gr
import yaml

from webui.bounded_parse import load_yaml
from webui.generation.params import GenerationParams
from webui.generation.presets import PresetError
from webui.generation.support import BACKEND_LIMITS, unsupported

# kinds: slider | number | check | lines (a string list, one per line) | ids (token ids, comma-separated)
# | quoted (text-generation-webui's "a", "b" list form) | text | bias (``token_id: value`` lines)
TEXT_KINDS = frozenset({"lines", "ids", "quoted", "text", "bias"})


@dataclass(frozen=True)
class Control:
    name: str
    label: str = ""
    info: str = ""
    kind: str = "slider"
    step: float = 0.01
    lines: int = 1
    placeholder: str | None = None

    @property
    def integer(self) -> bool:
        return GenerationParams.model_fields[self.name].annotation is int


@dataclass(frozen=True)
class Group:
    title: str
    key: str  # elem_id suffix: param-group-<key>
    controls: tuple[Control, ...]
    folded: bool = True


PRIORITY_NAMES = ("top_n_sigma, top_k, top_p, min_p, typical_p, tfs, top_a, epsilon_cutoff, eta_cutoff, xtc, "
                  "temperature, dynamic_temperature, quadratic_sampling")

GROUPS: tuple[Group, ...] = (
    Group("Length and stopping", "length", folded=False, controls=(
        Control("max_new_tokens", step=1, info="The most tokens one reply may have."),
        Control("truncation_length", "truncation_length (0 = model context)", kind="number",
                info="The prompt is cut from the left to this many tokens."),
        Control("seed", "seed (-1 = random)", kind="number"),
        Control("ban_eos_token", "ban_eos_token", kind="check", info="The reply never ends on the end-of-text token."),
        Control("stop", "custom stop strings (one per line)", kind="lines", lines=2),
    )),
    Group("Curve cutoff", "cutoff", folded=False, controls=(
        Control("temperature", info="0 = always the most likely token."),
        Control("top_p"),
        Control("top_k", "top_k (0 = off)", kind="number"),
        Control("min_p", info="Drop tokens below min_p times the top token's probability."),
        Control("typical_p"),
    )),
    Group("Repetition suppression", "repetition", folded=False, controls=(
        Control("repetition_penalty"),
        Control("repetition_penalty_range", "repetition_penalty_range (0 = all)", kind="number"),
        Control("presence_penalty"),
        Control("frequency_penalty"),
        Control("no_repeat_ngram_size", kind="number", info="No word sequence of this length is repeated; 0 = off."),
    )),
    Group("Curve shape", "shape", controls=(
        Control("dynamic_temperature", kind="check",
                info="Temperature between dynatemp_low and dynatemp_high, by how uncertain the model is."),
        Control("dynatemp_low"),
        Control("dynatemp_high"),
        Control("dynatemp_exponent"),
        Control("smoothing_factor", info="Quadratic sampling; 0 = off."),
        Control("smoothing_curve", info="How steeply quadratic sampling drops off; 1 = plain quadratic."),
        Control("temperature_last", kind="check",
                info="Apply temperature after the cutoff samplers, whatever sampler_priority says."),
    )),
    Group("More cutoffs", "more-cutoffs", controls=(
        Control("top_n_sigma", info="Keep tokens within n standard deviations of the top logit; 0 = off."),
        Control("top_a", info="Drop tokens below top_a times the top probability squared; 0 = off."),
        Control("tfs", info="Tail-free sampling; 1 = off."),
        Control("epsilon_cutoff", info="In units of 1e-4; 0 = off."),
        Control("eta_cutoff", info="In units of 1e-4; 0 = off."),
    )),
    Group("DRY", "dry", controls=(
        Control("dry_multiplier", info="Penalises extending a sequence seen before; 0 = off, 0.8 is typical."),
        Control("dry_allowed_length", step=1, info="The longest sequence that may repeat unpenalised."),
        Control("dry_base", info="How fast the penalty grows with the repeated sequence's length."),
        Control("dry_penalty_last_n", "dry_penalty_last_n (0 = the context)", kind="number"),
        Control("dry_sequence_breakers", kind="quoted", placeholder='"\\n", ":", "\\"", "*"',
                info='Strings that end a match, quoted and separated by commas.'),
    )),
    Group("XTC", "xtc", controls=(
        Control("xtc_threshold", info="When two or more tokens are above this probability, all but the least "
                                      "likely of them may be removed."),
        Control("xtc_probability", info="How often that removal happens; 0 = off."),
    )),
    Group("Mirostat", "mirostat", controls=(
        Control("mirostat_mode", step=1, info="1 or 2 (v1/v2) replaces the cutoff samplers; 0 = off."),
        Control("mirostat_tau", info="The target surprise."),
        Control("mirostat_eta", info="How fast it adapts."),
    )),
    Group("Guidance (CFG)", "guidance", controls=(
        Control("guidance_scale", info="Classifier-free guidance; 1 = off, 1.5 is typical."),
        Control("negative_prompt", "Negative prompt", kind="text", lines=3,
                info="Used when guidance_scale is not 1."),
    )),
    Group("Token bans", "bans", controls=(
        Control("custom_token_bans", "Token bans", kind="ids", placeholder="e.g. 13, 198",
                info="Token ids never generated, separated by commas (the Notebook's Tokens view shows ids)."),
        Control("banned_strings", "Banned strings (one per line)", kind="lines", lines=2,
                info="Text never generated: the reply steps back and bans the token that began it."),
        Control("logit_bias", "Logit bias (token_id: value, one per line)", kind="bias", lines=2,
                placeholder="198: -5", info="Added to the token's logit; -100 bans it, 100 forces it."),
        Control("min_tokens", "min_tokens", kind="number", info="The reply cannot end before this many tokens."),
    )),
    Group("Other", "other", controls=(
        Control("do_sample", kind="check", info="Off: always the most likely token (greedy)."),
        Control("encoder_repetition_penalty", info="Above 1 favours tokens that are in the prompt."),
        Control("add_bos_token", kind="check", info="Start the prompt with the BOS token (when the model uses one)."),
        Control("skip_special_tokens", kind="check", info="Leave special tokens out of the reply's text."),
        Control("sampler_priority", "Sampler priority (one per line)", kind="lines", lines=4,
                placeholder="empty = the backend's default order",
                info=f"The cutoff samplers' order. Names: {PRIORITY_NAMES}."),
    )),
)
# The order of the Parameters tab's inputs (``FIELD_NAMES``): the tab's original fields first, as callers
# and tests index them, then the rest in layout order.
_FIRST = ("max_new_tokens", "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty",
          "repetition_penalty_range", "presence_penalty", "frequency_penalty", "no_repeat_ngram_size", "seed",
          "truncation_length", "ban_eos_token", "stop")
_LAID_OUT = {c.name: c for g in GROUPS for c in g.controls}
CONTROLS: tuple[Control, ...] = (*(_LAID_OUT[n] for n in _FIRST), *(c for n, c in _LAID_OUT.items()
                                                                    if n not in _FIRST))
FIELD_NAMES: list[str] = [c.name for c in CONTROLS]


def bounds(name: str) -> tuple[float | None, float | None, bool]:
    """(lowest, highest, lowest excluded) from the field's pydantic constraints."""
    low: float | None = None
    high: float | None = None
    open_low = False
    for item in GenerationParams.model_fields[name].metadata:
        if isinstance(item, at.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, at.Gt):
            low, open_low = float(item.gt), True  # type: ignore[arg-type]
        elif isinstance(item, at.Le):
            high = float(item.le)  # type: ignore[arg-type]
    return low, high, open_low


def component(control: Control, value: Any, info: str | None = None) -> gr.components.Component:
    """The control's Gradio component showing ``value`` (already in component form, see ``to_component``)."""
    label = control.label or control.name
    shown_info = control.info if info is None else info
    common: dict[str, Any] = {"label": label, "info": shown_info or None, "elem_id": f"param-{control.name}"}
    if control.kind == "check":
        return gr.Checkbox(value=value, **common)
    if control.kind in TEXT_KINDS:
        return gr.Textbox(value=value, lines=control.lines, placeholder=control.placeholder, **common)
    low, high, open_low = bounds(control.name)
    if control.kind == "number" or low is None or high is None:
        return gr.Number(value=value, precision=0 if control.integer else None, minimum=low, maximum=high,
                         **common)
    step = 1 if control.integer else control.step
    minimum = low + step if open_low else low
    return gr.Slider(minimum, high, value=value, step=step, **common)


def to_component(control: Control, value: Any) -> Any:
    """A GenerationParams value as its control shows it."""
    if control.kind == "lines":
        return "\n".join(value)
    if control.kind == "ids":
        return ", ".join(str(v) for v in value)
    if control.kind == "quoted":
        return json.dumps(list(value), ensure_ascii=False)[1:-1]  # '"\n", ":"' (upstream's form)
    if control.kind == "bias":
        return "\n".join(f"{token}: {bias:g}" for token, bias in value.items())
    return value


def from_component(control: Control, value: Any) -> Any:
    """A control's value as GenerationParams takes it (validated there). Raises PresetError for bias text
    that is not ``token_id: value`` lines."""
    if control.kind == "lines":
        return [line for line in str(value or "").splitlines() if line]
    if control.kind in ("ids", "quoted", "text"):
        return str(value or "")
    if control.kind == "bias":
        return _bias(str(value or ""))
    if control.integer and value is not None:
        return int(value)
    return value


def _bias(text: str) -> dict[Any, Any]:
    if not text.strip():
        return {}
    try:
        data = load_yaml(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise PresetError("Logit bias: write one token_id: value per line, e.g. 198: -5.")
    return data


def info_updates(loader: str | None) -> list[Any]:
    """Per control (``CONTROLS`` order), its help text, with a note when ``loader`` ignores the field."""
    ignored = set(unsupported(loader))
    updates = []
    for control in CONTROLS:
        note = ignore_note(loader, control.name) if control.name in ignored else ""
        text = " ".join(part for part in (control.info, note) if part)
        updates.append(gr.update(info=text or None))
    return updates


def ignore_note(loader: str | None, name: str) -> str:
    """A short note for a control whose field ``loader`` ignores, with the reason when one is known."""
    reason = BACKEND_LIMITS.get(name, "")
    prefix = f"{loader}: "
    reason = reason[len(prefix):].split(";")[0].strip() if reason.startswith(prefix) else ""
    return f"⚠ Ignored by {loader}" + (f" ({reason})." if reason else ".")
