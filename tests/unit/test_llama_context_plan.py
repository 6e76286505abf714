"""Planning a context shift: which cached tokens the new prompt can keep (webui.engine.llama_context)."""

from __future__ import annotations

from webui.engine.llama_context import Shift, common_prefix, plan_shift

SYSTEM = list(range(1000, 1020))
TURNS = [list(range(2000 + 100 * i, 2000 + 100 * i + 40)) for i in range(6)]


def chat(first: int, last: int, tail: list[int]) -> list[int]:
    return SYSTEM + [t for turn in TURNS[first:last] for t in turn] + tail


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_dropping_the_oldest_turns_keeps_the_system_block_and_moves_the_rest_back() -> None:
    cached = chat(0, 5, [7, 7, 7])
    new = chat(2, 5, []) + list(TURNS[5])
    plan = plan_shift(cached, new)
    assert plan == Shift(keep=len(SYSTEM), drop=80, reuse=120)
    # what the cache holds after the shift is exactly the new prompt's beginning
    after = cached[:plan.keep] + cached[plan.keep + plan.drop:plan.keep + plan.drop + plan.reuse]
    assert after == new[:plan.keep + plan.reuse]


def test_no_shift_when_too_little_would_be_reused() -> None:
    cached = chat(0, 5, [])
    new = chat(4, 5, []) + list(range(9000, 9100))  # only one 40-token turn in common after the system block
    assert plan_shift(cached, new, min_reuse=41) is None
    assert plan_shift(cached, new, min_reuse=40) == Shift(keep=len(SYSTEM), drop=160, reuse=40)


def test_an_unrelated_prompt_plans_nothing() -> None:
    assert plan_shift(chat(0, 5, []), list(range(5000, 5300))) is None


def test_the_last_prompt_token_is_always_left_to_evaluate() -> None:
    cached = chat(0, 6, [])
    new = chat(1, 6, [])  # everything after the drop is cached
    plan = plan_shift(cached, new)
    assert plan is not None and plan.keep + plan.reuse == len(new) - 1
