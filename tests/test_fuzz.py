"""Property: any input compiles or fails with FILE:LINE:COL diagnostics, quickly."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_strategies import compile_or_diagnose, mutated_specs, raw_texts

# Hang guards, not speed targets: benchmarks/fuzz.py measures speed.
HANG_GUARD_SECONDS = 30
pytestmark = pytest.mark.slow  # hundreds of generated specs

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(raw_texts)
def test_random_input_compiles_or_reports(raw: bytes) -> None:
    assert compile_or_diagnose(raw) in {"ok", "error"}


@FAST
@given(mutated_specs())
def test_mutated_specs_compile_or_report(text: str) -> None:
    assert compile_or_diagnose(text.encode()) in {"ok", "error"}


def _timed(raw: bytes) -> tuple[str, float]:
    start = time.perf_counter()
    outcome = compile_or_diagnose(raw)
    return outcome, time.perf_counter() - start


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for index in range(1, 12):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    outcome, seconds = _timed("\n".join(lines).encode())
    assert outcome == "error"
    assert seconds < HANG_GUARD_SECONDS


def test_deep_nesting_and_huge_strings_are_refused_quickly() -> None:
    for raw in (b"a: " + b"[" * 50_000 + b"]" * 50_000,
                b"kvc: 1\nregistry: '" + b"x" * 5_000_000 + b"'\n",
                b"- " * 5_000 + b"x"):
        outcome, seconds = _timed(raw)
        assert outcome == "error"
        assert seconds < HANG_GUARD_SECONDS
