"""What an idle app costs: percent of one core with no request and no page open, then with one idle
page open, for the app as shipped and for the same app with Gradio's default queue polling (1 ms),
interleaved, in one run.

    python bench/idle.py [--rounds 3] [--seconds 15]

Target (issue 12): <= 1% of a core with no page open, <= 2% with an idle page open.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser_utils import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.idle_cpu import cpu_percent_over  # noqa: E402
from tests.support.server_utils import free_port  # noqa: E402

# The "Gradio default" variant: the same app.py, with the queue left at Gradio's 1 ms poll.
GRADIO_DEFAULT = (
    "import runpy, sys, webui.server as s; s.quiet_when_idle = lambda blocks: None; "
    "sys.argv = ['app.py', *sys.argv[1:]]; runpy.run_path('app.py', run_name='__main__')"
)


def start(variant: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(data_dir)]
    cmd = [sys.executable, "app.py", *args] if variant == "app" else [sys.executable, "-c", GRADIO_DEFAULT, *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{variant} did not start")


def measure(variant: str, seconds: float, browser) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(variant, Path(tmp) / "data")
        try:
            time.sleep(3)
            no_page = cpu_percent_over(proc.pid, seconds)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#chat-input textarea")
            time.sleep(5)
            with_page = cpu_percent_over(proc.pid, seconds)
            page.close()
            return no_page, with_page
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, list[tuple[float, float]]] = {"app": [], "gradio-default": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for r in range(args.rounds):
            for variant in results:  # interleaved
                no_page, with_page = measure(variant, args.seconds, browser)
                results[variant].append((no_page, with_page))
                print(f"round {r + 1} {variant:>15}: no page {no_page:5.2f}%  idle page open {with_page:5.2f}%")
        browser.close()
    print("\nmedian % of one core      no page   idle page open")
    for variant, rows in results.items():
        no_page, with_page = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"{variant:>22}   {no_page:6.2f}   {with_page:8.2f}")
    app_np = statistics.median(r[0] for r in results["app"])
    default_np = statistics.median(r[0] for r in results["gradio-default"])
    print(f"\napp / gradio-default (no page): {app_np / default_np:.2f}  (targets: app <= 1% no page, <= 2% page open)")


if __name__ == "__main__":
    main()
