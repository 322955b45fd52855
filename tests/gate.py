"""Skip a test whose tools are missing, or fail it under KVC_REQUIRE_INTEGRATION=1.

Every test that needs something outside Python (Debian tools, root, a usable
/dev/kvm) asks here, inside the test, never through a ``skipif`` mark: a
``skipif`` would skip silently on CI, where KVC_REQUIRE_INTEGRATION=1 says
everything must be there and every such test must run.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "run scripts/install-integration-deps.sh"


def required() -> bool:
    return os.environ.get("KVC_REQUIRE_INTEGRATION") == "1"


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under KVC_REQUIRE_INTEGRATION=1 fail with it instead."""
    if required():
        pytest.fail(f"{reason} (KVC_REQUIRE_INTEGRATION=1 requires it)")
    pytest.skip(reason)


def require(*tools: str, root: bool = False) -> None:
    """Every tool on PATH (and root, if asked), or skip/fail."""
    problems = []
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        problems.append(f"missing tools: {', '.join(missing)}")
    if root and os.geteuid() != 0:
        problems.append("needs root")
    if problems:
        unavailable("; ".join(problems) + f" ({INSTALL_HINT})")


def unpackaged(tool: str, why: str) -> None:
    """Skip, even under KVC_REQUIRE_INTEGRATION=1, a test of a tool that no package
    registry this project may use ships (``why``), so CI cannot have it either. Such a
    test runs wherever a developer has the tool; keep a check that needs no tool
    beside it."""
    pytest.skip(f"{tool} is not installed here and cannot be installed by "
                f"scripts/install-integration-deps.sh: {why}")
