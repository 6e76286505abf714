"""Appends how many tokens the reply has, counted with the loaded model's tokenizer."""

import modules.shared as shared
from modules import text_generation
from modules.logging_colors import logger

params = {"activate": True}


def output_modifier(string, state, is_chat=False):
    if not params["activate"] or shared.tokenizer is None:
        return string
    ids = shared.tokenizer.encode(string)
    assert text_generation.get_encoded_length(string) == len(ids)
    logger.info("tgw_tokens: %d tokens", len(ids))
    return f"{string} <{len(ids)} tokens, eos {shared.tokenizer.eos_token_id}, {shared.model_name}>"
