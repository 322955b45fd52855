"""Every shipped shell script passes shellcheck."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.gate import require

from .conftest import REPO, STAGES

SCRIPTS = [
    *sorted(STAGES.glob("*.sh")),
    REPO / "scripts" / "install-integration-deps.sh",
    REPO / "scripts" / "mutation.sh",
    REPO / "tests" / "integration" / "fixture" / "build-fixture.sh",
]


def test_all_stage_scripts_are_present() -> None:
    names = {p.name for p in STAGES.glob("*.sh")}
    assert {"lib.sh", "build.sh", "containerize.sh", "test.sh", "publish.sh"} <= names
    assert (STAGES / "Containerfile").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(Path(p).relative_to(REPO)))
def test_shellcheck(script: Path) -> None:
    require("shellcheck")
    result = subprocess.run(
        ["shellcheck", "--external-sources", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        check=False,
        cwd=script.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
