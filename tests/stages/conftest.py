"""Fixtures for running stage scripts against recording stub tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = REPO / "kvc" / "stages"
STUB = Path(__file__).resolve().parent / "stub.py"
# The command line that runs the recorder: -S skips site (no site-packages needed, and
# most of the start-up time of a call; see stub.py).
RECORD = f'"{sys.executable}" -S "{STUB}"'

# Tools the stage scripts may call; all are stubbed so no test touches the
# real ones (and none needs them installed).
STUBBED = (
    "curl",
    "qemu-img",
    "virt-customize",
    "virt-sysprep",
    "virt-sparsify",
    "virt-resize",
    "guestfish",
    "make",
    "docker",
    "cosign",
    "kind",
    "kubectl",
    "virtctl",
    "sudo",
    "apt-get",
)

# A value that would do damage if any script evaluated it: command
# substitutions, quotes, globs, a newline and a trailing backslash.
HOSTILE_TEMPLATE = (
    "echo 'single' \"double\" $(touch {canary}) `touch {canary}` ; touch {canary}\n"
    "second line with  two  spaces * ? [a] $HOME ${{PATH}} \\"
)


@dataclass
class Call:
    tool: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    stdin: str = ""  # recorded for guestfish only (its script)


@dataclass
class Stubs:
    """Stub tools on PATH plus what they recorded."""

    root: Path
    bin: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, script: str | None = None) -> None:
        """Add a stub (recording by default, or a custom shell script)."""
        body = script or f'exec {RECORD} "{name}" "$@"\n'
        path = self.bin / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)

    def calls(self, tool: str | None = None) -> list[Call]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [Call(**e) for e in entries if tool is None or e["tool"] == tool]

    def files(self, tool: str | None = None) -> list[dict[str, Any]]:
        """Local files kubectl/virtctl were given, with their content at the time."""
        path = Path(str(self.log) + ".files.jsonl")
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in entries if tool is None or e["tool"] == tool]

    def tools(self) -> list[str]:
        return [c.tool for c in self.calls()]

    def run(
        self, script: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **(env or {})}
        return subprocess.run(
            ["bash", str(STAGES / script)],
            env=full_env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run_emitted(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run a script kvc compiled into the repository, as CI would."""
        return subprocess.run(
            ["bash", script],
            env={**self.env, **env},
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def stubs(tmp_path: Path) -> Iterator[Stubs]:
    root = tmp_path / "repo"
    root.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    s = Stubs(root=root, bin=bindir, log=tmp_path / "calls.jsonl")
    for name in STUBBED:
        s.add(name)
    # apt-cache reads the host's package lists (over half a second of CPU a call, and an
    # answer that differs between hosts): here every package has a candidate.
    s.add("apt-cache", "echo '  Candidate: 1.0'\n")
    # A CA bundle, so kvc_apt_install adds no ca-certificates whatever the host has.
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text("")
    s.env = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KVC_STUB_LOG": str(s.log),
        "KVC_IMAGE_SLUG": "debian-12",
        "KVC_FLAVOR": "debian",
        "KVC_RELEASE_VERSION": "12",
        "KVC_RELEASE_NAME": "bookworm",
        "KVC_RETRY_DELAY": "0",
        "KVC_CA_BUNDLE": str(bundle),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    yield s


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A file that exists only if some script executed a hostile value."""
    return tmp_path / "PWNED"


@pytest.fixture
def hostile(canary: Path) -> str:
    return HOSTILE_TEMPLATE.format(canary=canary)


def json_dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
