"""The codebase's own standards, enforced by the test command: ruff and mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # external tools over the whole tree


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "kvc", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_project_ci_workflow_is_valid_and_zizmor_clean() -> None:
    workflows = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
    assert workflows
    schema = _run("check_jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    zizmor = subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline",
                             "--no-config", *workflows], cwd=ROOT, capture_output=True,
                            text=True, check=False, env=env)
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
