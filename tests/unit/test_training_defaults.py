"""Default LoRA settings by model size, and target modules found from the architecture (on models
built on the meta device from a config: no weights)."""

from __future__ import annotations

import pytest

from webui.training.defaults import find_target_modules, meta_model, model_defaults, resolved, size_defaults
from webui.training.types import Hyperparams


def _llama_config(**kw):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, **kw)


def test_smaller_models_get_a_higher_rate_and_a_lower_rank() -> None:
    sizes = [135e6, 1e9, 7e9, 13e9, 34e9, 70e9]
    table = [size_defaults(int(n)) for n in sizes]
    rates = [lr for lr, _r, _a in table]
    ranks = [r for _lr, r, _a in table]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]
    assert ranks == sorted(ranks) and ranks[0] < ranks[-1]
    assert all(alpha == 2 * rank for _lr, rank, alpha in table)
    assert size_defaults(int(7e9)) == (2e-4, 16, 32)  # the common QLoRA recipe for 7B
    assert size_defaults(int(7e9), "dpo")[0] < size_defaults(int(7e9))[0]


@pytest.mark.parametrize("tied", [True, False])
def test_llama_targets_every_attention_and_mlp_projection_but_not_the_head(tied: bool) -> None:
    model = meta_model(_llama_config(tie_word_embeddings=tied))
    assert find_target_modules(model) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert next(model.parameters()).device.type == "meta"


def test_gpt2_conv1d_layers_are_found_and_its_head_is_not() -> None:
    from transformers import GPT2Config

    model = meta_model(GPT2Config(vocab_size=1000, n_embd=64, n_layer=2, n_head=4))
    assert find_target_modules(model) == ["c_attn", "c_fc", "c_proj"]


def test_a_linear_outside_the_blocks_is_not_a_target() -> None:
    import torch

    class WithProjector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.projector = torch.nn.Linear(4, 4)
            self.layers = torch.nn.ModuleList([torch.nn.ModuleDict({"mix": torch.nn.Linear(4, 4)})])
            self.lm_head = torch.nn.Linear(4, 10)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.lm_head

    assert find_target_modules(WithProjector()) == ["mix"]


def test_model_defaults_count_parameters_and_resolve_fills_only_what_is_unset() -> None:
    defaults = model_defaults(_llama_config())
    assert 100_000 < defaults.n_params < 1_000_000
    assert (defaults.learning_rate, defaults.rank, defaults.alpha) == size_defaults(defaults.n_params)
    filled = resolved(Hyperparams(), defaults)
    assert (filled.learning_rate, filled.rank, filled.alpha) == (defaults.learning_rate, defaults.rank, defaults.alpha)
    assert filled.target_modules == defaults.target_modules
    mine = resolved(Hyperparams(learning_rate=1e-3, rank=4, target_modules=["q_proj"]), defaults)
    assert (mine.learning_rate, mine.rank, mine.alpha, mine.target_modules) == (1e-3, 4, 8, ["q_proj"])
    assert resolved(Hyperparams(rank=4, alpha=4), defaults).alpha == 4
