import pytest

from webui.generation.stopping import StopStringFilter


def run(stops: list[str], deltas: list[str]) -> tuple[str, bool]:
    f = StopStringFilter(stops)
    out = "".join(f.feed(d) for d in deltas) + f.flush()
    return out, f.stopped


def test_no_stops_passes_through() -> None:
    assert run([], ["a", "b"]) == ("ab", False)


def test_stop_inside_one_delta_cuts_it() -> None:
    assert run(["\nUser:"], ["Hi there\nUser: more"]) == ("Hi there", True)


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
def test_stop_split_across_deltas_is_never_shown(split: int) -> None:
    text = "Hello\nUser: again"
    deltas = [text[i : i + split] for i in range(0, len(text), split)]
    assert run(["\nUser:"], deltas) == ("Hello", True)


def test_partial_match_that_does_not_complete_is_released() -> None:
    f = StopStringFilter(["</s>"])
    assert f.feed("a</") == "a"
    assert f.feed("b") == "</b"
    assert f.flush() == ""
    assert not f.stopped


def test_held_text_released_at_end() -> None:
    f = StopStringFilter(["STOP"])
    assert f.feed("go ST") == "go "
    assert f.flush() == "ST"


def test_earliest_of_several_stops_wins() -> None:
    assert run(["B", "A"], ["xxAyyB"]) == ("xx", True)
