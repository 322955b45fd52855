"""The qemu test mode for real: real qemu (TCG), skopeo, genisoimage, socat.

The staged image is made the way containerize leaves it: a two-arch OCI
archive (amd64: the bootable Debian fixture; arm64: an all-zero disk) built
with buildah from the shipped Containerfile, or a single-arch image pushed to
a local registry. The mode runs through a minimal driver that follows the
driver's calling order (tests/stages/data/qemu-mode-driver.sh).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import STAGES, TCG_ENV, Registry, require, run

pytestmark = pytest.mark.integration

DRIVER = Path(__file__).resolve().parents[1] / "stages" / "data" / "qemu-mode-driver.sh"
IMAGE = "localhost/kvc/fixture"
USER_DATA = "#cloud-config\nssh_authorized_keys: [__KVC_SSH_PUBKEY__]\n"


def buildah(storage: Path, *args: str) -> str:
    return run(
        ["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run"),
         "--storage-driver", "vfs", *args], timeout=900,
    ).stdout  # fmt: skip


def build_context(root: Path, disks: dict[str, Path]) -> Path:
    context = root / "context"
    for arch, disk in disks.items():
        (context / arch).mkdir(parents=True)
        shutil.move(disk, context / arch / "disk.qcow2")
    return context


def zero_disk(path: Path) -> Path:
    run(["qemu-img", "create", "-f", "qcow2", str(path), "64M"])
    return path


def bake(storage: Path, context: Path, arches: list[str], dest: str) -> None:
    """What containerize's bake does: one multi-platform image, then out."""
    buildah(storage, "manifest", "create", "kvc-list")
    for arch in arches:
        buildah(storage, "build", "--isolation", "chroot", "--platform", f"linux/{arch}",
                "-f", str(STAGES / "Containerfile"), "--manifest", "kvc-list",
                str(context))  # fmt: skip
    buildah(storage, "manifest", "push", "--all", "--tls-verify=false", "kvc-list", dest)


@pytest.fixture(scope="module")
def staged_archive(debian_fixture: Path, module_scratch: Path) -> Iterator[Path]:
    """artifacts/staged/<slug> in archive mode: ref, archive-ref, image.oci.tar."""
    require("buildah", "skopeo", "qemu-img")
    root = module_scratch
    raw = root / "fixture.img"
    with gzip.open(debian_fixture, "rb") as src, raw.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    amd64 = root / "amd64.qcow2"
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(amd64)])
    raw.unlink()
    context = build_context(root, {"amd64": amd64, "arm64": zero_disk(root / "arm64.qcow2")})
    staged = root / "staged"
    staged.mkdir()
    archive = staged / "image.oci.tar"
    bake(root / "buildah", context, ["amd64", "arm64"], f"oci-archive:{archive}")
    shutil.rmtree(root / "buildah", ignore_errors=True)
    shutil.rmtree(context)
    digest = "sha256:" + "0" * 64  # the mode reads the archive, never this digest
    (staged / "ref").write_text(f"{IMAGE}@{digest}\n")
    (staged / "archive-ref").write_text(f"{IMAGE}:kvc-staged-fixture\n")
    yield staged


def run_mode(
    staged: Path, logs: Path, arch: str, checks: str, seconds: int, *,
    extra: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], float]:
    require("genisoimage", "socat", "ssh-keygen", "qemu-img", "skopeo")
    user_data = logs.parent / "user-data"
    user_data.write_text(USER_DATA)
    env = {
        **os.environ, **TCG_ENV,
        "KVC_STAGED_DIR": str(staged), "KVC_LOG_DIR": str(logs), "KVC_USER_DATA": str(user_data),
        "KVC_ARCH": arch, "KVC_CHECKS": checks, "KVC_TIMEOUT_SECONDS": str(seconds),
        "KVC_QEMU_MEMORY": "1024", "KVC_RETRY_DELAY": "1", **(extra or {}),
    }  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(DRIVER), str(STAGES)], env=env, capture_output=True, text=True,
        timeout=seconds + 240, check=False,
    )  # fmt: skip
    return result, time.monotonic() - started


def test_amd64_fixture_boots_and_its_guest_agent_answers(
    staged_archive: Path, scratch: Path
) -> None:
    require("qemu-system-x86_64")
    logs = scratch / "logs"
    result, _ = run_mode(staged_archive, logs, "amd64", "boot,guest-agent", 420)
    console = (logs / "console.log").read_text(errors="replace")
    assert result.returncode == 0, result.stderr + console[-3000:]
    assert "shim: check boot passed" in result.stderr
    assert "shim: check guest-agent passed" in result.stderr
    assert "KVC-BOOT-MARKER" in console  # the fixture's own unit ran: a real boot
    assert "shim: mode_down failed" not in result.stderr


def test_arm64_zero_disk_reaches_uefi_and_fails_the_boot_check_in_time(
    staged_archive: Path, scratch: Path
) -> None:
    """qemu-system-aarch64 -machine virt -cpu max with AAVMF: the firmware
    prints on the serial console, finds nothing to boot, and the boot check
    fails at its deadline instead of passing or hanging."""
    require("qemu-system-aarch64")
    if not Path("/usr/share/AAVMF/AAVMF_CODE.fd").exists():
        require("AAVMF_CODE.fd (qemu-efi-aarch64)")
    logs = scratch / "logs"
    result, elapsed = run_mode(staged_archive, logs, "arm64", "boot", 90)
    console = (logs / "console.log").read_text(errors="replace")
    assert result.returncode != 0
    assert "no kvc-boot-ok on the console before the deadline" in result.stderr
    assert elapsed < 90 + 120  # the deadline, plus unpacking the archive
    # EDK2's boot manager or its shell wrote to the PL011 serial console.
    assert any(m in console for m in ("BdsDxe", "UEFI", "Shell>", "EFI")), console[-2000:]


def test_amd64_zero_disk_from_registry_fails_the_boot_check_in_time(
    registry: Registry, scratch: Path
) -> None:
    """Registry mode (skopeo by digest, plain http) with a disk that cannot boot."""
    require("buildah", "skopeo", "qemu-system-x86_64")
    context = build_context(scratch, {"amd64": zero_disk(scratch / "zero.qcow2")})
    repo = f"{registry.host}/kvc/zero"
    bake(scratch / "buildah", context, ["amd64"], f"docker://{repo}:build")
    digest = run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                  f"docker://{repo}:build"]).stdout.strip()  # fmt: skip
    staged = scratch / "staged"
    staged.mkdir()
    (staged / "ref").write_text(f"{repo}@{digest}\n")
    logs = scratch / "logs"
    result, elapsed = run_mode(staged, logs, "amd64", "boot", 25,
                               extra={"KVC_REGISTRY_INSECURE": "true"})
    assert result.returncode != 0, result.stderr
    assert "disk from the registry" in result.stderr
    assert "no kvc-boot-ok on the console before the deadline" in result.stderr
    assert elapsed < 25 + 60
