"""test-qemu.sh (the qemu test mode) through a minimal driver, against stubs.

The stubs stand in for qemu-system-*, skopeo, genisoimage, socat and ssh; the
fake qemu writes what the test asks for to the serial console file given on
its command line, so the checks' waiting and failing logic runs for real.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import RECORD, STAGES, Call, Stubs

DRIVER = Path(__file__).resolve().parent / "data" / "qemu-mode-driver.sh"
REF = "ghcr.io/example/debian@sha256:" + "ab" * 32
STAGED = "artifacts/staged/debian-12"
LOGS = "artifacts/test-logs/debian-12-arm64"

# A qemu that writes $FAKE_QEMU_CONSOLE to its -serial file, then idles.
FAKE_QEMU = r"""
"$KVC_FAKE_RECORD" "$(basename "$0")" "$@"
for a in "$@"; do
  case "$a" in file:*) console="${a#file:}" ;; esac
done
printf '%b' "${FAKE_QEMU_CONSOLE:-}" >>"$console"
[ "${FAKE_QEMU_EXIT:-}" = true ] && exit 1
exec sleep 300
"""

# skopeo copy ... SRC oci:DIR -> a layout whose only layer holds disk/disk.qcow2
# with the bytes "disk for <arch>".
FAKE_SKOPEO = r"""
"$KVC_FAKE_RECORD" skopeo "$@"
[ "$1" = copy ] || exit 0
for a in "$@"; do dest="$a"; done
dest="${dest#oci:}"
arch=""; prev=""
for a in "$@"; do [ "$prev" = --override-arch ] && arch="$a"; prev="$a"; done
mkdir -p "$dest/blobs/sha256" "$dest/l/disk"
printf '{"config": 1}' >"$dest/blobs/sha256/aaaa"
printf 'disk for %s' "$arch" >"$dest/l/disk/disk.qcow2"
tar -czf "$dest/blobs/sha256/bbbb" -C "$dest/l" disk
rm -rf "$dest/l"
printf '{"manifests":[]}' >"$dest/index.json"
"""


def record_stub(stubs: Stubs) -> str:
    """A recorder other custom stubs call first: same JSON log as stub.py."""
    path = stubs.bin / "kvc-fake-record"
    path.write_text(f'#!/bin/bash\nexec {RECORD} "$@"\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def qemu_env(stubs: Stubs) -> dict[str, str]:
    recorder = record_stub(stubs)
    for name in ("qemu-system-x86_64", "qemu-system-aarch64"):
        stubs.add(name, FAKE_QEMU)
    stubs.add("skopeo", FAKE_SKOPEO)
    stubs.add("genisoimage", '"$KVC_FAKE_RECORD" genisoimage "$@"\n'
              'while [ "$1" != -output ]; do shift; done; : >"$2"\n')
    stubs.add("socat", '"$KVC_FAKE_RECORD" socat "$@"\ncat >/dev/null\n'
              'printf "%s\\n" "${FAKE_QGA_REPLY-}"\n')
    stubs.add("ssh", '"$KVC_FAKE_RECORD" ssh "$@"\nprintf "%s\\n" "${FAKE_SSH_REPLY-}"\n')
    staged = stubs.root / STAGED
    staged.mkdir(parents=True)
    (staged / "ref").write_text(REF + "\n")
    user_data = stubs.root / "user-data"
    user_data.write_text("#cloud-config\nssh_authorized_keys: [__KVC_SSH_PUBKEY__]\n")
    firmware = stubs.root.parent / "firmware"
    firmware.mkdir()
    (firmware / "CODE.fd").write_bytes(b"code")
    (firmware / "VARS.fd").write_bytes(b"vars")
    return {
        "KVC_FAKE_RECORD": recorder,
        "KVC_STAGED_DIR": STAGED,
        "KVC_LOG_DIR": LOGS,
        "KVC_USER_DATA": str(user_data),
        "KVC_ARCH": "arm64",
        "KVC_FORCE_TCG": "true",
        "KVC_QEMU_EFI_CODE": str(firmware / "CODE.fd"),
        "KVC_QEMU_EFI_VARS": str(firmware / "VARS.fd"),
        "KVC_TIMEOUT_SECONDS": "20",
        "FAKE_QEMU_CONSOLE": r"UEFI firmware\r\nLinux version 6.1\r\nkvc-boot-ok\r\n",
        "FAKE_QGA_REPLY": '{"return": {}}',
        "FAKE_SSH_REPLY": "kvc-ssh-ok",
        "KVC_RETRY_DELAY": "0",
        "KVC_POLL_INTERVAL": "0.2",
    }


def run_mode(stubs: Stubs, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DRIVER), str(STAGES)],
        env={**stubs.env, **env},
        cwd=stubs.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def qemu_call(stubs: Stubs, name: str = "qemu-system-aarch64") -> Call:
    (call,) = stubs.calls(name)
    return call


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_arm64_boots_with_uefi_cpu_max_and_runs_every_check(
    stubs: Stubs, qemu_env: dict[str, str]
) -> None:
    result = run_mode(stubs, qemu_env | {"KVC_CHECKS": "boot,guest-agent,ssh"})
    assert result.returncode == 0, result.stderr
    for check in ("boot", "guest-agent", "ssh"):
        assert f"shim: check {check} passed" in result.stderr

    argv = qemu_call(stubs).argv
    assert argv[:4] == ["-machine", "virt,accel=tcg,gic-version=max", "-cpu", "max"]
    drives = option_values(argv, "-drive")
    code = qemu_env["KVC_QEMU_EFI_CODE"]
    assert drives[0] == f"if=pflash,format=raw,readonly=on,file={code}"
    assert drives[1].startswith("if=pflash,format=raw,file=") and "efivars.fd" in drives[1]
    assert drives[2].startswith("file=")
    assert drives[2].endswith("/disk.qcow2,if=virtio,format=qcow2")
    assert drives[3].endswith("/seed.iso,if=virtio,format=raw,readonly=on")
    devices = option_values(argv, "-device")
    assert "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0" in devices
    (chardev,) = option_values(argv, "-chardev")
    assert chardev.startswith("socket,id=qga0,path=") and chardev.endswith(",server=on,wait=off")
    (netdev,) = option_values(argv, "-netdev")
    port = netdev.split("hostfwd=tcp:127.0.0.1:")[1].split("-:22")[0]
    assert int(port) >= 20000
    assert option_values(argv, "-serial") == [f"file:{LOGS}/console.log"]

    # The registry copy picks the arch; the disk qemu got is that arch's.
    (copy,) = [c.argv for c in stubs.calls("skopeo") if c.argv[0] == "copy"]
    assert copy[copy.index("--override-arch") + 1] == "arm64"
    assert copy[-2] == f"docker://{REF}"
    # The seed is a NoCloud volume (label cidata) with the driver's user-data.
    (iso,) = stubs.calls("genisoimage")
    assert iso.argv[iso.argv.index("-volid") + 1] == "cidata"
    assert [Path(a).name for a in iso.argv[-2:]] == ["user-data", "meta-data"]
    (socat,) = stubs.calls("socat")
    assert socat.argv[-1].startswith("UNIX-CONNECT:") and socat.argv[-1].endswith("/qga.sock")
    (ssh,) = stubs.calls("ssh")
    assert ssh.argv[ssh.argv.index("-p") + 1] == port
    assert ssh.argv[-3:] == ["kvc@127.0.0.1", "echo", "kvc-ssh-ok"]
    # qemu is gone after the run, the console kept.
    assert "kvc-boot-ok" in (stubs.root / LOGS / "console.log").read_text()
    assert (stubs.root / LOGS / "qemu-command.txt").exists()


def test_amd64_uses_x86_64_without_firmware(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    result = run_mode(stubs, qemu_env | {"KVC_ARCH": "amd64"})
    assert result.returncode == 0, result.stderr
    argv = qemu_call(stubs, "qemu-system-x86_64").argv
    assert argv[:4] == ["-machine", "q35,accel=tcg", "-cpu", "max"]
    assert not any("pflash" in d for d in option_values(argv, "-drive"))
    assert stubs.calls("qemu-system-aarch64") == []


def test_disk_comes_from_the_oci_archive_when_there_is_one(
    stubs: Stubs, qemu_env: dict[str, str]
) -> None:
    (stubs.root / STAGED / "image.oci.tar").write_bytes(b"archive")
    result = run_mode(stubs, qemu_env)
    assert result.returncode == 0, result.stderr
    (copy,) = [c.argv for c in stubs.calls("skopeo") if c.argv[0] == "copy"]
    assert copy[-2] == f"oci-archive:{STAGED}/image.oci.tar"


def system_bin_without(tmp_path: Path, hidden: tuple[str, ...] = ("skopeo", "docker")) -> Path:
    """The system's commands, less the hidden ones (this machine may have them)."""
    bindir = tmp_path / "system-bin"
    bindir.mkdir()
    for directory in (Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        for tool in directory.iterdir():
            link = bindir / tool.name
            if tool.name not in hidden and not link.exists():
                link.symlink_to(tool)
    return bindir


@pytest.mark.slow  # waits for its deadline
def test_boot_fails_within_the_deadline_without_the_marker(
    stubs: Stubs, qemu_env: dict[str, str]
) -> None:
    env = qemu_env | {"FAKE_QEMU_CONSOLE": r"kvc-boot-ok-ish\r\necho kvc-boot-ok\r\n",
                      "KVC_TIMEOUT_SECONDS": "5"}
    started = time.monotonic()
    result = run_mode(stubs, env)
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    assert "no kvc-boot-ok on the console before the deadline" in result.stderr
    assert "shim: check boot passed" not in result.stderr


def test_marker_after_a_carriage_return_counts(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    env = qemu_env | {"FAKE_QEMU_CONSOLE": r"[  OK  ] Started x\rkvc-boot-ok\r\n"}
    result = run_mode(stubs, env)
    assert result.returncode == 0, result.stderr


def test_qemu_exiting_fails_the_boot_at_once(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    env = qemu_env | {"FAKE_QEMU_CONSOLE": "", "FAKE_QEMU_EXIT": "true",
                      "KVC_TIMEOUT_SECONDS": "60"}
    started = time.monotonic()
    result = run_mode(stubs, env)
    assert result.returncode != 0
    assert "qemu exited before the guest booted" in result.stderr
    assert time.monotonic() - started < 30


@pytest.mark.slow  # waits for its deadline
@pytest.mark.parametrize(("check", "reply_env"), [
    ("guest-agent", {"FAKE_QGA_REPLY": ""}),
    ("ssh", {"FAKE_SSH_REPLY": "Connection refused"}),
])
def test_checks_fail_at_the_deadline(
    stubs: Stubs, qemu_env: dict[str, str], check: str, reply_env: dict[str, str]
) -> None:
    env = qemu_env | reply_env | {"KVC_CHECKS": f"boot,{check}", "KVC_TIMEOUT_SECONDS": "8"}
    result = run_mode(stubs, env)
    assert result.returncode != 0
    assert "shim: check boot passed" in result.stderr
    assert f"shim: check {check} passed" not in result.stderr


def test_pull_credentials_reach_skopeo_on_stdin_only(
    stubs: Stubs, qemu_env: dict[str, str]
) -> None:
    secret = "pull $(touch x) 'pw'"
    env = qemu_env | {"KVC_PULL_USER": "reader", "KVC_PULL_PASSWORD": secret}
    result = run_mode(stubs, env)
    assert result.returncode == 0, result.stderr
    login = [c for c in stubs.calls("skopeo") if c.argv[0] == "login"]
    assert [c.argv for c in login] == [
        ["login", "--username", "reader", "--password-stdin", "ghcr.io"]
    ]
    assert all(secret not in shlex.join(c.argv) for c in stubs.calls())
    copy = next(c for c in stubs.calls("skopeo") if c.argv[0] == "copy")
    assert copy.env["REGISTRY_AUTH_FILE"] == login[0].env["REGISTRY_AUTH_FILE"]


def test_unsupported_arch_is_refused(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    result = run_mode(stubs, qemu_env | {"KVC_ARCH": "riscv64"})
    assert result.returncode != 0
    assert "unsupported KVC_ARCH 'riscv64'" in result.stderr


@pytest.mark.slow  # waits out a test deadline
def test_kvm_only_for_the_hosts_own_arch(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    """The driver says KVM works, but KVM cannot run a foreign-arch guest."""
    host = subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout
    own, foreign = ("amd64", "arm64") if host.strip() == "x86_64" else ("arm64", "amd64")
    qemu = {"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
    env = qemu_env | {"KVC_FORCE_TCG": "false"}
    shim = DRIVER.read_text().replace("mode_up\n", "KVM=true\nmode_up\n", 1)
    driver = stubs.root.parent / "driver-kvm.sh"
    driver.write_text(shim)
    for arch in (own, foreign):
        result = subprocess.run(["bash", str(driver), str(STAGES)],
                                env={**stubs.env, **env, "KVC_ARCH": arch}, cwd=stubs.root,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        machine = qemu_call(stubs, qemu[arch]).argv[1]
        assert ("accel=kvm" in machine) == (arch == own), (arch, machine)


@pytest.mark.slow  # waits out a test deadline
def test_silent_boot_logs_while_it_waits(stubs: Stubs, qemu_env: dict[str, str]) -> None:
    """Each line restarts CircleCI's no_output_timeout: a slow boot must not go quiet."""
    env = qemu_env | {"FAKE_QEMU_CONSOLE": r"UEFI firmware\r\n", "KVC_TIMEOUT_SECONDS": "5",
                      "KVC_HEARTBEAT": "0"}
    result = run_mode(stubs, env)
    assert result.returncode != 0
    assert "still waiting for kvc-boot-ok on the serial console" in result.stderr
    assert "no kvc-boot-ok on the console before the deadline" in result.stderr
