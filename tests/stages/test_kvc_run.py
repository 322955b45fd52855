"""`kvc run` executes the compiled stage script with the job's environment."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kvc.cli import main
from tests.stages.conftest import Stubs

SPEC = """\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64]
    releases:
      - release_version: "12"
        url: "https://example.org/debian-{release_version}-{arch}.qcow2"
        release_checksum:
          amd64: "sha256:CHECKSUM"
        sysprep:
          post_commands: ["echo hello > /etc/motd"]
"""


def _offline_dns_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """curl is a stub here: let kvc run's name-resolution check pass offline."""
    monkeypatch.setattr("kvc.commands.run.socket.getaddrinfo", lambda *args: [])


def _run_build(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, download: bytes) -> Result:
    """`kvc run` the build of a spec pinned to the checksum of b"disk"."""
    source = stubs.root / "upstream.qcow2"
    source.write_bytes(download)
    spec = stubs.root / "kvc.yaml"
    spec.write_text(SPEC.replace("CHECKSUM", hashlib.sha256(b"disk").hexdigest()))
    for name, value in {**stubs.env, "KVC_STUB_CURL_SRC": str(source)}.items():
        monkeypatch.setenv(name, value)
    _offline_dns_is_fine(monkeypatch)
    return CliRunner().invoke(main, ["run", str(spec), "debian/12/amd64", "--stage", "build"])


def test_kvc_run_build_uses_the_compiled_script_and_env(
        stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_build(stubs, monkeypatch, b"disk")
    assert result.exit_code == 0, result.output
    assert (stubs.root / ".kvc/stages/build.sh").is_file()
    assert (stubs.root / "artifacts/build/debian-12/amd64/disk.qcow2").is_file()
    curl = stubs.calls("curl")[0]
    assert curl.argv[-1] == "https://example.org/debian-12-amd64.qcow2"
    assert curl.env["KVC_FINGERPRINT"]
    customize = stubs.calls("virt-customize")[0].argv
    assert customize[customize.index("--run-command") + 1] == "echo hello > /etc/motd"


def test_kvc_run_reports_the_scripts_failure(
        stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_build(stubs, monkeypatch, b"tampered")
    assert result.exit_code != 0
    assert not Path(stubs.root / "artifacts/build/debian-12/amd64/disk.qcow2").exists()


def test_kvc_run_keeps_the_compiled_tree_current(
        stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec below the repository root: run must name it as compile does."""
    source = stubs.root / "upstream.qcow2"
    source.write_bytes(b"disk")
    spec = stubs.root / "images" / "kvc.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC.replace("CHECKSUM", hashlib.sha256(b"disk").hexdigest()))
    for name, value in {**stubs.env, "KVC_STUB_CURL_SRC": str(source)}.items():
        monkeypatch.setenv(name, value)
    _offline_dns_is_fine(monkeypatch)
    runner = CliRunner()
    compile_args = ["compile", str(spec), "--backend", "github", "--out", str(stubs.root)]
    assert runner.invoke(main, compile_args).exit_code == 0
    result = runner.invoke(main, ["run", str(spec), "debian/12/amd64", "--stage", "build",
                                  "--workdir", str(stubs.root)])
    assert result.exit_code == 0, result.output
    check = runner.invoke(main, [*compile_args, "--check"])
    assert check.exit_code == 0, check.output
