"""tests/gate.py: a missing tool skips locally and fails under KVC_REQUIRE_INTEGRATION=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import gate

ABSENT = "kvc-no-such-tool"


def test_missing_tool_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVC_REQUIRE_INTEGRATION", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT):
        gate.require("sh", ABSENT)


def test_missing_tool_fails_when_integration_is_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVC_REQUIRE_INTEGRATION", "1")
    with pytest.raises(pytest.fail.Exception, match=ABSENT):
        gate.require(ABSENT)


def test_present_tools_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVC_REQUIRE_INTEGRATION", "1")
    gate.require("sh")


def test_root_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVC_REQUIRE_INTEGRATION", "1")
    monkeypatch.setattr(gate.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="needs root"):
        gate.require("sh", root=True)


def test_an_installed_tool_prefers_the_local_copy(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KVC_REQUIRE_INTEGRATION", raising=False)
    local = tmp_path / ABSENT
    local.write_text("#!/bin/sh\n")
    local.chmod(0o755)
    assert gate.installed(ABSENT, local) == str(local)
    local.chmod(0o644)  # not executable: PATH is next
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=f"missing tools: {ABSENT}"):
        gate.installed(ABSENT, local)


def test_an_absent_local_tool_fails_when_integration_is_required(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KVC_REQUIRE_INTEGRATION", "1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=f"missing tools: {ABSENT}"):
        gate.installed(ABSENT, tmp_path / ABSENT)
    monkeypatch.setenv("PATH", f"{tmp_path}/bin")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / ABSENT).write_text("#!/bin/sh\n")
    (tmp_path / "bin" / ABSENT).chmod(0o755)
    assert gate.installed(ABSENT, tmp_path / ABSENT) == str(tmp_path / "bin" / ABSENT)
