"""tests/gate.py: a missing tool skips locally and fails under KVC_REQUIRE_INTEGRATION=1."""

from __future__ import annotations

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


def test_an_unpackaged_tool_skips_even_when_integration_is_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVC_REQUIRE_INTEGRATION", "1")
    with pytest.raises(pytest.skip.Exception, match=f"{ABSENT} is not installed.*no package"):
        gate.unpackaged(ABSENT, "no package")
