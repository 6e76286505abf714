"""Regenerate requirements.lock: the exact versions pip resolves today for requirements-test.txt.

requirements.txt applies the lock as constraints (its ``-c requirements.lock`` line), so both README
commands install these versions. This script resolves the readable requirement files *without* the
old lock (``pip install --dry-run --ignore-installed --report``: nothing is installed) and writes one
``name==version`` line per package. Local version labels such as ``+cpu`` are dropped, so the CUDA
build of the same torch release satisfies the lock on a GPU machine.

    python scripts/lock.py            # rewrite requirements.lock
    python scripts/lock.py --check    # exit 1 if requirements.lock differs from a fresh resolution
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SOURCES = ("requirements.txt", "requirements-test.txt")
HEADER = """\
# Exact versions of everything requirements-test.txt installs (runtime and test extras), resolved
# by `python scripts/lock.py` on Python {python}. requirements.txt applies this file as constraints
# (`-c requirements.lock`), so both README commands install exactly these versions; a package
# listed here but not required (a test extra, on a runtime-only install) is not installed.
"""


def resolve() -> dict[str, str]:
    """{normalized name: version} that pip would install today, ignoring the current lock."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in SOURCES:
            text = (ROOT / name).read_text(encoding="utf-8")
            lines = [line for line in text.splitlines() if not line.strip().startswith("-c ")]
            (Path(tmp) / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--report", str(report), "-r", str(Path(tmp) / "requirements-test.txt")],
            check=True,
        )
        data = json.loads(report.read_text(encoding="utf-8"))
    pins: dict[str, str] = {}
    for item in data["install"]:
        meta = item["metadata"]
        pins[meta["name"].lower().replace("_", "-")] = meta["version"].split("+", 1)[0]
    return dict(sorted(pins.items()))


def render(pins: dict[str, str]) -> str:
    python = ".".join(map(str, sys.version_info[:2]))
    return HEADER.format(python=python) + "".join(f"{name}=={version}\n" for name, version in pins.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with requirements.lock instead of writing it")
    args = parser.parse_args(argv)
    text = render(resolve())
    if args.check:
        current = LOCK.read_text(encoding="utf-8") if LOCK.is_file() else ""
        if current != text:
            print("requirements.lock is out of date: run python scripts/lock.py", file=sys.stderr)
            return 1
        print("requirements.lock is up to date")
        return 0
    LOCK.write_text(text, encoding="utf-8")
    print(f"wrote {LOCK.name}: {text.count(chr(10)) - HEADER.count(chr(10))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
