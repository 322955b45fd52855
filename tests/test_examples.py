"""The checked-in compiled output of every example is exactly what kvc produces now."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*/kvc.yaml"))


def test_there_are_examples() -> None:
    names = {spec.parent.name for spec in EXAMPLES}
    assert {"minimal", "multi-distro"} <= names


@pytest.mark.parametrize("backend", ["github", "circleci"])
@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_output_is_current(spec: Path, backend: str) -> None:
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", backend, "--check"])
    assert result.exit_code == 0, (
        f"{result.output}\nrefresh with: kvc compile {spec.relative_to(ROOT)} --backend {backend}")


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_validates(spec: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
