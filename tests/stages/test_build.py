"""build.sh against stub tools: exact argv, checksum handling, atomic output."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
from pathlib import Path

import pytest

from tests.gate import unavailable

from .conftest import Stubs

PAYLOAD = b"QFI\xfb pretend disk image\n" * 64
OUTPUT = "artifacts/build/debian-12/amd64/disk.qcow2"


def source(stubs: Stubs, name: str, data: bytes) -> dict[str, str]:
    """Serve `data` as the downloaded file and return the matching env."""
    src = stubs.root.parent / f"upstream-{name}"
    src.write_bytes(data)
    return {
        "KVC_STUB_CURL_SRC": str(src),
        "KVC_URL": f"https://images.example.invalid/debian/{name}?x=1",
        "KVC_CHECKSUM": "sha256:" + hashlib.sha256(data).hexdigest(),
        "KVC_OUTPUT": OUTPUT,
        "KVC_ARCH": "amd64",
        "KVC_UNAME_ARCH": "x86_64",
        "KVC_FORCE_TCG": "true",
    }


def output_dir_entries(stubs: Stubs) -> list[str]:
    out = stubs.root / OUTPUT
    return sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []


def working_image(stubs: Stubs) -> str:
    """The path libguestfs tools worked on (the sparsified image)."""
    return stubs.calls("virt-sparsify")[0].argv[-1]


def test_full_build_passes_every_option_verbatim(stubs: Stubs, hostile: str, canary: Path) -> None:
    env = source(stubs, "disk.raw.xz", lzma.compress(PAYLOAD))
    env |= {
        "KVC_CONVERT": "true",
        "KVC_DISK_SIZE": "+10G",
        "KVC_SYSPREP_UPDATE": "true",
        "KVC_SYSPREP_INSTALL": "qemu-guest-agent,cloud-init",
        "KVC_POST_COMMANDS_COUNT": "3",
        "KVC_POST_COMMAND_1": "systemctl enable qemu-guest-agent",
        "KVC_POST_COMMAND_2": hostile,
        "KVC_POST_COMMAND_3": 'echo "done" > /etc/kvc',
        "KVC_SELINUX_RELABEL": "true",
        "KVC_SYSPREP_OPERATIONS": "defaults,-ssh-userdir",
        "KVC_GUEST_NETWORK": "false",
        "KVC_MAKEFILE": "true",
        "KVC_MAKEFILE_DIR": "images/debian",
        "KVC_MAKEFILE_TARGET": "post-build",
        "KVC_VAR_GREETING": hostile,
    }
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr

    assert stubs.tools() == [
        "curl",
        "qemu-img",  # convert to qcow2
        "qemu-img",  # resize
        "virt-customize",
        "virt-sysprep",
        "guestfish",  # the relabel happened: no /.autorelabel left
        "make",
        "virt-sparsify",
        "qemu-img",  # compressed convert
    ]
    curl = stubs.calls("curl")[0].argv
    assert curl[-2:] == ["--", env["KVC_URL"]]
    assert "--continue-at" in curl and curl[curl.index("--continue-at") + 1] == "-"
    assert "--retry" in curl and "--fail" in curl

    convert, resize, final = stubs.calls("qemu-img")
    work = convert.argv[-1]
    assert convert.argv[:3] == ["convert", "-O", "qcow2"]
    assert convert.argv[3].endswith("decompressed.img")
    assert resize.argv == ["resize", work, "+10G"]

    assert stubs.calls("virt-customize")[0].argv == [
        "-a", work,
        "--no-network",
        "--update",
        "--install", "qemu-guest-agent,cloud-init",
        "--run-command", "systemctl enable qemu-guest-agent",
        "--run-command", hostile,
        "--run-command", "echo \"done\" > /etc/kvc",
        "--selinux-relabel",
    ]  # fmt: skip
    assert stubs.calls("virt-sysprep")[0].argv == [
        "-a", work, "--operations", "defaults,-ssh-userdir",
    ]  # fmt: skip
    check = stubs.calls("guestfish")[0]
    assert check.argv == ["--ro", "-a", work, "-i"]
    assert check.stdin.splitlines()[0] == "exists /.autorelabel"
    make = stubs.calls("make")[0]
    assert make.argv == ["-C", "images/debian", "post-build", f"DISK={work}"]
    assert make.env["GREETING"] == hostile
    assert stubs.calls("virt-sparsify")[0].argv == ["--in-place", work]
    assert final.argv[:5] == ["convert", "-c", "-O", "qcow2", work]

    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD
    assert output_dir_entries(stubs) == ["disk.qcow2"]
    assert not canary.exists()


def test_libguestfs_forced_to_software_emulation(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "true",
    }
    assert stubs.run("build.sh", env).returncode == 0
    for tool in ("virt-customize", "virt-sysprep", "virt-sparsify"):
        call_env = stubs.calls(tool)[0].env
        assert call_env["LIBGUESTFS_BACKEND"] == "direct"
        assert call_env["LIBGUESTFS_BACKEND_SETTINGS"] == "force_tcg"


def kvm_probe_possible() -> bool:
    kernels = [p for p in Path("/boot").glob("vmlinuz-*") if os.access(p, os.R_OK)]
    return os.access("/dev/kvm", os.R_OK | os.W_OK) and bool(kernels)


@pytest.mark.parametrize(("probe_script", "tcg"), [
    ("sleep 30\n", True),  # KVM hangs: the probe times out
    ("exit 1\n", True),  # KVM errors out
    ("exit 0\n", False),  # the probe kernel booted and panicked: KVM works
])  # fmt: skip
def test_kvm_probe_decides_emulation(stubs: Stubs, probe_script: str, tcg: bool) -> None:
    if not kvm_probe_possible():
        unavailable("needs a read-write /dev/kvm and a readable /boot/vmlinuz-* (root on CI)")
    stubs.add("qemu-system-x86_64", probe_script)
    env = source(stubs, "disk.qcow2", PAYLOAD)
    del env["KVC_FORCE_TCG"]
    env["KVC_KVM_PROBE_TIMEOUT"] = "1"
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    call_env = stubs.calls("virt-sparsify")[0].env
    assert ("LIBGUESTFS_BACKEND_SETTINGS" in call_env) is tcg
    assert call_env["LIBGUESTFS_BACKEND"] == "direct"


def test_checksum_mismatch_shows_both_hashes_and_leaves_nothing(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD)
    expected = "0" * 64
    env["KVC_CHECKSUM"] = f"sha256:{expected}"
    stale = stubs.root / OUTPUT
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"artifact of an earlier run")

    result = stubs.run("build.sh", env)

    assert result.returncode != 0
    assert expected in result.stderr
    assert hashlib.sha256(PAYLOAD).hexdigest() in result.stderr
    assert output_dir_entries(stubs) == []
    assert stubs.tools() == ["curl"]


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_checksum_algorithms_and_uppercase_hex(stubs: Stubs, algo: str) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD)
    env["KVC_CHECKSUM"] = f"{algo}:" + hashlib.new(algo, PAYLOAD).hexdigest().upper()
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD


def near_misses(digest: str) -> dict[str, str]:
    """Checksums a partial comparison would accept: every one must be refused."""
    last = "0" if digest[-1] != "0" else "1"
    first = "0" if digest[0] != "0" else "1"
    return {"last digit differs": digest[:-1] + last, "first digit differs": first + digest[1:],
            "a digit short": digest[:-1], "a digit long": digest + "0",
            "only the first half": digest[: len(digest) // 2], "empty": ""}


@pytest.mark.parametrize(("algo", "miss"), [
    *(("sha256", miss) for miss in near_misses("ab")),
    ("sha512", "last digit differs"), ("sha512", "a digit short"), ("sha512", "a digit long"),
])
def test_checksum_that_almost_matches_is_refused(stubs: Stubs, algo: str, miss: str) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD)
    wrong = near_misses(hashlib.new(algo, PAYLOAD).hexdigest())[miss]
    env["KVC_CHECKSUM"] = f"{algo}:{wrong}"
    result = stubs.run("build.sh", env)
    assert result.returncode != 0, f"{miss} accepted"
    assert "checksum mismatch" in result.stderr
    assert output_dir_entries(stubs) == []
    assert stubs.tools() == ["curl"]


def test_unknown_checksum_algorithm_fails(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD)
    env["KVC_CHECKSUM"] = "md5:" + hashlib.md5(PAYLOAD).hexdigest()
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert "md5" in result.stderr
    assert output_dir_entries(stubs) == []


def test_skip_checksum_only_when_opted_out(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {"KVC_CHECKSUM": ""}
    assert stubs.run("build.sh", env).returncode != 0
    env["KVC_INSECURE_SKIP_CHECKSUM"] = "true"
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr


@pytest.mark.parametrize(("name", "data", "mode"), [
    ("disk.qcow2.gz", gzip.compress(PAYLOAD, mtime=0), "auto"),
    ("disk.qcow2.xz", lzma.compress(PAYLOAD), "auto"),
    ("disk.img.bz2", bz2.compress(PAYLOAD), "auto"),
    ("disk-no-suffix", gzip.compress(PAYLOAD, mtime=0), "gzip"),
    ("disk-no-suffix", lzma.compress(PAYLOAD), "xz"),
    ("disk-no-suffix", bz2.compress(PAYLOAD), "bzip2"),
    ("disk.qcow2", PAYLOAD, "auto"),
    ("looks.gz", PAYLOAD, "none"),
])  # fmt: skip
def test_decompression(stubs: Stubs, name: str, data: bytes, mode: str) -> None:
    env = source(stubs, name, data) | {"KVC_DECOMPRESS": mode}
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD
    assert output_dir_entries(stubs) == ["disk.qcow2"]


def test_gzip_trailing_garbage_is_a_warning_not_a_failure(stubs: Stubs) -> None:
    """OpenWrt's .img.gz: gzip says "decompression OK, trailing garbage ignored", exit 2."""
    env = source(stubs, "disk.img.gz", gzip.compress(PAYLOAD, mtime=0) + b"\0signature\n")
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert "trailing garbage ignored" in result.stderr
    assert "gzip warned" in result.stderr
    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD


def test_truncated_gzip_download_fails_cleanly(stubs: Stubs) -> None:
    data = gzip.compress(PAYLOAD, mtime=0)[:-12]  # cut inside the stream: an error, exit 1
    result = stubs.run("build.sh", source(stubs, "disk.img.gz", data))
    assert result.returncode != 0
    assert "gzip could not decompress the download (exit 1)" in result.stderr
    assert output_dir_entries(stubs) == []
    assert "virt-customize" not in stubs.tools()


def test_corrupt_compressed_download_fails_cleanly(stubs: Stubs) -> None:
    data = b"not xz at all"
    env = source(stubs, "disk.qcow2.xz", data)
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert output_dir_entries(stubs) == []
    assert "virt-customize" not in stubs.tools()


def test_sysprep_disabled_skips_guest_tools(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_SYSPREP_ENABLED": "false",
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "touch /x",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert stubs.tools() == ["curl", "virt-sparsify", "qemu-img"]


def test_nothing_to_customize_skips_virt_customize(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD)
    assert stubs.run("build.sh", env).returncode == 0
    # guestfish: the /.autorelabel check (a warning only, nothing was requested)
    assert stubs.tools() == ["curl", "virt-sysprep", "guestfish", "virt-sparsify", "qemu-img"]
    assert stubs.calls("virt-sysprep")[0].argv == ["-a", working_image(stubs)]
    assert stubs.calls("virt-sparsify")[0].argv == ["--in-place", working_image(stubs)]


def test_missing_post_command_variable_fails(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_POST_COMMANDS_COUNT": "2",
        "KVC_POST_COMMAND_1": "true",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert "KVC_POST_COMMAND_2" in result.stderr
    assert output_dir_entries(stubs) == []


def test_empty_post_command_is_still_passed(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "",
    }
    assert stubs.run("build.sh", env).returncode == 0
    assert stubs.calls("virt-customize")[0].argv[-2:] == ["--run-command", ""]


@pytest.mark.parametrize("failing", ["virt-customize", "virt-sysprep", "make", "virt-sparsify"])
def test_failure_midway_leaves_no_artifact(stubs: Stubs, failing: str) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "true",
        "KVC_MAKEFILE": "true",
        f"KVC_STUB_FAIL_{failing.replace('-', '_')}": "-1",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert output_dir_entries(stubs) == []


def test_download_is_retried_and_resumed(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {"KVC_STUB_FAIL_curl": "2"}
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    curls = stubs.calls("curl")
    assert len(curls) == 3
    assert all(c.argv == curls[0].argv for c in curls)


def test_download_gives_up(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_STUB_FAIL_curl": "-1",
        "KVC_DOWNLOAD_ATTEMPTS": "2",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert len(stubs.calls("curl")) == 2
    assert output_dir_entries(stubs) == []


def test_disk_growth_with_partition_expansion(stubs: Stubs) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_DISK_SIZE": "20G",
        "KVC_EXPAND_PARTITION": "/dev/sda1",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    resize = stubs.calls("virt-resize")[0].argv
    assert resize[:2] == ["--expand", "/dev/sda1"]
    assert resize[-1] == working_image(stubs)
    resize_call, info, create, _final = stubs.calls("qemu-img")
    assert resize_call.argv == ["resize", resize[-2], "20G"]
    assert info.argv[:2] == ["info", "--output=json"]
    assert create.argv == ["create", "-f", "qcow2", resize[-1], "12884901888"]
    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD


def test_download_in_container_passes_variables_by_name(
    stubs: Stubs, hostile: str, canary: Path
) -> None:
    env = source(stubs, "disk.qcow2", PAYLOAD) | {
        "KVC_DOWNLOAD_IN": "container",
        "KVC_DOWNLOAD_CONTAINER": "registry.example.invalid/fetcher:1",
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": hostile,
    }
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    run = stubs.calls("docker")[0].argv
    assert run[0] == "run"
    image_at = run.index("registry.example.invalid/fetcher:1")
    passed = [run[i + 1] for i in range(image_at) if run[i] == "-e"]
    assert {"KVC_URL", "KVC_CHECKSUM", "KVC_POST_COMMAND_1", "KVC_PHASE"} <= set(passed)
    assert all("=" not in name for name in passed if name.startswith("KVC_"))
    assert hostile not in run
    assert run[image_at + 1] == "bash"
    assert run[image_at + 2].endswith("/build.sh")
    # Download and customization ran "inside" (under docker), then the
    # finishing steps in a second container run; no libguestfs on the host.
    assert stubs.tools() == [
        "docker",
        "curl",
        "virt-customize",
        "virt-sysprep",
        "guestfish",
        "docker",
        "virt-sparsify",
        "qemu-img",
    ]
    assert stubs.calls("curl")[0].env.get("KVC_PHASE") == "prepare"
    assert stubs.calls("virt-sparsify")[0].env.get("KVC_PHASE") == "finalize"
    assert (stubs.root / OUTPUT).read_bytes() == PAYLOAD
    assert not canary.exists()


def test_required_inputs_are_named(stubs: Stubs) -> None:
    result = stubs.run("build.sh", {})
    assert result.returncode != 0
    assert "KVC_URL" in result.stderr and "KVC_OUTPUT" in result.stderr
