"""Skip a test whose tools are missing, or fail it under KVC_REQUIRE_INTEGRATION=1.

Every test that needs something outside Python (Debian tools, root, a usable
/dev/kvm) asks here, inside the test, never through a ``skipif`` mark: a
``skipif`` would skip silently on CI, where KVC_REQUIRE_INTEGRATION=1 says
everything must be there and every such test must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def installed(tool: str, local: Path) -> str:
    """The path of ``tool``: ``local`` (where scripts/install-integration-deps.sh puts
    tools no Debian 12 package ships, under .tools/) if it is executable, else ``tool``
    on PATH; neither, skip or fail like :func:`require`."""
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(tool)
    if found is None:
        unavailable(f"missing tools: {tool} (not at {local} nor on PATH; {INSTALL_HINT})")
    assert found is not None  # unavailable() does not return
    return found
