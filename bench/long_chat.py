"""Streaming speed in a real browser: a 200-message chat ÷ an empty chat, same model, one run.

Starts ``python app.py`` on the embedded model with a fresh data dir holding copies of one chat of
200 messages, drives Debian's Chromium with Playwright, sends the same message in a new (empty)
chat and in a long chat (interleaved rounds, medians), and measures tokens per second appearing in
the page while the reply streams (first visible text to last; the text shown is counted with the
model's tokenizer, so replies of different wording compare fairly). Target ≥ 0.95.

The browser ratio holds two things: what the UI costs for showing 200 messages, and the model's
own slowdown when its prompt is longer (attention over the context; on this 135M model at ~3.5k
tokens, decode runs at ~0.4 of its short-prompt speed in raw llama.cpp). So for each setting the
script also measures raw llama.cpp decode with the same long prompt ÷ a one-message prompt, and
prints the UI's own ratio = browser ratio ÷ raw model ratio, split into the server's share (the
page's requests made without a browser) and the rendering's share. Every reply is exactly
``MAX_NEW_TOKENS`` long (end of text banned) and drawn with one fixed seed, in the browser, without it
and in raw llama.cpp: decode slows as a reply grows, so replies that end early at random would read
as faster and add noise to each median. Two settings: truncation_length 1024 (the long chat's prompt is cut to
its latest ~820 tokens) and the full context (~3.9k tokens).

Then the time-to-first-token rows of a long chat (issue 12), from ``bench/context_reuse.py``: turns at
the context limit and two chats alternating, the app against the same app with context shift and the
prompt cache off (``--no-ttft`` leaves them out; ``--no-browser`` prints only them).

    python bench/long_chat.py [--messages 200] [--rounds 3] [--no-ttft | --no-browser] [--n-ctx 2048] [--turns 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import context_reuse  # noqa: E402
from tests.support.gradio_session import GradioSession, html_text  # noqa: E402
from tests.support.server_utils import start_app  # noqa: E402
from webui.storage.db import open_database, sqlite_url  # noqa: E402
from webui.storage.repository import ChatRepository  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
MAX_NEW_TOKENS = 200
SEED = 1
CONTEXT = 4096  # the embedded model's n_ctx in the app (options.py)
MEASURE_JS = """
() => { window.__measure = new Promise(resolve => {
  // The streaming reply is written into the live bubble under the chat (#live-reply .live-text); the
  // bubble is hidden once the finished reply is shown from the database, after the message panel
  // (#message-info) changes. A MutationObserver and textContent read the page only when it changes and
  // never force a style/layout pass (a requestAnimationFrame loop reading innerText would add per-frame
  // work that grows with the page). Trimmed: the bubble's markup holds whitespace before any text.
  let first = null, last = null, firstText = '', lastText = '', done = false;
  const finish = () => {
    if (done) return; done = true; observer.disconnect();
    resolve({first: firstText, last: lastText, seconds: (last - first) / 1000});
  };
  const observer = new MutationObserver(() => {
    const live = document.querySelector('#live-reply .live-text');
    const text = live ? live.textContent.trim() : '';
    const now = performance.now();
    if (text && first === null) { first = now; firstText = text; }
    if (text && text !== lastText) { last = now; lastText = text; }
    const info = document.querySelector('#message-info').textContent;
    if (first !== null && info !== window.__doneMarker) finish();
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}); }
"""


def long_chat_title(index: int) -> str:
    return f"Long chat #{index:02d}"


def seed_long_chats(data_dir: Path, n: int, copies: int) -> list[int]:
    """``copies`` identical chats of ``n`` messages (their ids): each measurement streams into a chat
    of exactly ``n`` messages (a reply added by one round would lengthen the next round's prompt)."""
    repo = ChatRepository(open_database(sqlite_url(data_dir)))
    ids = []
    for index in range(copies):
        conv = repo.create_conversation(long_chat_title(index), "Assistant", settings={"mode": "chat"})
        for i in range(n):
            role = "user" if i % 2 == 0 else "assistant"
            repo.add_message(conv.id, role, f"Message {i}: a short line of chat about the weather and tea.")
        ids.append(conv.id)
    return ids


def protocol_rate(url: str, conv_id: int | None, truncation: int, count: Callable[[str], int]) -> float:
    """tokens/s of a reply read as the page reads it (the ``prepare`` step, then the reply's event
    stream) but with nothing rendered: the same server, model and prompt without a browser
    (``conv_id`` None: a new chat). Browser rate ÷ this rate is what showing the reply costs."""
    ui = GradioSession(url, f"bench-{time.monotonic_ns()}")
    ui.page_load()
    if conv_id is None:
        ui.run("new_chat")
    else:
        ui.run("open_chat", {"chat-list": conv_id})
    values = {"chat-input": PROMPT, "param-truncation_length": truncation, "param-max_new_tokens": MAX_NEW_TOKENS,
              "param-seed": SEED, "param-ban_eos_token": True}
    stamps: list[tuple[float, str]] = []
    for now, event in ui.live_reply("prepare", values):
        text = html_text(event.get("html", "")).strip()
        if text and (not stamps or text != stamps[-1][1]):
            stamps.append((now, text))
    (t0, first), (t1, last) = stamps[0], stamps[-1]
    return (count(last) - count(first)) / (t1 - t0)


def measure(page, count: Callable[[str], int]) -> float:  # type: ignore[no-untyped-def]
    """tokens/s of one reply as it appears in the page."""
    page.evaluate("() => { window.__doneMarker = document.querySelector('#message-info').textContent; }")
    page.fill("#chat-input textarea", PROMPT)
    page.evaluate(MEASURE_JS)  # starts watching; the promise is awaited after the click
    page.click("#send")
    value = page.evaluate("() => window.__measure")
    return (count(value["last"]) - count(value["first"])) / float(value["seconds"])


def set_params(page, truncation: int) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Parameters").click()
    for name, value in (("truncation_length", truncation), ("max_new_tokens", MAX_NEW_TOKENS), ("seed", SEED)):
        box = page.locator(f"#param-{name} input[type=number]")
        box.fill(str(value))
        box.press("Enter")
    page.locator("#param-ban_eos_token input").set_checked(True)
    page.get_by_role("tab", name="Chat").click()


def open_long_chat(page, title: str, messages: int) -> None:  # type: ignore[no-untyped-def]
    page.locator("#chat-list label", has_text=title).click()
    page.wait_for_function(  # the long chat is open: its message count shows in the message panel
        "(n) => { const m = /of (\\d+) /.exec(document.querySelector('#message-info').innerText);"
        " return m && parseInt(m[1]) >= n; }",
        arg=messages, timeout=120_000,
    )


def rates(page, url: str, messages: int, rounds: int, truncation: int,  # type: ignore[no-untyped-def]
          chats: list[tuple[str, int]], count: Callable[[str], int]) -> dict[str, float]:
    """Median tokens/s over interleaved rounds: empty and long chat, in the browser and without one.
    ``chats``: (title, id) of 2 * rounds unused long chats. Opening a chat restores the parameters
    stored with it, so they are set after each chat is opened."""
    found: dict[str, list[float]] = {"browser empty": [], "browser long": [], "protocol empty": [], "protocol long": []}
    for round_ in range(rounds):
        page.click("#new-chat")
        page.wait_for_function("() => /Message 1 of 1/.test(document.querySelector('#message-info').innerText)")
        set_params(page, truncation)
        found["browser empty"].append(measure(page, count))
        open_long_chat(page, chats[2 * round_][0], messages)
        set_params(page, truncation)
        found["browser long"].append(measure(page, count))
        found["protocol empty"].append(protocol_rate(url, None, truncation, count))
        found["protocol long"].append(protocol_rate(url, chats[2 * round_ + 1][1], truncation, count))
    return {name: statistics.median(values) for name, values in found.items()}


def raw_model_ratio(data_dir: Path, max_prompt_tokens: int) -> tuple[float, int]:
    """Raw llama.cpp decode tok/s, long-chat prompt (its latest turns, at most ``max_prompt_tokens``)
    ÷ a one-message prompt: the model's own share of the slowdown, no UI involved."""
    from llama_cpp import Llama

    from webui.engine.catalog import embedded_model_path
    from webui.engine.llamacpp_backend import default_threads, eog_token_ids

    repo = ChatRepository(open_database(sqlite_url(data_dir)))
    conv = next(c for c in repo.list_conversations() if c.title == long_chat_title(0))
    history = [{"role": m.role, "content": m.content} for m in repo.messages(conv.id)][-200:]
    llm = Llama(model_path=str(embedded_model_path()), n_ctx=CONTEXT, n_threads=default_threads(), verbose=False)
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    fmt = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token="", bos_token="")
    ask = {"role": "user", "content": PROMPT}
    prompts = {"short": fmt(messages=[ask]).prompt, "long": fmt(messages=[*history, ask]).prompt}
    while len(llm.tokenize(prompts["long"].encode(), special=True)) > max_prompt_tokens:
        history = history[2:]
        prompts["long"] = fmt(messages=[*history, ask]).prompt
    no_end = {token: float("-inf") for token in eog_token_ids(llm)}  # as the app's ban_eos_token does
    ratios = []
    for _ in range(3):  # interleaved rounds; the median of per-round ratios (this machine is noisy)
        rates = {}
        for name, prompt in prompts.items():
            llm.reset()
            reply = llm.create_completion(prompt, max_tokens=MAX_NEW_TOKENS, seed=SEED, logit_bias=no_end, stream=True)
            stamps = [time.perf_counter() for _ in reply]
            rates[name] = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        ratios.append(rates["long"] / rates["short"])
    n_tokens = len(llm.tokenize(prompts["long"].encode(), special=True))
    llm.close()
    return statistics.median(ratios), n_tokens


def token_counter() -> Callable[[str], int]:
    """Tokens of a text shown in the page, by the embedded model's own tokenizer."""
    from llama_cpp import Llama

    from webui.engine.catalog import embedded_model_path

    vocab = Llama(model_path=str(embedded_model_path()), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True,
                    help="the streaming-speed rows in Chromium")
    ap.add_argument("--ttft", action=argparse.BooleanOptionalAction, default=True,
                    help="the time-to-first-token rows (bench/context_reuse.py)")
    ap.add_argument("--n-ctx", type=int, default=2048, help="context of the TTFT rows' apps")
    ap.add_argument("--turns", type=int, default=10, help="turns at the context limit in the TTFT rows")
    args = ap.parse_args()
    if args.browser:
        browser_rows(args.messages, args.rounds)
    if args.ttft:
        print()
        context_reuse.report(context_reuse.measure(args.n_ctx, args.turns))
    return 0


def browser_rows(messages: int, rounds: int) -> None:
    """Measure and print the streaming speed rows (see the module's doc)."""
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        settings = (1024, 0)
        per_setting = 2 * rounds
        ids = seed_long_chats(data_dir, messages, copies=len(settings) * per_setting)
        chats = [(long_chat_title(i), conv_id) for i, conv_id in enumerate(ids)]
        # Prompt budgets, as the app computes them: (truncation_length or the context) - max_new_tokens.
        model = {t: raw_model_ratio(data_dir, (t or CONTEXT) - MAX_NEW_TOKENS) for t in settings}
        count = token_counter()
        app = start_app(data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(app.url)
                page.wait_for_selector("#chat-input textarea", timeout=120_000)
                for k, truncation in enumerate(settings):
                    results[truncation] = rates(page, app.url, messages, rounds, truncation,
                                                chats[k * per_setting:(k + 1) * per_setting], count)
                browser.close()
        finally:
            app.stop()
    print(f"{messages}-message chat vs empty chat, embedded SmolLM2, Chromium, "
          f"replies of {MAX_NEW_TOKENS} tokens (end banned, seed {SEED}), "
          f"{rounds} interleaved rounds (medians; tokens/s)")
    for truncation, label in ((1024, "truncation_length 1024"), (0, "full context")):
        r = results[truncation]
        browser_ratio = r["browser long"] / r["browser empty"]
        protocol_ratio = r["protocol long"] / r["protocol empty"]
        model_ratio, tokens = model[truncation]
        print(f"  {label} (long-chat prompt {tokens} tokens):")
        print(f"    browser:  empty {r['browser empty']:.1f} tok/s, long {r['browser long']:.1f} tok/s "
              f"-> ratio {browser_ratio:.2f}")
        print(f"    same server, no browser (the page's requests): empty {r['protocol empty']:.1f}, "
              f"long {r['protocol long']:.1f} -> ratio {protocol_ratio:.2f}")
        print(f"    raw llama.cpp decode, long prompt / one message: {model_ratio:.2f}")
        print(f"    UI's own ratio (browser / raw model) {browser_ratio / model_ratio:.2f} (target >= 0.95); "
              f"server's (protocol / raw model) {protocol_ratio / model_ratio:.2f}; "
              f"rendering's (browser / protocol) {browser_ratio / protocol_ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
