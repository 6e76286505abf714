"""The Training tab in a real browser, on the real app serving a tiny real Llama: pick chats from the
history (and the preference pairs Regenerate left) and preview them; upload a file, preview it (the
trained tokens highlighted), train a few steps while the progress bar and the loss chart move,
apply the adapter, and chat with it.

Set ``WEBUI_DOCS_IMAGES=docs/images`` to also save the tab's screenshot there (docs/training.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support.browser_utils import bot_texts, send_message, wait_for
from tests.support.server_utils import RunningApp, start_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.training_runs import SERIES_COLORS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = 60  # seconds; generous for a loaded 2-core machine
QUESTIONS = ["What is the capital of Zorblax?", "Name the capital of Zorblax.", "Zorblax's capital is which city?",
             "Which city is the capital of Zorblax?", "Tell me Zorblax's capital.", "Where is Zorblax governed from?",
             "What city rules Zorblax?", "Capital of Zorblax?"]


KEPT = "Zorblax is a small planet; its capital is Quennivar."
MOVED_AWAY = "Zorblax is a planet."


def seed_history(data_dir: Path) -> None:
    """One chat as the Chat tab leaves it: a reply regenerated (the second version shown), then the
    chat went on from it, so the second version was kept and the first moved away from."""
    db = open_database(sqlite_url(data_dir))
    repo = ChatRepository(db)
    conv = repo.create_conversation("Zorblax facts", "Assistant")
    turn = repo.start_turn(conv.id, "Tell me about Zorblax.")
    repo.update_version(turn.reply_version_id, MOVED_AWAY, complete=True)
    repo.update_version(repo.add_version(turn.reply_message_id), KEPT, complete=True)
    turn = repo.start_turn(conv.id, "Thanks. And its moons?")
    repo.update_version(turn.reply_version_id, "It has two moons.", complete=True)
    other = repo.create_conversation("Weather", "Assistant")
    turn = repo.start_turn(other.id, "Will it rain?")
    repo.update_version(turn.reply_version_id, "Probably not.", complete=True)
    db.dispose()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("training-tab") / "data"
    data.mkdir()
    seed_history(data)
    running = start_app(data, "--model", str(tiny_llama_dir))
    yield running
    running.stop()


@pytest.fixture
def page(app: RunningApp, browser):  # type: ignore[no-untyped-def]
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    pg.goto(app.url)
    wait_for(lambda: "transformers" in pg.inner_text("#model-info"), timeout=T, what="the tiny model")
    yield pg
    pg.close()


def write_data(folder: Path) -> Path:
    path = folder / "zorblax.jsonl"
    rows = [{"prompt": q, "completion": f"The capital of Zorblax is Quennivar ({i})."} for i, q in enumerate(QUESTIONS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def shown(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text(text).first.wait_for(state="visible", timeout=T * 1000)


def progress(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The progress bar's state and step, as its data attributes say."""
    return page.evaluate("""() => { const p = document.querySelector('#train-progress .train-progress');
        return p ? {state: p.dataset.state, step: p.dataset.step, max: p.dataset.max} : {}; }""")


def loss_lines(page) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The loss chart's lines as drawn (SVG), by colour: how many points each joins (M/L commands)."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#train-loss g.mark-line path')]
        .map(p => [p.getAttribute('stroke'), ((p.getAttribute('d') || '').match(/[ML]/g) || []).length]))""")


def loss_vertices(page) -> int:  # type: ignore[no-untyped-def]
    return sum(loss_lines(page).values())


def fill_number(page, elem_id: str, value: object) -> None:  # type: ignore[no-untyped-def]
    """Type a number and check it stayed: a box in an accordion that has just opened can be mounted
    again a moment later with its old value, which would silently drop what was typed."""
    box = page.locator(f"#{elem_id} input[type=number]")
    for _ in range(10):
        box.fill(str(value))
        box.press("Enter")
        time.sleep(0.3)
        if box.input_value() == str(value):
            return
    raise AssertionError(f"#{elem_id} would not keep {value}; it shows {box.input_value()}")


def test_chats_and_preferences_from_the_history(page) -> None:  # type: ignore[no-untyped-def]
    """Chats found by the filters train with SFT (whole, or one reply); the regenerated reply's kept
    version against the one moved away from is a preference pair."""
    page.get_by_role("tab", name="Training").click()
    page.locator("#train-source label", has_text="Chats from the history").click()
    page.fill("#train-search textarea, #train-search input", "Zorblax")
    page.fill("#train-since textarea, #train-since input", "not a date")
    page.click("#train-find")
    shown(page, "From must be a date like 2025-01-31")
    page.fill("#train-since textarea, #train-since input", "2000-01-01")
    page.click("#train-find")
    wait_for(lambda: "1 chats match" in page.inner_text("#train-found"), timeout=T, what="the chat found")
    assert "Zorblax facts" in page.inner_text("#train-chats") and "Weather" not in page.inner_text("#train-chats")
    assert page.locator("#train-chats input:checked").count() == 1

    page.click("#train-preview-btn")
    wait_for(lambda: "Chats data" in page.inner_text("#train-counts"), timeout=T, what="the chat preview")
    assert "1 examples" in page.inner_text("#train-counts")
    trained = page.locator("#train-preview .token.highlighted").all_inner_texts()
    assert any(KEPT in t for t in trained) and any("two moons" in t for t in trained), trained
    assert MOVED_AWAY not in page.inner_text("#train-preview")  # only the version shown is a chat's text
    assert not any("Tell me about Zorblax." in t for t in trained)  # the user's turns are context

    page.get_by_text("Only some replies").click()
    page.click("#train-list-replies")
    page.locator("#train-replies label", has_text="Zorblax is a small planet").click()
    page.click("#train-preview-btn")
    wait_for(lambda: "Chat replies data" in page.inner_text("#train-counts"), timeout=T, what="one reply")
    assert "1 examples" in page.inner_text("#train-counts")
    assert "two moons" not in page.inner_text("#train-preview")  # what came after it is not in its example

    page.locator("#train-source label", has_text="Train on my preferences").click()
    dpo = page.locator("#train-method label", has_text="Preferences (DPO)").locator("input")
    wait_for(dpo.is_checked, timeout=T, what="the method to follow the data: DPO")
    page.click("#train-preview-btn")
    wait_for(lambda: "pairs" in page.inner_text("#train-counts"), timeout=T, what="the preference pairs")
    assert "1 pairs" in page.inner_text("#train-counts")
    marked = page.locator("#train-preview .token.highlighted").all_inner_texts()
    assert marked == [KEPT, MOVED_AWAY], marked  # chosen, then rejected


def test_train_from_the_tab_then_chat_with_the_adapter(app: RunningApp, page, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       tiny_llama_dir: Path) -> None:
    data = app.data_dir
    page.get_by_role("tab", name="Training").click()
    wait_for(lambda: tiny_llama_dir.name in page.inner_text("#train-base-model"), timeout=T, what="the base model")

    # Bad input first: nothing to train on, then no name. One message each; the form stays.
    page.click("#train-start")
    shown(page, "Upload a training file first")
    page.set_input_files("#train-file input[type=file]", str(write_data(tmp_path)))
    page.click("#train-start")
    shown(page, "Name the adapter first.")

    # Preview: the chat template applied, the replies highlighted, the counts.
    page.click("#train-preview-btn")
    wait_for(lambda: "examples" in page.inner_text("#train-counts"), timeout=T, what="the preview counts")
    counts = page.inner_text("#train-counts")
    assert f"{len(QUESTIONS)} examples" in counts and "Prompt/completion" in counts, counts
    preview = page.inner_text("#train-preview")
    assert "<|im_start|>assistant" in preview and "Quennivar" in preview, preview
    trained = "|".join(page.locator("#train-preview .token.highlighted").all_inner_texts())
    assert "Quennivar" in trained and "capital of Zorblax?" not in trained, trained  # the reply, not the question
    # The preview read the model's size: the learning rate's label now names its default (small model: 3e-4).
    assert "default 0.0003" in page.inner_text("#train-lr"), page.inner_text("#train-lr")

    # A run long enough to span several of the page's status reads (one each POLL_SECONDS; eight steps
    # of the tiny model can finish within one): the progress bar advances and the loss chart gains points.
    page.fill("#train-name textarea, #train-name input", "zorblax")
    fill_number(page, "train-max-steps", 40)
    fill_number(page, "train-batch", 2)
    fill_number(page, "train-lr", 0.003)
    fill_number(page, "train-max-length", 128)
    page.click("#train-advanced button, #train-advanced .label-wrap")
    fill_number(page, "train-eval-steps", 10)
    page.click("#train-start")
    steps: set[int] = set()
    points: set[int] = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = progress(page)
        steps.add(int(state.get("step") or 0))
        points.add(loss_vertices(page))
        if state.get("state") in ("done", "failed"):
            break
        time.sleep(0.3)
    assert progress(page)["state"] == "done", page.inner_text("#train-results")
    assert len(steps - {0}) >= 2, f"the bar should move step by step, saw {sorted(steps)}"
    assert len(points - {0}) >= 2 and max(points) >= 4, f"the chart should gain points, saw {sorted(points)}"
    results = page.inner_text("#train-results")
    assert "Validation perplexity" in results and "→" in results, results
    assert (data / "loras" / "zorblax").is_dir()
    assert "zorblax" in page.inner_text("#train-runs") and "done" in page.inner_text("#train-runs")
    # the finished run's whole curves: training at steps 1-40, validation at steps 0, 10, 20, 30, 40
    whole = {SERIES_COLORS["train"]: 40, SERIES_COLORS["validation"]: 5}
    wait_for(lambda: loss_lines(page) == whole, timeout=T, what=f"the whole loss curves {whole}")
    if os.environ.get("WEBUI_DOCS_IMAGES"):
        page.evaluate("document.querySelector('#train-start').scrollIntoView({block: 'start'})")
        wait_for(lambda: loss_lines(page) == whole, timeout=T, what="the chart drawn again after scrolling")
        time.sleep(1)
        page.screenshot(path=str(Path(os.environ["WEBUI_DOCS_IMAGES"]) / "training.png"))

    # Apply it, then chat: the reply comes from the model with the adapter on.
    page.click("#train-apply")
    shown(page, "Applied zorblax")
    loras = httpx.get(f"{app.url}/v1/internal/lora/list", timeout=10).json()
    assert loras["applied"] == [{"name": "zorblax", "weight": 1.0}], loras
    page.get_by_role("tab", name="Chat").click()
    before = len(bot_texts(page))
    send_message(page, QUESTIONS[0])
    wait_for(lambda: len(bot_texts(page)) > before and bot_texts(page)[-1].strip() != "", timeout=T, what="a reply")
    assert "Traceback" not in page.inner_text("body")
