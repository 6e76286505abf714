"""webui.generation.inspect's shaping of what the API and the Notebook show (the model work itself is
checked on real models in tests/integration/test_inspect_endpoints.py)."""

from __future__ import annotations

import pytest

from webui.engine.protocol import TokenProb
from webui.errors import UserFacingError
from webui.generation import inspect


def test_pieces_show_their_whitespace() -> None:
    assert inspect.visible(" Paris") == "' Paris'"
    assert inspect.visible("\n\t") == "'\\n\\t'"
    view = inspect.TokenView([5, 6], ["Hel", "lo\n"])
    assert view.rows() == [[0, 5, "'Hel'"], [1, 6, "'lo\\n'"]]


def test_the_logits_answer_keeps_the_likelier_of_two_equal_texts() -> None:
    probs = [TokenProb(1, " a", 0.5), TokenProb(2, " b", 0.3), TokenProb(3, " a", 0.1)]
    assert inspect.as_dict(probs) == {" a": 0.5, " b": 0.3}
    assert list(inspect.as_dict(probs)) == [" a", " b"]  # most likely first
    assert inspect.logits_rows(probs[:1]) == [[1, 0.5, 1, "' a'"]]


def test_out_of_range_requests_are_refused_before_the_model(make_engine) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    with pytest.raises(UserFacingError, match="between 1 and 1000"):
        inspect.next_tokens(engine, "text", 0)
    with pytest.raises(UserFacingError, match="between 1 and 1000"):
        inspect.next_tokens(engine, "text", 1001)
    with pytest.raises(UserFacingError, match="must be in"):
        inspect.decode(engine, [-1])
    with pytest.raises(UserFacingError, match="fake loader cannot decode"):
        inspect.decode(engine, [3])  # in range: it reaches the model, which says it cannot
    assert inspect.decode(engine, []) == ""
