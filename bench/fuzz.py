"""Fuzz every loader and importer with N hypothesis examples each; print the outcomes per loader.

    python bench/fuzz.py                      # 10,000 examples per loader
    python bench/fuzz.py --examples 500 --only card-png --only api

Each input must either load or raise the project's user-facing error (``UserFacingError``; for the
API a 4xx with the JSON error body). The table counts ``loaded`` / ``user-facing error`` /
``other exception`` per loader and prints the first few tracebacks of "other"; the exit status is
1 when any loader had one. The inputs are the strategies of ``tests/support/fuzz_inputs.py``, which
the default test suite runs with a small budget (``tests/unit/test_fuzz_*.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.support import fuzz_api as fa  # noqa: E402
from tests.support import fuzz_inputs as fi  # noqa: E402
from webui.privacy import apply_private_defaults  # noqa: E402

SHOW_TRACEBACKS = 3


def run_target(name: str, inputs: Any, attempt: Any, examples: int, seed: int | None) -> tuple[Counter, list[str]]:
    """Run ``attempt(value) -> (outcome, detail)`` on ``examples`` generated inputs (no shrinking)."""
    counts: Counter = Counter()
    others: list[str] = []

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=seed is None)
    @given(inputs)
    def body(value: Any) -> None:
        kind, detail = attempt(value)
        counts[kind] += 1
        if kind == fi.OTHER and len(others) < SHOW_TRACEBACKS:
            others.append(f"input: {fi.describe(value)}\n{detail}")

    if seed is not None:
        from hypothesis import seed as with_seed

        body = with_seed(seed)(body)
    body()
    return counts, others


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="examples per loader (default 10000)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these loaders")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: derandomized, repeatable)")
    args = parser.parse_args(argv)
    apply_private_defaults()
    names = [t.name for t in fi.file_targets()] + ["api"]
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown loader(s) {', '.join(sorted(unknown))}; choose from {', '.join(names)}")
    rows: list[tuple[str, Counter, float]] = []
    failures: list[tuple[str, list[str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in fi.file_targets():
            if args.only and target.name not in args.only:
                continue
            folder = Path(tmp) / target.name
            folder.mkdir()
            work = fi.Workspace(folder)
            start = time.perf_counter()
            counts, others = run_target(target.name, target.inputs,
                                        lambda v, t=target, w=work: fi.outcome(t, v, w), args.examples, args.seed)
            rows.append((target.name, counts, time.perf_counter() - start))
            failures.append((target.name, others))
            print(f"{target.name}: done", file=sys.stderr, flush=True)
        if not args.only or "api" in args.only:
            start = time.perf_counter()
            with fa.api_client(Path(tmp) / "api") as client:
                counts, others = run_target("api", fa.api_requests(), lambda v: fa.post(client, v),
                                            args.examples, args.seed)
            rows.append(("api", counts, time.perf_counter() - start))
            failures.append(("api", others))
    print(f"\n{'loader':<26}{'examples':>9}{'loaded':>9}{'user-facing error':>19}{'other exception':>17}{'seconds':>9}")
    for name, counts, seconds in rows:
        total = sum(counts.values())
        print(f"{name:<26}{total:>9}{counts[fi.LOADED]:>9}{counts[fi.USER_ERROR]:>19}{counts[fi.OTHER]:>17}"
              f"{seconds:>9.1f}")
    bad = [(name, others) for name, others in failures if others]
    for name, others in bad:
        print(f"\n=== {name}: first {len(others)} 'other' outcome(s)")
        for text in others:
            print(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
