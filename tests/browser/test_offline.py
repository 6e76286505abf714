"""Offline guarantee: loading the page and chatting makes no request and opens no connection
that leaves 127.0.0.1 -- neither from the browser nor from the server process."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest

from tests.support.browser_utils import bot_texts, send_message, wait_for
from tests.support.server_utils import start_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL = {"127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"}


def test_page_and_chat_stay_on_localhost(tmp_path: Path, browser) -> None:
    app = start_app(tmp_path / "data")
    seen_remote: set[tuple[str, int]] = set()
    # collected here, asserted in the test body (an assert in a thread cannot fail the test)
    listening: set[str] = set()
    samples = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal samples
        proc = psutil.Process(app.proc.pid)
        while not stop.is_set():
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    for c in p.net_connections(kind="inet"):
                        if c.raddr:
                            seen_remote.add((c.raddr.ip, c.raddr.port))
                        if c.status == psutil.CONN_LISTEN:
                            listening.add(c.laddr.ip)
                except psutil.NoSuchProcess:
                    pass
            samples += 1
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    requests: list[str] = []
    try:
        context = browser.new_context()
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(app.url)
        page.wait_for_selector("#chat-input textarea")
        send_message(page, "Say hello in three words.")
        wait_for(lambda: len(bot_texts(page)) >= 2 and bot_texts(page)[-1].strip() != "", timeout=90, what="a reply")
        page.wait_for_timeout(2000)
        context.close()
    finally:
        stop.set()
        sampler.join()
        app.stop()

    assert len(requests) > 5 and samples > 20
    assert listening and listening <= LOCAL, listening
    hosts = {urlparse(u).hostname for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, sorted(u for u in requests if urlparse(u).hostname != "127.0.0.1")
    assert all(urlparse(u).scheme in ("http", "https", "ws", "wss", "data", "blob") for u in requests)
    # The browser's connections to the app show up here as peers on 127.0.0.1; nothing else may.
    assert seen_remote and {ip for ip, _ in seen_remote} <= LOCAL, seen_remote
