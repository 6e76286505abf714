"""An idle app costs (almost) nothing, with no page open and with a page open (issue 12).

The bounds are generous (measured here: ~0.5% of a core idle; ~5% before webui.ui.quiet_queue),
so machine noise does not fail them, but Gradio's 1 ms queue poll would."""

from __future__ import annotations

import time

import pytest

from tests.support.browser_utils import open_app_page
from tests.support.idle_cpu import cpu_percent_over
from tests.support.server_utils import served_app

IDLE_BOUND = 2.0  # percent of one core; the target is 1%
PAGE_OPEN_BOUND = 3.0  # the target is 2%


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "idle")


def test_an_idle_app_with_no_page_open_uses_almost_no_cpu(app) -> None:  # type: ignore[no-untyped-def]
    time.sleep(2)  # start-up work (first imports, the load) is over
    assert cpu_percent_over(app.proc.pid, 12) < IDLE_BOUND


def test_an_idle_page_open_costs_the_server_almost_nothing(app, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_app_page(browser, app.url)
    try:
        time.sleep(3)  # the page's load events are done
        assert cpu_percent_over(app.proc.pid, 12) < PAGE_OPEN_BOUND
    finally:
        page.close()
