"""The shipped pre-commit hooks, run by the real pre-commit against a real git repo.

pre-commit installs the hook into its own virtualenv (from this checkout, its
dependencies from the package registry), so this test is slow and lives with
the integration tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _try_repo(repo: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files"],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=900)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    shutil.copy(ROOT / "examples/minimal/kvc.yaml", path / "kvc.yaml")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "test@example.invalid")
    _git(path, "config", "user.name", "test")
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "spec only")
    return path


def test_hooks_fail_on_stale_tree_fix_it_then_pass(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "pre-commit-home"
    check = _try_repo(repo, "kvc-check", home)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "missing: .github/workflows/kvc.yml" in check.stdout
    assert not (repo / ".github").exists(), "the check hook must not write"

    fix = _try_repo(repo, "kvc-compile", home)
    assert fix.returncode == 1, fix.stdout + fix.stderr  # files were modified by the hook
    assert (repo / ".github/workflows/kvc.yml").is_file()
    assert (repo / ".kvc/stages/build.sh").is_file()
    _git(repo, "add", "-A")

    for hook in ("kvc-compile", "kvc-check"):
        again = _try_repo(repo, hook, home)
        assert again.returncode == 0, again.stdout + again.stderr

    spec = repo / "kvc.yaml"
    spec.write_text(spec.read_text().replace('release_name: bookworm', 'release_name: trixie'))
    _git(repo, "add", "-A")
    stale = _try_repo(repo, "kvc-check", home)
    assert stale.returncode == 1
    assert "stale: .github/workflows/kvc.yml" in stale.stdout
