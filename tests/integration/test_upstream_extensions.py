"""Extensions written for text-generation-webui, in the real app.

* ``python app.py`` with a data dir holding the fixture extensions (one raising at import, one
  importing a package that is not installed, one writing a file when imported) starts, serves, and
  lists each problem; the disabled one's import-time code never ran; an enabled one's ``ui()`` is
  on the page with upstream's component names resolved.
* upstream's gallery pattern (``tgw_gallery``): ``shared.settings['gallery-open']`` is there, and a
  ``gr.Dataset`` select handler gets the whole ``[card_html, name]`` sample in ``evt.value`` (Gradio 4's
  behaviour), so picking a card sets the chat's character; a list of samples returned to it is its
  new samples (the filter), read from the characters folder at that time.
* an upstream-style output_modifier (``tgw_colors``: a coloured ``<span>`` per word, as upstream's
  perplexity_colors per token) changes only what the chat draws: the API's reply and the stored
  reply are the model's text, the next prompt has no spans, the chat's value has the spans as HTML.
* ``shared.tokenizer`` encodes with the loaded model's own tokenizer (a tiny real Llama through
  transformers), compared with that tokenizer loaded on its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server_utils import RunningApp, start_app
from webui.config import Settings
from webui.context import build_context
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "upstream_style_extensions"


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = tmp_path_factory.mktemp("upstream-exts") / "data"
    shutil.copytree(FIXTURES, data / "extensions")
    from PIL import Image

    Image.new("RGB", (600, 800), (200, 30, 30)).save(data / "picture.png")
    (data / "characters").mkdir()
    (data / "characters" / "Gardener.yaml").write_text("name: Gardener\ncontext: Gardener tends roses.\n")
    app = start_app(data, "--extensions", "tgw_broken", "tgw_unmet", "tgw_ui", "tgw_prompt", "tgw_gallery",
                    "tgw_colors")
    try:
        yield app
    finally:
        app.stop()


def test_broken_and_unmet_extensions_leave_the_app_serving_and_are_listed(started: RunningApp) -> None:
    listed = httpx.get(f"{started.url}/v1/internal/problems", timeout=60).json()
    reasons = {Path(p["file"]).parent.name: p["reason"] for p in listed if p["kind"] == "extension"}
    assert "tgw_broken fails on purpose" in reasons["tgw_broken"]
    assert "no_such_package_for_webui_tests" in reasons["tgw_unmet"]
    assert "is not installed" in reasons["tgw_unmet"] and "pip install" in reasons["tgw_unmet"]
    assert not (started.data_dir / "extensions" / "tgw_side_effect" / "imported.txt").exists()
    body = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2}
    prompt = httpx.post(f"{started.url}/v1/internal/chat-prompt", json=body, timeout=60)
    assert prompt.status_code == 200 and prompt.json()["prompt"].endswith("[note from tgw_prompt]")


def test_an_enabled_extensions_ui_is_on_the_page(started: RunningApp) -> None:
    config = httpx.get(f"{started.url}/config", timeout=60)
    assert config.status_code == 200, config.text
    components = config.json()["components"]
    ids = {c.get("props", {}).get("elem_id"): c for c in components}
    assert "tgw-ui-fill" in ids and "tgw-ui-choice" in ids
    assert "ext-about-tgw_side_effect" in ids  # listed from its files, not imported
    textbox = next(c["id"] for c in components if c.get("props", {}).get("elem_id") == "chat-input")
    fill = ids["tgw-ui-fill"]["id"]
    wired = [d for d in config.json()["dependencies"] if any(t[0] == fill for t in d.get("targets", []))]
    assert wired and textbox in wired[0]["outputs"]  # utils.gradio("textbox") named the chat's message box


def test_an_upstream_output_modifier_colours_the_chat_not_the_api_or_the_prompt(started: RunningApp) -> None:
    from webui.storage.db import open_database, sqlite_url
    from webui.storage.repository import ChatRepository
    from webui.ui import chat_view

    # end of text banned: a reply that ended at once would have nothing to colour (CI saw an empty one)
    body = {"messages": [{"role": "user", "content": "Name three fruits."}], "max_tokens": 12, "save": True,
            "ban_eos_token": True}
    first = httpx.post(f"{started.url}/v1/chat/completions", json=body, timeout=120).json()
    text = first["choices"][0]["message"]["content"]
    assert text.strip() and "<span" not in text
    follow = {"messages": [{"role": "user", "content": "And one more?"}], "max_tokens": 12,
              "conversation_id": first["conversation_id"], "stream": True, "ban_eos_token": True}
    with httpx.stream("POST", f"{started.url}/v1/chat/completions", json=follow, timeout=120) as streamed:
        chunks = [line for line in streamed.iter_lines() if line.startswith("data: {")]
    assert chunks and not any("<span" in line for line in chunks)

    repo = ChatRepository(open_database(sqlite_url(started.data_dir)))
    messages = repo.messages(first["conversation_id"])
    replies = [m for m in messages if m.role == "assistant"]
    assert len(replies) == 2 and replies[0].content == text
    assert all("<span" not in m.content for m in replies)
    assert all(m.content.strip() and '<span style="color: #' in (m.display or "") for m in replies)
    history = [{"role": m.role, "content": m.content} for m in messages]  # what the next turn's prompt is built on
    prompt = httpx.post(f"{started.url}/v1/internal/chat-prompt", json={"messages": history}, timeout=60).json()
    assert text.strip() in prompt["prompt"] and "<span" not in prompt["prompt"]
    drawn = chat_view.display(messages)[-1]["content"]  # the Chatbot's value for this chat
    assert '<span style="color:#' in drawn and "&lt;span" not in drawn


def test_shared_tokenizer_is_the_loaded_models(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from transformers import AutoTokenizer

    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data / "extensions")
    ctx = build_context(Settings(data_dir=data, extensions=["tgw_tokens"]), load_model=False)
    try:
        ctx.engine.load(ModelSpec(path=str(tiny_llama_dir), loader="transformers", display_name="tiny"))
        final = list(ctx.chat.answer([("user", "Hello")], GenerationParams(max_new_tokens=4, seed=1)))[-1]
        text, _, note = (final.display or "").rpartition(" <")  # upstream-style: what the chat draws
        assert text == final.text
        own = AutoTokenizer.from_pretrained(tiny_llama_dir)
        assert note.startswith(f"{len(own.encode(text, add_special_tokens=False))} tokens")
        assert note.endswith(f"eos {own.eos_token_id}, tiny>")  # the extension read shared.tokenizer.eos_token_id
        import modules.shared as shared

        assert (shared.tokenizer.eos_token_id, shared.tokenizer.bos_token_id) == (own.eos_token_id, own.bos_token_id)

        ids = shared.tokenizer.encode("The lighthouse keeper")
        assert ids == own.encode("The lighthouse keeper", add_special_tokens=False)
        assert shared.tokenizer.decode(ids) == "The lighthouse keeper"
    finally:
        ctx.engine.shutdown()


def test_get_image_cache_gives_a_picture_the_page_serves(started: RunningApp) -> None:
    """upstream's gallery writes ``<img src="file/{get_image_cache(path)}">``: that URL, resolved
    against the page, is a thumbnail Gradio 6 serves."""
    import io
    from urllib.parse import urljoin

    from PIL import Image

    config = httpx.get(f"{started.url}/config", timeout=60).json()
    html = next(c["props"]["value"] for c in config["components"]
                if c.get("props", {}).get("elem_id") == "tgw-ui-picture")
    src = html.split('src="', 1)[1].split('"', 1)[0]
    assert src.startswith("file/")
    picture = httpx.get(urljoin(started.url + "/", src), timeout=60)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(picture.content)).size) <= 470  # a thumbnail, upstream's size


def _elem(config: dict, elem_id: str) -> dict:
    return next(c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def _event(app: RunningApp, config: dict, target: int, event: str, data: list, event_data: dict | None) -> object:
    """Run the event ``event`` of component ``target`` over Gradio's queue, as the page does; its first output."""
    import json

    dep = next(i for i, d in enumerate(config["dependencies"]) if [target, event] in d["targets"])
    session = f"tgw-{target}-{event}-{len(data)}"
    body = {"data": data, "fn_index": dep, "session_hash": session, "trigger_id": target, "event_data": event_data}
    httpx.post(f"{app.url}/gradio_api/queue/join", json=body, timeout=60).raise_for_status()
    with httpx.stream("GET", f"{app.url}/gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and (msg := json.loads(line[5:])).get("msg") == "process_completed":
                assert msg["success"], msg
                return msg["output"]["data"][0]
    raise AssertionError("the event never completed")


def _picked(app: RunningApp, config: dict, samples: list, name: str) -> object:
    """Click the card of ``name`` among ``samples`` (as the page has them): what the character menu gets."""
    cards = _elem(config, "tgw-gallery-cards")
    index = next(i for i, shown in enumerate(samples) if name in shown[0])
    value = _event(app, config, cards["id"], "select", [], {"index": index, "value": samples[index]})
    return value.get("value") if isinstance(value, dict) else value


def test_a_gallery_dataset_select_gets_the_whole_sample(started: RunningApp) -> None:
    """The page sends the shown columns of the clicked sample (Gradio 6 shows only the component's);
    the handler still reads the name from ``evt.value[1]`` and the character menu gets it."""
    config = httpx.get(f"{started.url}/config", timeout=60).json()
    cards = _elem(config, "tgw-gallery-cards")
    samples = cards["props"]["samples"]
    assert all(len(shown) == 1 for shown in samples)  # the page gets the HTML column only
    dep = next(d for d in config["dependencies"] if [cards["id"], "select"] in d["targets"])
    assert dep["outputs"] == [_elem(config, "chat-character")["id"]]  # shared.gradio['character_menu']
    assert _picked(started, config, samples, "Gardener") == "Gardener"


def test_a_list_of_samples_returned_to_a_gallery_dataset_becomes_its_samples(started: RunningApp) -> None:
    """Upstream's filter returns the matching ``[card_html, name]`` samples; the page gets them as the
    Dataset's new samples, read from the characters folder now (a character added after start-up is
    there), and a card picked among them still gives its name."""
    (started.data_dir / "characters" / "Baker.yaml").write_text("name: Baker\ncontext: Baker bakes bread.\n")
    config = httpx.get(f"{started.url}/config", timeout=60).json()
    box = _elem(config, "tgw-gallery-filter")
    for text, names in (("gard", ["Gardener"]), ("bak", ["Baker"])):
        update = _event(started, config, box["id"], "change", [text], None)
        assert isinstance(update, dict) and update.get("__type__") == "update", update
        samples = update["samples"]
        assert [shown[0] for shown in samples] == [f'<div class="tgw-card">{n}</div>' for n in names]
        assert _picked(started, config, samples, names[0]) == names[0]


def test_gr_dataset_is_gradios_own_again_after_an_upstream_ui_even_one_that_fails() -> None:
    import gradio as gr

    from webui.compat.gradio_compat import upstream_components

    original = gr.Dataset
    with pytest.raises(RuntimeError), upstream_components():
        assert gr.Dataset is not original
        raise RuntimeError("ui() failed")
    assert gr.Dataset is original
