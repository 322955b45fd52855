"""kvc's table of virt-sysprep operations matches the real tool's list."""

from __future__ import annotations

import pytest

from kvc.compiler.rules import SYSPREP_OPERATIONS
from tests.integration.conftest import TCG_ENV, require, run

pytestmark = pytest.mark.integration


def test_every_real_operation_is_known_to_kvc(monkeypatch: pytest.MonkeyPatch) -> None:
    require("virt-sysprep")
    for name, value in TCG_ENV.items():
        monkeypatch.setenv(name, value)
    listing = run(["virt-sysprep", "--list-operations"], timeout=60).stdout
    real = {line.split()[0] for line in listing.splitlines() if line.strip()}
    assert real, "virt-sysprep listed no operations"
    assert real <= SYSPREP_OPERATIONS, sorted(real - SYSPREP_OPERATIONS)
