"""Shared paths and a CLI runner for the spec, compiler and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.compiler.driver import Resolved, load_source

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OK_SPECS = sorted((DATA / "ok").glob("*.yaml"))
ERR_SPECS = sorted((DATA / "err").glob("*.yaml"))
EXAMPLES = sorted(ROOT.glob("examples/*/kvc.yaml"))


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
