"""build.sh and the libguestfs appliance: a kernel for supermin, setfiles for a relabel.

The kernel decision runs build.sh's own functions against a fake root
(KVC_HOST_ROOT) with stub apt-get/dpkg/sudo; the relabel runs the whole
build.sh against stub libguestfs tools and a fake appliance directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import RECORD, STAGES, Stubs
from .test_build import OUTPUT, PAYLOAD, source

UBUNTU = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
MINT = "NAME='Linux Mint'\nID=linuxmint\nID_LIKE='ubuntu debian'\n"
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'
STUB_EXEC = RECORD


def fake_root(tmp: Path, os_release: str) -> Path:
    root = tmp / "host"
    (root / "boot").mkdir(parents=True)
    (root / "lib" / "modules").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text(os_release)
    return root


def add_kernel(root: Path, version: str, modules_dep: bool = True) -> None:
    (root / "boot" / f"vmlinuz-{version}").write_bytes(b"\0" * 64)
    if modules_dep:
        (root / "lib" / "modules" / version).mkdir(parents=True, exist_ok=True)
        (root / "lib" / "modules" / version / "modules.dep").write_text("")


def host_stubs(stubs: Stubs, arch: str = "amd64", installs_kernel: str | None = None) -> None:
    """dpkg reports ARCH; sudo runs its command; apt-get records and, given
    installs_kernel, installs that kernel version into KVC_HOST_ROOT."""
    stubs.add("dpkg", f'[ "$1" = --print-architecture ] && echo {arch}\n')
    stubs.add("sudo", 'exec "$@"\n')
    install = ""
    if installs_kernel:
        install = (
            'if [ "$1" = install ] || [[ " $* " == *" install "* ]]; then\n'
            f'  mkdir -p "$KVC_HOST_ROOT/lib/modules/{installs_kernel}"\n'
            f'  : > "$KVC_HOST_ROOT/lib/modules/{installs_kernel}/modules.dep"\n'
            f'  echo kernel > "$KVC_HOST_ROOT/boot/vmlinuz-{installs_kernel}"\n'
            "fi\n"
        )
    stubs.add("apt-get", install + f'exec {STUB_EXEC} apt-get "$@"\n')


def run_function(stubs: Stubs, call: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Source build.sh (its main does not run) and call one of its functions."""
    return subprocess.run(
        ["bash", "-c", f'. "$1"; {call}', "bash", str(STAGES / "build.sh")],
        env={**stubs.env, **env},
        cwd=stubs.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def apt_installs(stubs: Stubs) -> list[list[str]]:
    return [c.argv for c in stubs.calls("apt-get") if "install" in c.argv]


@pytest.mark.parametrize(
    ("os_release", "arch", "package"),
    [
        (UBUNTU, "amd64", "linux-image-virtual"),
        (UBUNTU, "arm64", "linux-image-virtual"),
        (DEBIAN, "amd64", "linux-image-cloud-amd64"),
        (DEBIAN, "arm64", "linux-image-cloud-arm64"),
        (DEBIAN, "ppc64el", "linux-image-ppc64el"),
        (MINT, "amd64", "linux-image-virtual"),
    ],
)
def test_an_empty_boot_gets_the_hosts_kernel_package(
        stubs: Stubs, tmp_path: Path, os_release: str, arch: str, package: str) -> None:
    root = fake_root(tmp_path, os_release)
    host_stubs(stubs, arch=arch, installs_kernel="6.8.0-31-generic")
    result = run_function(stubs, "ensure_appliance_kernel",
                          {"KVC_HOST_ROOT": str(root), "CI": "true"})
    assert result.returncode == 0, result.stderr
    installs = apt_installs(stubs)
    assert len(installs) == 1
    assert installs[0][-1] == package
    assert "--no-install-recommends" in installs[0]
    assert f"libguestfs appliance kernel: {root}/boot/vmlinuz-6.8.0-31-generic" in result.stderr


@pytest.mark.parametrize(
    "layout",
    ["boot", "lib-modules", "supermin-kernel"],
)
def test_a_usable_kernel_installs_nothing(stubs: Stubs, tmp_path: Path, layout: str) -> None:
    root = fake_root(tmp_path, UBUNTU)
    env = {"KVC_HOST_ROOT": str(root), "CI": "true"}
    if layout == "boot":
        add_kernel(root, "6.1.0-57-cloud-amd64")
    elif layout == "lib-modules":  # Fedora's layout: the kernel beside its modules
        (root / "lib" / "modules" / "6.5.6-300.fc39.x86_64").mkdir()
        (root / "lib" / "modules" / "6.5.6-300.fc39.x86_64" / "vmlinuz").write_bytes(b"k" * 10000)
    else:
        env["SUPERMIN_KERNEL"] = "/opt/kernel/vmlinuz"
    host_stubs(stubs)
    result = run_function(stubs, "ensure_appliance_kernel", env)
    assert result.returncode == 0, result.stderr
    assert stubs.calls("apt-get") == []
    assert "libguestfs appliance kernel:" in result.stderr


@pytest.mark.parametrize(
    "layout",
    ["no-modules-dep", "xen-only", "debug-only", "tiny-lib-modules-file"],
)
def test_kernels_supermin_would_skip_do_not_count(stubs: Stubs, tmp_path: Path,
                                                  layout: str) -> None:
    root = fake_root(tmp_path, DEBIAN)
    if layout == "no-modules-dep":
        add_kernel(root, "6.1.0-57-cloud-amd64", modules_dep=False)
    elif layout == "xen-only":
        add_kernel(root, "4.19.0-xen-amd64")
    elif layout == "debug-only":
        add_kernel(root, "6.8.0+debug")
    else:
        (root / "lib" / "modules" / "6.5.6").mkdir()
        (root / "lib" / "modules" / "6.5.6" / "vmlinuz").write_bytes(b"k" * 9999)
    host_stubs(stubs, installs_kernel="6.1.0-58-cloud-amd64")
    result = run_function(stubs, "ensure_appliance_kernel",
                          {"KVC_HOST_ROOT": str(root), "CI": "true"})
    assert result.returncode == 0, result.stderr
    assert [argv[-1] for argv in apt_installs(stubs)] == ["linux-image-cloud-amd64"]


def test_off_ci_a_missing_kernel_is_reported_not_installed(stubs: Stubs, tmp_path: Path) -> None:
    root = fake_root(tmp_path, UBUNTU)
    host_stubs(stubs)
    result = run_function(stubs, "ensure_appliance_kernel", {"KVC_HOST_ROOT": str(root)})
    assert result.returncode == 0
    assert stubs.calls("apt-get") == []
    assert "WARNING: no kernel for the libguestfs appliance" in result.stderr


def test_an_unknown_distribution_gets_no_guessed_package(stubs: Stubs, tmp_path: Path) -> None:
    root = fake_root(tmp_path, FEDORA)
    host_stubs(stubs)
    result = run_function(stubs, "ensure_appliance_kernel",
                          {"KVC_HOST_ROOT": str(root), "CI": "true"})
    assert result.returncode == 0
    assert stubs.calls("apt-get") == []
    assert "SUPERMIN_KERNEL" in result.stderr


def test_a_kernel_package_that_leaves_no_usable_kernel_stops_the_build(
        stubs: Stubs, tmp_path: Path) -> None:
    root = fake_root(tmp_path, UBUNTU)
    host_stubs(stubs)  # apt-get "succeeds" but installs nothing
    result = run_function(stubs, "ensure_appliance_kernel",
                          {"KVC_HOST_ROOT": str(root), "CI": "true"})
    assert result.returncode == 1
    assert "installed linux-image-virtual but supermin would still find no kernel" in result.stderr


def test_the_host_route_checks_the_kernel_before_any_download(stubs: Stubs,
                                                             tmp_path: Path) -> None:
    root = fake_root(tmp_path, UBUNTU)
    host_stubs(stubs)
    env = source(stubs, "disk.qcow2", PAYLOAD) | {"KVC_HOST_ROOT": str(root), "CI": "true"}
    result = stubs.run("build.sh", env)
    assert result.returncode == 1
    assert [argv[-1] for argv in apt_installs(stubs)][-1:] == ["linux-image-virtual"]
    assert "curl" not in stubs.tools()


# --- SELinux relabel: setfiles in the appliance, and a check afterwards ---

def fake_appliance(tmp: Path) -> Path:
    """An installed libguestfs appliance directory as Debian lays it out."""
    path = tmp / "guestfs"
    supermin = path / "supermin.d"
    supermin.mkdir(parents=True)
    for name, content in {"base.tar.gz": "base", "packages": "augeas-tools\nlvm2\n",
                          "packages-xfs": "xfsprogs\n", "hostfiles": "/etc/ld.so.cache\n"}.items():
        (supermin / name).write_text(content)
    return path


# virt-customize/virt-sysprep stand-in: records which supermin.d it would
# build the appliance from (build.sh deletes its scratch directory at the end).
APPLIANCE_PROBE = """\
{{
  printf 'path=%s\\n' "${{LIBGUESTFS_PATH:-}}"
  for f in "${{LIBGUESTFS_PATH:-/nonexistent}}"/supermin.d/*; do
    printf '%s -> %s : %s\\n' "${{f##*/}}" "$(readlink "$f" || true)" "$(tr '\\n' ' ' < "$f")"
  done
}} >> "{out}"
exec {stub} "{tool}" "$@"
"""


def probe(stubs: Stubs, tmp: Path) -> Path:
    out = tmp / "appliance-seen.txt"
    for tool in ("virt-customize", "virt-sysprep"):
        stubs.add(tool, APPLIANCE_PROBE.format(out=out, stub=STUB_EXEC, tool=tool))
    return out


def relabel_env(stubs: Stubs, tmp: Path) -> dict[str, str]:
    return source(stubs, "disk.qcow2", PAYLOAD) | {
        "LIBGUESTFS_PATH": str(fake_appliance(tmp)),
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "true",
    }


@pytest.mark.parametrize(
    "request_env",
    [{"KVC_SELINUX_RELABEL": "true"},
     {"KVC_COMMANDS_COUNT": "1", "KVC_COMMAND_1_OP": "selinux-relabel"}],
    ids=["selinux_relabel", "selinux-relabel-command"],
)
def test_a_relabel_builds_the_appliance_with_policycoreutils(
        stubs: Stubs, tmp_path: Path, request_env: dict[str, str]) -> None:
    seen = probe(stubs, tmp_path)
    env = relabel_env(stubs, tmp_path) | request_env
    system = env["LIBGUESTFS_PATH"]
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr

    runs = seen.read_text().split("path=")[1:]
    assert len(runs) == 2  # virt-customize, then virt-sysprep: the same appliance
    assert runs[0] == runs[1]
    lines = runs[0].splitlines()
    private = lines[0]
    assert private != system and private.endswith("/guestfs")
    entries = {line.split(" -> ")[0]: line.split(" -> ")[1] for line in lines[1:]}
    assert entries == {
        "base.tar.gz": f"{system}/supermin.d/base.tar.gz : base",
        "hostfiles": f"{system}/supermin.d/hostfiles : /etc/ld.so.cache ",
        "packages": f"{system}/supermin.d/packages : augeas-tools lvm2 ",
        "packages-xfs": f"{system}/supermin.d/packages-xfs : xfsprogs ",
        "packages-kvc-selinux": " : policycoreutils ",
    }
    check = stubs.calls("guestfish")
    assert len(check) == 1
    assert check[0].env["LIBGUESTFS_PATH"] == private
    assert stubs.tools().index("guestfish") == stubs.tools().index("virt-sysprep") + 1
    assert not Path(private).exists()  # scratch removed with the build


def test_without_a_relabel_the_appliance_is_left_alone(stubs: Stubs, tmp_path: Path) -> None:
    seen = probe(stubs, tmp_path)
    env = relabel_env(stubs, tmp_path)
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert seen.read_text().count(f"path={env['LIBGUESTFS_PATH']}\n") == 2
    assert "packages-kvc-selinux" not in seen.read_text()
    (check,) = stubs.calls("guestfish")  # only looks for /.autorelabel (below)
    assert check.env["LIBGUESTFS_PATH"] == env["LIBGUESTFS_PATH"]


@pytest.mark.parametrize(
    ("answer", "warns"),
    [
        ("false\n", False),
        ("true\nSELINUX=disabled\n", False),
        ("true\nSELINUX=enforcing\nSELINUXTYPE=targeted\n", True),
        ("libguestfs: error: something\n", False),
    ],
)
def test_an_autorelabel_nobody_asked_for_only_warns(
        stubs: Stubs, tmp_path: Path, answer: str, warns: bool) -> None:
    """guest-tools >= 1.50 relabel an SELinux guest by default; without setfiles in the
    appliance (only a requested relabel adds it) they leave /.autorelabel, and the
    guest relabels and reboots at first boot: worth a warning, not a failed build."""
    env = relabel_env(stubs, tmp_path) | {"KVC_STUB_STDOUT_guestfish": answer}
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert (stubs.root / OUTPUT).exists()
    assert ("sysprep.selinux_relabel: true" in result.stderr) is warns
    assert "SELinux relabel requested" not in result.stderr


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        ("false\n", True),
        ("true\n# comment\nSELINUX=disabled\nSELINUXTYPE=targeted\n", True),
        ('true\nSELINUX="disabled"\n', True),
        ("true\nSELINUX=enforcing\nSELINUXTYPE=targeted\n", False),
        ("true\nSELINUX=permissive\n# SELINUX=disabled\n", False),
        ("true\n", False),
        ("", False),
        ("libguestfs: error: something\n", False),
    ],
)
def test_an_autorelabel_left_in_the_guest_fails_the_build(
        stubs: Stubs, tmp_path: Path, answer: str, passes: bool) -> None:
    env = relabel_env(stubs, tmp_path) | {"KVC_SELINUX_RELABEL": "true",
                                          "KVC_STUB_STDOUT_guestfish": answer}
    result = stubs.run("build.sh", env)
    if passes:
        assert result.returncode == 0, result.stderr
        assert (stubs.root / OUTPUT).exists()
    else:
        assert result.returncode == 1
        assert not (stubs.root / OUTPUT).exists()
        assert "virt-sparsify" not in stubs.tools()
    if answer.startswith("true") and not passes:
        assert "SELinux relabel requested but not done" in result.stderr
        assert "/.autorelabel" in result.stderr


def test_a_failing_check_fails_the_build(stubs: Stubs, tmp_path: Path) -> None:
    env = relabel_env(stubs, tmp_path) | {"KVC_SELINUX_RELABEL": "true",
                                          "KVC_STUB_FAIL_guestfish": "-1"}
    result = stubs.run("build.sh", env)
    assert result.returncode == 1
    assert "guestfish could not inspect" in result.stderr
    assert not (stubs.root / OUTPUT).exists()


@pytest.mark.parametrize(("relabel", "listed"), [("true", True), ("false", False)])
def test_the_host_installs_policycoreutils_for_a_relabel(stubs: Stubs, relabel: str,
                                                         listed: bool) -> None:
    result = run_function(stubs, "appliance_packages", {"KVC_SELINUX_RELABEL": relabel})
    assert result.returncode == 0, result.stderr
    packages = result.stdout.split()
    assert ("policycoreutils" in packages) == listed
    assert {"libguestfs-xfs", "dhcpcd-base"} <= set(packages)


def test_no_supermin_appliance_is_reported_and_the_check_still_runs(
        stubs: Stubs, tmp_path: Path) -> None:
    env = relabel_env(stubs, tmp_path) | {"KVC_SELINUX_RELABEL": "true",
                                          "LIBGUESTFS_PATH": str(tmp_path / "fixed")}
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    assert "no libguestfs supermin appliance found" in result.stderr
    assert stubs.calls("virt-customize")[0].env["LIBGUESTFS_PATH"] == str(tmp_path / "fixed")
    assert len(stubs.calls("guestfish")) == 1


def test_functions_are_sourced_without_running_main() -> None:
    """run_function relies on build.sh's main running only when executed."""
    result = subprocess.run(["bash", "-c", '. "$1"; type appliance_kernel >/dev/null',
                             "bash", str(STAGES / "build.sh")], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"]}, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
