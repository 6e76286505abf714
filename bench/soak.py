"""Crash soak: kill -9 the app twenty times while replies stream, restart it, check nothing is lost.

Each round starts ``python app.py`` on the embedded model in one data dir (the same one every
round), checks every reply saved so far, finishes one short turn, then streams a long reply and
sends the server SIGKILL a random 0-1.5 s after the client has a random 20-200 characters of it;
rounds alternate between the UI (the page's
requests: ``prepare``, then the ``live-reply`` stream) and the API (``/v1/chat/completions`` with
``stream`` and ``save``). After each kill: ``PRAGMA integrity_check`` and the killed reply as stored
against what the client had received. A last start checks everything once more.

    python bench/soak.py [--kills 20] [--seed 0] [--data-dir DIR]

Prints the kills, the completed turns and how often they were checked, each partial reply (stored
/ received characters) and the largest lag of a stored partial behind its client (seconds,
characters), and the integrity results. Target: no problem, every integrity_check "ok", lag <= 1 s
(the flush interval; ``tests/integration/test_soak.py`` allows 0.5 s more for a loaded machine).
Exits 1 on any problem or a lag over 1.5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webui.privacy import apply_private_defaults  # noqa: E402

apply_private_defaults()

from tests.support.soak import soak  # noqa: E402
from webui.chat.service import FLUSH_SECONDS  # noqa: E402

LAG_LIMIT_SECONDS = FLUSH_SECONDS + 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="picks the kill moments")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        started = time.perf_counter()
        result = soak(data_dir, args.kills, seed=args.seed, log=lambda line: print(line, flush=True))
        print(f"\nsoak: {args.kills} kills in {time.perf_counter() - started:.0f} s, data dir {data_dir}")
        for line in result.summary():
            print(line)
    lag_seconds, _ = result.max_lag()
    ok = not result.problems and all(r == "ok" for r in result.integrity) and lag_seconds <= LAG_LIMIT_SECONDS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
