"""CLI details a new user meets in the first hour (issue 13, "CLI details")."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main

DIGEST = hashlib.sha512(b"cli details").hexdigest()
SPEC = f"""\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64]
    publish: {{sign: true}}
    releases:
      - release_version: "12"
        url: "https://HOST/debian-12-genericcloud-{{arch}}.qcow2"
        release_checksum: {{amd64: "sha512:{DIGEST}"}}
"""


def _repo(tmp_path: Path, host: str = "cloud.example.org") -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "ci/kvc.yaml").write_text(SPEC.replace("HOST", host))
    return repo


def test_regenerate_hint_of_a_spec_below_the_root_works_as_printed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["compile", str(repo / "ci/kvc.yaml"), "-b", "github",
                                 "--out", str(repo)])
    assert first.exit_code == 0, first.output
    workflow = (repo / ".github/workflows/kvc.yml").read_text()
    hint = next(line for line in workflow.splitlines() if "Regenerate with:" in line)
    assert hint.endswith("kvc compile ci/kvc.yaml --backend github --out .")
    monkeypatch.chdir(repo)
    again = runner.invoke(main, hint.split("Regenerate with: kvc ", 1)[1].split())
    assert again.exit_code == 0, again.output
    assert "(0 changed)" in again.output
    assert not (repo / "ci/.github").exists()

    check = runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "github", "--check"])
    assert check.exit_code == 0, check.output
    assert check.output.count("\n") == 1
    assert "are current" in check.output


def test_drift_names_the_exact_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo)
    runner = CliRunner()
    assert runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "circleci",
                                "--out", "."]).exit_code == 0
    config = repo / ".circleci/config.yml"
    config.write_text(config.read_text() + "# hand edit\n")
    check = runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "circleci", "--check"])
    assert check.exit_code == 1
    assert "run: kvc compile ci/kvc.yaml --backend circleci --out .\n" in check.output


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = CliRunner().invoke(main, ["compile", str(repo / "ci/kvc.yaml"), "-b", "jenkins"])
    assert result.exit_code == 2
    assert "Usage:" in result.output and "'jenkins'" in result.output


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "kvc", "explain", str(repo / "ci/kvc.yaml"),
                             "debian/12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before kvc writes, like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_run_offline_fails_fast_with_one_line(tmp_path: Path) -> None:
    repo = _repo(tmp_path, host="kvc-offline-test.invalid")  # .invalid never resolves
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(repo / "ci/kvc.yaml"), "debian/12/amd64",
                                       "--stage", "build", "--workdir", str(tmp_path / "w")])
    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    assert result.output.startswith("kvc: error: cannot resolve kvc-offline-test.invalid (KVC_URL)")
    assert result.output.count("\n") == 1


def test_plan_shows_image_reference_and_signing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = CliRunner().invoke(main, ["plan", str(repo / "ci/kvc.yaml")])
    header, row = result.output.splitlines()[:2]
    assert "IMAGE " in header and "SIGNED" in header
    assert "ghcr.io/example/debian" in row and " yes " in row


def test_publish_dry_run_lists_the_secrets(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    monkeypatch.delenv("KVC_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("KVC_REGISTRY_USER", "me")
    result = CliRunner().invoke(main, ["run", str(repo / "ci/kvc.yaml"), "debian/12",
                                       "--stage", "publish", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert ("# secrets this job reads from the environment: KVC_REGISTRY_USER, "
            "KVC_REGISTRY_PASSWORD (not set here: KVC_REGISTRY_PASSWORD)") in result.output
