"""Streaming speed in a real browser: a 200-message chat ÷ an empty chat, same model, one run.

Starts ``python app.py`` on the embedded model with a fresh data dir holding one chat of 200
messages, drives Debian's Chromium with Playwright, sends the same message in a new (empty)
chat and in the long chat, and measures characters per second appearing in the page while the
reply streams (first visible text to last). Prints both speeds and their ratio (target ≥ 0.95).

    python bench/long_chat.py [--messages 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server_utils import start_app  # noqa: E402
from webui.storage.db import open_database, sqlite_url  # noqa: E402
from webui.storage.repository import ChatRepository  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
MEASURE_JS = """
() => { window.__measure = new Promise(resolve => {
  const bots = () => document.querySelectorAll('#chatbot [data-testid="bot"]');
  const start = bots().length;
  let first = null, last = null, firstLen = 0, lastLen = 0;
  const tick = () => {
    const all = bots();
    if (all.length > start) {
      const len = all[all.length - 1].innerText.length;
      const now = performance.now();
      if (len > 0 && first === null) { first = now; firstLen = len; }
      if (len !== lastLen) { last = now; lastLen = len; }
    }
    const info = document.querySelector('#message-info').innerText;
    if (first !== null && window.__doneMarker !== undefined && info !== window.__doneMarker) {
      resolve({chars: lastLen - firstLen, seconds: (last - first) / 1000}); return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}); }
"""


def seed_long_chat(data_dir: Path, n: int) -> int:
    repo = ChatRepository(open_database(sqlite_url(data_dir)))
    conv = repo.create_conversation("Long chat", "Assistant", settings={"mode": "chat"})
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        repo.add_message(conv.id, role, f"Message {i}: a short line of chat about the weather and tea.")
    return conv.id


def measure(page) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    page.evaluate("() => { window.__doneMarker = document.querySelector('#message-info').innerText; }")
    page.fill("#chat-input textarea", PROMPT)
    page.evaluate(MEASURE_JS)  # starts watching; the promise is awaited after the click
    page.click("#send")
    value = page.evaluate("() => window.__measure")
    return int(value["chars"]), float(value["seconds"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        seed_long_chat(data_dir, args.messages)
        app = start_app(data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(app.url)
                page.wait_for_selector("#chat-input textarea", timeout=120_000)
                page.click("#new-chat")
                page.wait_for_function("() => /Message 1 of 1/.test(document.querySelector('#message-info').innerText)")
                empty_chars, empty_s = measure(page)
                page.locator("#chat-list label", has_text="Long chat").click()
                page.wait_for_function(
                    f"() => /of {args.messages} /.test(document.querySelector('#message-info').innerText)", timeout=120_000
                )
                long_chars, long_s = measure(page)
                browser.close()
        finally:
            app.stop()
    empty_rate, long_rate = empty_chars / empty_s, long_chars / long_s
    print(f"empty chat:        {empty_chars} chars in {empty_s:.2f} s = {empty_rate:.1f} chars/s")
    print(f"{args.messages}-message chat: {long_chars} chars in {long_s:.2f} s = {long_rate:.1f} chars/s")
    print(f"ratio long/empty: {long_rate / empty_rate:.2f}  (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
