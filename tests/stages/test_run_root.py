"""`kvc run` without --workdir runs in the tree `kvc compile --out .` wrote."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from tests.stages.conftest import Stubs
from tests.stages.test_kvc_run import SPEC


def test_run_finds_the_tree_compiled_at_the_root(stubs: Stubs,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (stubs.root / ".git").mkdir()
    spec = stubs.root / "ci" / "kvc.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC.replace("CHECKSUM", hashlib.sha256(b"disk").hexdigest()))
    source = stubs.root.parent / "upstream.qcow2"
    source.write_bytes(b"disk")
    for name, value in {**stubs.env, "KVC_STUB_CURL_SRC": str(source)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("kvc.commands.run.socket.getaddrinfo", lambda *args: [])
    monkeypatch.chdir(stubs.root)
    runner = CliRunner()
    assert runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "github", "--out", "."]
                         ).exit_code == 0
    result = runner.invoke(main, ["run", "ci/kvc.yaml", "debian/12/amd64", "--stage", "build"])
    assert result.exit_code == 0, result.output
    assert (stubs.root / "artifacts/build/debian-12/amd64/disk.qcow2").is_file()
    assert not Path(stubs.root / "ci/.kvc").exists()
    check = runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "github", "--check"])
    assert check.exit_code == 0, check.output
