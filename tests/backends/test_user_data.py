"""The generated cloud-init user-data and the VM manifest that reads it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from kvc.backends import buildfiles
from kvc.backends.base import EmitInput
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.spec.models import Backends

SPEC = """\
kvc: 1
registry: ghcr.io/example
defaults:
  test:
    checks: %s
flavors:
  debian:
    arches: [amd64]
    releases:
      - release_version: "12"
        url: "https://example.org/debian-12-{arch}.qcow2"
        release_checksum:
          amd64: "sha256:%s"
"""


# The marker goes to /dev/console and to every serial port that exists.
MARKER = ["sh", "-c", "for d in /dev/console /dev/ttyS0 /dev/ttyAMA0 /dev/hvc0; "
                      "do [ -c \"$d\" ] && printf '\\nkvc-boot-ok\\n' > \"$d\"; done; true"]


def files(tmp_path: Path, checks: str) -> dict[str, str]:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(SPEC % (checks, hashlib.sha256(b"debian-12").hexdigest()))
    pipeline = build_pipeline(load(spec))
    return buildfiles.emit(EmitInput(pipeline=pipeline, spec_name="kvc.yaml", backends=Backends()))


def parse(text: str) -> Any:
    return YAML(typ="safe").load(text)


def test_user_data_always_writes_the_boot_marker_last(tmp_path: Path) -> None:
    text = files(tmp_path, "[boot, guest-agent]")[".kvc/manifests/debian-12.user-data"]
    assert text.startswith("#cloud-config\n")  # cloud-init ignores user-data without it
    document = parse(text)
    assert document["runcmd"] == [["systemctl", "enable", "--now", "qemu-guest-agent"],
                                  MARKER]
    assert "users" not in document


def test_user_data_creates_the_ssh_user_only_for_the_ssh_check(tmp_path: Path) -> None:
    document = parse(files(tmp_path, "[boot, ssh]")[".kvc/manifests/debian-12.user-data"])
    assert document["users"] == ["default", {"name": "kvc", "shell": "/bin/bash",
                                             "ssh_authorized_keys": ["__KVC_SSH_PUBKEY__"]}]
    assert document["runcmd"] == [MARKER]


def test_manifest_reads_user_data_from_a_secret_and_logs_the_console(tmp_path: Path) -> None:
    vm = parse(files(tmp_path, "[boot]")[".kvc/manifests/debian-12.yaml"])
    spec = vm["spec"]["template"]["spec"]
    assert spec["domain"]["devices"]["logSerialConsole"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["cloudinitdisk"]["cloudInitNoCloud"] == {"secretRef": {"name": "kvc-user-data"}}
    disk = volumes["containerdisk"]["containerDisk"]
    assert disk["image"] == "__KVC_IMAGE__"
    assert disk["imagePullSecret"] == "__KVC_PULL_SECRET__"
