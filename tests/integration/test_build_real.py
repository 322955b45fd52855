"""build.sh for real: download, verify, customize, sysprep, compress, boot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import STAGES, TCG_ENV, Server, require, run, sha256_file

pytestmark = pytest.mark.integration

NOTE = "customized by kvc"
# Reaches the guest shell verbatim; inside single quotes the guest keeps it
# literal, so the file content proves nothing was re-quoted or expanded here.
LITERAL = 'quote $(not run) `not run` "dq" $HOME'
POST_COMMANDS = [
    f"echo '{NOTE}' > /etc/kvc-boot-note",
    f"printf '%s\\n' '{LITERAL}' > /etc/kvc-literal",
    "sed -i 's/^Debian/KVC Debian/' /etc/issue",
    # virt-sysprep runs after this and gives the guest a new machine-id.
    "cp /etc/machine-id /etc/kvc-machine-id-before-sysprep",
]
MAKEFILE = """\
check:
\tqemu-img info --output=json $(DISK) > disk-info.json
\tprintf '%s' "$$GREETING" > greeting.txt
"""


@dataclass
class Built:
    disk: Path
    workdir: Path
    source_bytes: int  # the fixture's raw size before KVC_DISK_SIZE grew it


def gzip_raw_size(path: Path) -> int:
    """A gzip file's uncompressed size, from its trailer (ISIZE, RFC 1952)."""
    with path.open("rb") as f:
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), "little")


def sums_entry(sums: Path, name: str) -> str:
    """The hash for `name` in a GNU-format SHA256SUMS file."""
    for line in sums.read_text().splitlines():
        digest, _, file = line.partition("  ")
        if file.lstrip("*") == name:
            return digest
    raise AssertionError(f"{name} not in {sums}")


def publish_upstream(server: Server, fixture: Path, corrupt: bool) -> str:
    """Serve the fixture plus its SHA256SUMS; optionally corrupt the file."""
    sub = server.root / ("bad" if corrupt else "good")
    sub.mkdir(exist_ok=True)
    served = sub / "debian.img.gz"
    if not served.exists():
        shutil.copyfile(fixture, served)
        (sub / "SHA256SUMS").write_text(f"{sha256_file(fixture)}  debian.img.gz\n")
        if corrupt:
            with served.open("r+b") as f:
                f.seek(served.stat().st_size // 2)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0xFF]))
    return f"{server.url}/{sub.name}"


def build_env(base_url: str, sums_dir: Path, workdir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **TCG_ENV,
        "KVC_IMAGE_SLUG": "debian-12",
        "KVC_FLAVOR": "debian",
        "KVC_RELEASE_VERSION": "12",
        "KVC_ARCH": "amd64",
        "KVC_UNAME_ARCH": "x86_64",
        "KVC_URL": f"{base_url}/debian.img.gz",
        "KVC_CHECKSUM": "sha256:" + sums_entry(sums_dir / "SHA256SUMS", "debian.img.gz"),
        "KVC_DOWNLOAD_IN": "host",
        "KVC_DECOMPRESS": "auto",
        "KVC_CONVERT": "true",
        "KVC_DISK_SIZE": "+256M",
        "KVC_SYSPREP_ENABLED": "true",
        "KVC_SYSPREP_OPERATIONS": "defaults,-ssh-userdir",
        "KVC_GUEST_NETWORK": "false",
        "KVC_POST_COMMANDS_COUNT": str(len(POST_COMMANDS)),
        "KVC_MAKEFILE": "true",
        "KVC_MAKEFILE_DIR": str(workdir / "mk"),
        "KVC_MAKEFILE_TARGET": "check",
        "KVC_VAR_GREETING": "hello 'world' $(id)",
        "KVC_OUTPUT": "artifacts/build/debian-12/amd64/disk.qcow2",
        "KVC_RETRY_DELAY": "1",
    }
    for i, command in enumerate(POST_COMMANDS, start=1):
        env[f"KVC_POST_COMMAND_{i}"] = command
    return env


def run_build(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(STAGES / "build.sh")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def built(debian_fixture: Path, http_server: Server, module_scratch: Path) -> Built:
    require("curl", "qemu-img", "virt-customize", "virt-sysprep", "virt-sparsify", "make")
    workdir = module_scratch
    (workdir / "mk").mkdir()
    (workdir / "mk" / "Makefile").write_text(MAKEFILE)
    base = publish_upstream(http_server, debian_fixture, corrupt=False)
    env = build_env(base, http_server.root / "good", workdir)
    started = time.monotonic()
    result = run_build(env, workdir)
    print(f"build.sh took {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, result.stderr
    return Built(disk=workdir / env["KVC_OUTPUT"], workdir=workdir,
                 source_bytes=gzip_raw_size(debian_fixture))


def test_output_is_a_valid_compressed_qcow2(built: Built) -> None:
    assert sorted(p.name for p in built.disk.parent.iterdir()) == ["disk.qcow2"]
    info = json.loads(run(["qemu-img", "info", "--output=json", str(built.disk)]).stdout)
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info
    # The fixture grown by KVC_DISK_SIZE=+256M (qemu may round up a little).
    grown = built.source_bytes + 256 * 1024 * 1024
    assert grown <= info["virtual-size"] < grown + 1024 * 1024
    check = run(["qemu-img", "check", str(built.disk)]).stdout
    assert "No errors were found" in check
    compressed = re.search(r"([\d.]+)% compressed clusters", check)
    assert compressed and float(compressed.group(1)) > 50, check
    assert built.disk.stat().st_size < info["virtual-size"] / 2


def test_customizations_are_inside_the_image(built: Built) -> None:
    require("guestfish")
    out = run(
        ["guestfish", "--ro", "-a", str(built.disk), "-i",
         "cat", "/etc/kvc-boot-note", ":",
         "echo", "@@", ":",
         "cat", "/etc/kvc-literal", ":",
         "echo", "@@", ":",
         "cat", "/etc/issue", ":",
         "echo", "@@", ":",
         "cat", "/etc/machine-id", ":",
         "echo", "@@", ":",
         "cat", "/etc/kvc-machine-id-before-sysprep"]
    ).stdout  # fmt: skip
    # guestfish ends each cat with one newline of its own.
    parts = [p.removesuffix("\n") for p in out.split("@@\n")]
    note, literal, issue, machine_id, before_sysprep = parts
    assert note == NOTE + "\n"
    assert literal == LITERAL + "\n"
    assert issue.startswith("KVC Debian")
    assert len(machine_id.strip()) == 32
    assert machine_id != before_sysprep, "virt-sysprep should have reset the machine-id"


def test_makefile_ran_on_the_disk_with_image_vars(built: Built) -> None:
    mk = built.workdir / "mk"
    assert (mk / "greeting.txt").read_text() == "hello 'world' $(id)"
    info = json.loads((mk / "disk-info.json").read_text())
    assert info["format"] == "qcow2"


def test_virt_ls_sees_root_filesystem(built: Built) -> None:
    require("virt-ls")
    listing = run(["virt-ls", "-a", str(built.disk), "/etc"]).stdout.split()
    assert {"kvc-boot-note", "kvc-literal", "fstab"} <= set(listing)


def test_corrupted_download_fails_and_leaves_nothing(
    debian_fixture: Path, http_server: Server, scratch: Path
) -> None:
    tmp_path = scratch
    require("curl")
    base = publish_upstream(http_server, debian_fixture, corrupt=True)
    env = build_env(base, http_server.root / "bad", tmp_path)
    result = run_build(env, tmp_path)
    assert result.returncode != 0
    expected = env["KVC_CHECKSUM"].removeprefix("sha256:")
    actual = sha256_file(http_server.root / "bad" / "debian.img.gz")
    assert expected in result.stderr and actual in result.stderr
    out_dir = tmp_path / "artifacts/build/debian-12/amd64"
    assert list(out_dir.iterdir()) == []


def test_customized_image_boots(built: Built, scratch: Path) -> None:
    tmp_path = scratch
    require("qemu-system-x86_64")
    serial = tmp_path / "serial.log"
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nodefaults",
         "-display", "none", "-no-reboot", "-serial", f"file:{serial}",
         "-drive", f"file={built.disk},format=qcow2,if=virtio,snapshot=on"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    marker = f"KVC-BOOT-MARKER {NOTE}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if serial.exists() and marker in serial.read_text(errors="replace"):
                break
            time.sleep(1)
        log = serial.read_text(errors="replace") if serial.exists() else ""
        assert marker in log, f"no boot marker; serial log tail:\n{log[-3000:]}"
    finally:
        proc.kill()
        proc.wait()
