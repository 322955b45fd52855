"""sysprep.commands through build.sh and the real virt-customize, in order, verbatim."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import STAGES, TCG_ENV, Server, require, run, sha256_file

pytestmark = pytest.mark.integration

# Survives only if nothing on the runner evaluated it (virt-customize writes it as is).
LITERAL = "quote $(not run) `not run` \"dq\" {braces}"
COMMANDS: list[tuple[str, str | None]] = [
    ("run-command", "printf 'first\\n' > /etc/kvc-order; touch /etc/kvc-delete-me"),
    ("write", f"/etc/kvc-written:{LITERAL}"),
    # Runs after write, so it sees the file: proves the order is kept.
    ("run-command", "test -f /etc/kvc-written && echo saw-write > /etc/kvc-saw-write"),
    ("append-line", "/etc/kvc-order:second"),
    ("edit", "/etc/kvc-order:s/^first$/FIRST/"),
    ("mkdir", "/etc/kvc-dir"),
    ("copy-in", "payload.txt:/etc/kvc-dir"),
    ("delete", "/etc/kvc-delete-me"),
]


def test_commands_reach_the_image_in_order(debian_fixture: Path, http_server: Server,
                                           scratch: Path) -> None:
    require("curl", "qemu-img", "virt-customize", "virt-sysprep", "virt-sparsify", "guestfish")
    served = http_server.root / "commands" / "debian.img.gz"
    served.parent.mkdir(exist_ok=True)
    if not served.exists():
        served.write_bytes(debian_fixture.read_bytes())
    (scratch / "payload.txt").write_text("copied in\n")
    env = {**os.environ, **TCG_ENV,
           "KVC_URL": f"{http_server.url}/commands/debian.img.gz",
           "KVC_CHECKSUM": "sha256:" + sha256_file(served),
           "KVC_ARCH": "amd64", "KVC_CONVERT": "true", "KVC_SYSPREP_ENABLED": "true",
           "KVC_SYSPREP_OPERATIONS": "tmp-files", "KVC_GUEST_NETWORK": "false",
           "KVC_OUTPUT": "out/disk.qcow2", "KVC_RETRY_DELAY": "1",
           "KVC_COMMANDS_COUNT": str(len(COMMANDS))}
    for i, (op, arg) in enumerate(COMMANDS, 1):
        env[f"KVC_COMMAND_{i}_OP"] = op
        if arg is not None:
            env[f"KVC_COMMAND_{i}_ARG"] = arg
    result = subprocess.run(["bash", str(STAGES / "build.sh")], env=env, cwd=scratch,
                            capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    disk = scratch / "out" / "disk.qcow2"
    out = run(["guestfish", "--ro", "-a", str(disk), "-i",
               "cat", "/etc/kvc-order", ":", "echo", "@@", ":",
               "cat", "/etc/kvc-written", ":", "echo", "@@", ":",
               "cat", "/etc/kvc-saw-write", ":", "echo", "@@", ":",
               "cat", "/etc/kvc-dir/payload.txt", ":", "echo", "@@", ":",
               "exists", "/etc/kvc-delete-me"]).stdout
    order, written, saw, payload, deleted = [p.removesuffix("\n") for p in out.split("@@\n")]
    assert order == "FIRST\nsecond\n"
    assert written == LITERAL
    assert saw == "saw-write\n"
    assert payload == "copied in\n"
    assert deleted.strip() == "false"
