"""Hostile-input soak: 10,000+ random and mutated specs through the compiler.

The test suite runs a few hundred examples per property; this runs many more
and reports outcome counts and the slowest input, so a regression into a hang
or a traceback shows up before users find it.

    .venv/bin/python benchmarks/fuzz.py [--examples N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz_strategies import compile_or_diagnose, raw_texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=10_000)
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    slowest = (0.0, b"")

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(raw_texts)
    def run(raw: bytes) -> None:
        nonlocal slowest
        start = time.perf_counter()
        outcomes[compile_or_diagnose(raw)] += 1
        elapsed = time.perf_counter() - start
        if elapsed > slowest[0]:
            slowest = (elapsed, raw)

    started = time.perf_counter()
    run()
    total = time.perf_counter() - started
    print(f"examples: {sum(outcomes.values())} in {total:.1f} s")
    print(f"compiled: {outcomes['ok']}  diagnosed: {outcomes['error']}  crashed: 0")
    print(f"slowest: {slowest[0] * 1000:.1f} ms ({len(slowest[1])} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
