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


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def resolve_text(text: str, name: str = "kvc.yaml") -> Resolved:
    """Load and resolve a spec given as text (positions use ``name``)."""
    return load_source(text.encode(), name)
