"""selinux_relabel for real: the appliance gets setfiles, and a fallback fails the build.

The Debian fixture is made to look like an SELinux guest to libguestfs
(/usr/sbin/load_policy, /etc/selinux/config and a file_contexts spec file, the
files libguestfs-common's SELinux_relabel.ml checks), then build.sh's own
customize and check functions run with real virt-customize and guestfish.
On a Debian/Ubuntu host the stock appliance has no setfiles, so without
build.sh's appliance change virt-customize only touches /.autorelabel.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gate import unavailable

from .conftest import STAGES, TCG_ENV, require, run

pytestmark = pytest.mark.integration

SPEC = "/.*\tsystem_u:object_r:default_t:s0\n"
LABEL = "system_u:object_r:default_t:s0"


def policycoreutils_installed() -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "policycoreutils"],
                            capture_output=True, text=True, check=False)
    return "install ok installed" in result.stdout


@pytest.fixture(scope="module")
def selinux_guest(debian_fixture: Path, module_scratch: Path) -> Iterator[Path]:
    require("virt-customize", "guestfish", "dpkg-query")
    if not policycoreutils_installed():
        unavailable("policycoreutils is not installed (build.sh installs it on CI for a relabel)")
    guest = module_scratch / "selinux-guest.img"
    with gzip.open(debian_fixture, "rb") as src, guest.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    run(["virt-customize", "-a", str(guest), "--no-network",
         "--write", "/usr/sbin/load_policy:#!/bin/sh",
         "--write", "/etc/selinux/config:SELINUX=permissive\nSELINUXTYPE=targeted\n",
         "--mkdir", "/etc/selinux/targeted/contexts/files",
         "--write", f"/etc/selinux/targeted/contexts/files/file_contexts:{SPEC}"], timeout=900)
    yield guest


def relabel(guest: Path, scratch: Path, with_appliance: bool) -> subprocess.CompletedProcess[str]:
    """build.sh's customize + check on a copy of the guest, with or without
    its appliance change; each run builds its appliance in its own cache."""
    image = scratch / "disk.img"
    shutil.copyfile(guest, image)
    (scratch / "cache").mkdir()
    setup = "guestfs_selinux_appliance" if with_appliance else ":"
    script = (f'. "$1"; WORK="$2"; {setup}; customize "$3"; check_relabelled "$3"; '
              'guestfish --ro -a "$3" -i getxattr /etc/hostname security.selinux')
    env = {**os.environ, **TCG_ENV, "KVC_SELINUX_RELABEL": "true", "KVC_GUEST_NETWORK": "false",
           "LIBGUESTFS_CACHEDIR": str(scratch / "cache")}
    env.pop("LIBGUESTFS_PATH", None)
    return subprocess.run(["bash", "-c", script, "bash", str(STAGES / "build.sh"),
                           str(scratch), str(image)],
                          env=env, capture_output=True, text=True, timeout=1800, check=False)


def test_the_relabel_happens_at_build_time(selinux_guest: Path, scratch: Path) -> None:
    result = relabel(selinux_guest, scratch, with_appliance=True)
    assert result.returncode == 0, result.stderr
    assert "SELinux labels set at build time" in result.stderr
    assert LABEL in result.stdout  # setfiles labelled the guest


def test_a_first_boot_relabel_fails_the_build(selinux_guest: Path, scratch: Path) -> None:
    """The stock Debian/Ubuntu appliance (no setfiles) falls back to /.autorelabel."""
    result = relabel(selinux_guest, scratch, with_appliance=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SELinux relabel requested but not done" in result.stderr
