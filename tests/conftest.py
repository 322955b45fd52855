"""Shared paths and a CLI runner for the spec, compiler and CLI tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.compiler.driver import Resolved, load_source

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OK_SPECS = sorted((DATA / "ok").glob("*.yaml"))
ERR_SPECS = sorted((DATA / "err").glob("*.yaml"))
EXAMPLES = sorted(ROOT.glob("examples/*/kvc.yaml"))


def _forget_cached_results() -> None:
    """Clear every functools cache defined in kvc or in the tests (emitted files,
    parsed documents, resolved specs, kvc's own memoised helpers), and yamlout's."""
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in {"kvc", "tests"}:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
    yamlout = sys.modules.get("kvc.backends.yamlout")
    if yamlout is not None:  # the fast writer's memo of how ruamel spells each scalar
        yamlout._fast = yamlout._FastWriter()


def _mutmut_stats() -> bool:
    """mutmut's traced first run, which records the tests that call each function."""
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Each session computes its own results. mutmut runs every mutant as a new
    session in a process forked from one whose sessions filled the caches with the
    unmutated code's results (scripts/mutation.sh)."""
    _forget_cached_results()


@pytest.fixture(autouse=True)
def _uncached_under_mutmut_stats() -> None:
    """In mutmut's traced run every test computes what it reads: a cached result
    would credit the code behind it to the first test that asked for it only, and
    mutmut would run that code's mutants against that one test."""
    if _mutmut_stats():
        _forget_cached_results()


def per_module(fixture_name: str, config: pytest.Config) -> str:
    """Scope of a fixture computed once per module: once per test in mutmut's
    traced run, for the reason given in ``_uncached_under_mutmut_stats``."""
    return "function" if _mutmut_stats() else "module"


@pytest.fixture(autouse=True)
def _no_compile_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests compile for real (a patched emitter must not be served from the cache) and
    never write into the user's cache; tests/test_cache.py turns it on, in a tmp dir."""
    monkeypatch.setenv("KVC_NO_CACHE", "1")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def resolve_text(text: str, name: str = "kvc.yaml") -> Resolved:
    """Load and resolve a spec given as text (positions use ``name``)."""
    return load_source(text.encode(), name)
