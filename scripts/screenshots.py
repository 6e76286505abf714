"""Regenerate the UI screenshots in docs/images/: each tab at desktop (1400×900) and phone (390×844) size.

    python scripts/screenshots.py [--out docs/images] [--tabs Chat,Model]

Starts the app (``python app.py``) on the embedded model with a fresh data folder holding two sample
characters, has one short chat with it, then captures each tab in Debian's chromium (Playwright;
never ``playwright install``). Needs no network. Takes a minute or two on a small machine.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from webui.chat.character import Character  # noqa: E402
from webui.chat.characters import CharacterLibrary  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
TABS = ("Chat", "Notebook", "Characters", "Parameters", "Model", "Training", "Extensions")
SAMPLES = (
    ("Ada", "A patient mathematician who explains with small examples.", (64, 120, 200), ["math", "teacher"]),
    ("Captain Mora", "The captain of a river boat; tells stories of every town on the river.", (200, 110, 60),
     ["adventure"]),
)


def avatar(color: tuple[int, int, int], letter: str) -> bytes:
    """A plain round avatar with the character's initial (drawn here: nothing is downloaded)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((8, 8, 248, 248), fill=(*color, 255))
    draw.text((128, 128), letter, fill=(255, 255, 255, 255), anchor="mm", font_size=120)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def seed(data_dir: Path) -> None:
    library = CharacterLibrary([data_dir / "characters"])
    for name, description, color, tags in SAMPLES:
        library.save(Character(name=name, description=description, first_mes=f"Hello, I am {name}.", tags=tags,
                               avatar_png=avatar(color, name[0])))


def start(data_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (data_dir.parent / "app.log").open("w")
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), "--data-dir", str(data_dir)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited; see {log.name}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the app did not start in time")


def wait(predicate, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit("timed out")


def one_chat(page) -> None:  # type: ignore[no-untyped-def]
    """Send one message and wait for the stored reply (and its speed line)."""
    page.fill("#chat-input textarea", "Give me one tip for learning to cook.")
    page.click("#send")
    wait(lambda: page.inner_text("#reply-stats").startswith("Output generated"), timeout=300)
    page.fill("#chat-input textarea", "And one more?")  # the token counter shows the typed message
    wait(lambda: "tokens" in page.inner_text("#token-count"), timeout=60)


def open_tab(page, name: str) -> bool:  # type: ignore[no-untyped-def]
    """Show tab ``name`` (from Gradio's "More tabs" menu on a narrow page); False if there is none."""
    tabs = page.locator(".tab-wrapper").first  # the app's own tabs (a tab may hold tabs of its own)
    tab = tabs.locator(f"[role=tablist] button[role=tab]:text-is('{name}')")
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return True
    more = tabs.locator(".overflow-menu button[aria-label='More tabs']")
    item = tabs.locator(f".overflow-dropdown button:text-is('{name}')")
    if not more.count() or not item.count():
        return False
    more.click()
    item.click()
    return True


def capture(browser, url: str, out: Path, tabs: list[str]) -> None:  # type: ignore[no-untyped-def]
    for size, (width, height) in SIZES.items():
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        page.wait_for_selector("#chat-input textarea")
        wait(lambda: "SmolLM2" in page.inner_text("#model-info"))
        if size == "desktop":
            one_chat(page)
            page.mouse.move(500, 400)  # over the chat: the buttons of the message under the pointer show
        time.sleep(1.0)
        for tab in tabs:
            if not open_tab(page, tab):
                print(f"no tab {tab}; skipped")
                continue
            time.sleep(1.5)
            page.evaluate("window.scrollTo(0, 0)")
            path = out / f"{tab.lower()}-{size}.png"
            page.screenshot(path=str(path))
            print("wrote", path.relative_to(REPO) if path.is_relative_to(REPO) else path)
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--tabs", default=",".join(TABS), help="comma-separated tab names")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="webui-shots-"))
    data = work / "data"
    seed(data)
    proc, url = start(data)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            capture(browser, url, args.out, [t.strip() for t in args.tabs.split(",") if t.strip()])
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
