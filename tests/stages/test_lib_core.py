"""lib.sh's one core (booleans, login, apt) and build.sh's host setup for libguestfs.

Functions are called by sourcing the scripts, which must not run their main:
every stage script is sourceable for tests.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from .conftest import STAGES, Stubs


def source_and_call(
    stubs: Stubs, script: str, snippet: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Source a stage script (main must not run) and run a snippet after it."""
    return subprocess.run(
        ["bash", "-c", f'. "{STAGES / script}"; {snippet}'],
        env={**stubs.env, **(env or {})},
        cwd=stubs.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", sorted(p.name for p in STAGES.glob("*.sh")))
def test_stage_scripts_are_sourceable_without_running_main(stubs: Stubs, script: str) -> None:
    result = source_and_call(stubs, script, "echo sourced")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sourced\n"
    assert stubs.calls() == []


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        ("true", "", "yes"),
        ("false", "", "no"),
        (None, "", "no"),
        ("", "", "no"),
        (None, "true", "yes"),
        ("", "true", "yes"),
        ("false", "true", "no"),
    ],
)
def test_kvc_bool(stubs: Stubs, value: str | None, default: str, expected: str) -> None:
    env = {} if value is None else {"FLAG": value}
    snippet = f"if kvc_bool FLAG {default}; then echo yes; else echo no; fi"
    result = source_and_call(stubs, "lib.sh", snippet, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{expected}\n"


@pytest.mark.parametrize("value", ["True", "yes", "1", "false ", "$(touch x)"])
def test_kvc_bool_refuses_anything_but_true_or_false(stubs: Stubs, value: str) -> None:
    result = source_and_call(stubs, "lib.sh", "kvc_bool FLAG; echo unreachable", {"FLAG": value})
    assert result.returncode != 0
    assert "FLAG must be true or false" in result.stderr
    assert "unreachable" not in result.stdout


@pytest.mark.parametrize(("candidates", "expected", "rc"), [
    ("a bb ccc dd", "bb\n", 0),   # the first that qualifies, not a later one
    ("a ccc", "ccc\n", 0),
    ("a b c", "", 1),            # none qualifies
    ("", "", 1),                 # nothing to look at
    ("'b b' cc", "b b\n", 0),     # a candidate is one word, spaces and all
])
def test_kvc_first_match(stubs: Stubs, candidates: str, expected: str, rc: int) -> None:
    snippet = (f'longer() {{ [ "${{#1}}" -ge 2 ]; }}; kvc_first_match longer {candidates}; '
               'echo "rc=$?"')
    result = source_and_call(stubs, "lib.sh", snippet)
    assert result.stdout == f"{expected}rc={rc}\n", result.stderr


def test_login_passes_the_password_on_stdin_only(stubs: Stubs) -> None:
    secret = "pa$$ 'w' $(touch x)"
    env = {"U": "bot", "P": secret}
    result = source_and_call(stubs, "lib.sh", "kvc_login docker ghcr.io U P", env)
    assert result.returncode == 0, result.stderr
    assert [c.argv for c in stubs.calls()] == [
        ["login", "--username", "bot", "--password-stdin", "ghcr.io"]
    ]
    assert Path(str(stubs.log) + ".login-stdin").read_text() == secret


@pytest.mark.parametrize("env", [{"U": "bot"}, {"P": "pw"}, {}])
def test_login_without_both_credentials_does_nothing(stubs: Stubs, env: dict[str, str]) -> None:
    result = source_and_call(stubs, "lib.sh", "kvc_login docker ghcr.io U P", env)
    assert result.returncode == 0, result.stderr
    assert stubs.calls() == []


def test_missing_tools_are_installed_in_one_apt_call_on_ci(stubs: Stubs) -> None:
    result = source_and_call(
        stubs, "lib.sh", "kvc_ensure_tools bash:bash kvc-nope-1:pkg-one kvc-nope-2:pkg-two",
        {"CI": "true", "KVC_RETRY_DELAY": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert [c.argv for c in stubs.calls("apt-get")] == [
        ["update", "-q"],
        ["install", "-y", "-q", "--no-install-recommends", "pkg-one", "pkg-two"],
    ]


def test_a_host_without_a_ca_bundle_gets_ca_certificates_too(stubs: Stubs) -> None:
    result = source_and_call(
        stubs, "lib.sh", "kvc_ensure_tools kvc-nope-1:curl",
        {"CI": "true", "KVC_CA_BUNDLE": str(stubs.root / "no-such-bundle.crt")},
    )
    assert result.returncode == 0, result.stderr
    assert stubs.calls("apt-get")[-1].argv == [
        "install", "-y", "-q", "--no-install-recommends", "ca-certificates", "curl"
    ]


def test_missing_tools_off_ci_are_named_not_installed(stubs: Stubs) -> None:
    result = source_and_call(stubs, "lib.sh", "kvc_ensure_tools kvc-nope-1:pkg-one")
    assert result.returncode != 0
    assert "missing tools: kvc-nope-1 (install packages: pkg-one" in result.stderr
    assert stubs.calls() == []


def add_dpkg(stubs: Stubs, installed: str) -> None:
    """dpkg-query that knows only the packages in `installed` (space-separated)."""
    stubs.add(
        "dpkg-query",
        f'for p in {installed}; do [ "$p" = "${{@: -1}}" ] && '
        "{ printf 'install ok installed'; exit 0; }; done; exit 1\n",
    )


def test_packages_without_commands_are_installed_when_missing(stubs: Stubs) -> None:
    add_dpkg(stubs, "present")
    result = source_and_call(
        stubs, "lib.sh", "kvc_ensure_packages present absent-one absent-two",
        {"KVC_AUTO_INSTALL": "true", "KVC_RETRY_DELAY": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert stubs.calls("apt-get")[-1].argv == [
        "install", "-y", "-q", "--no-install-recommends", "absent-one", "absent-two"
    ]


def test_missing_packages_off_ci_are_only_reported(stubs: Stubs) -> None:
    add_dpkg(stubs, "")
    result = source_and_call(stubs, "lib.sh", "kvc_ensure_packages libguestfs-xfs")
    assert result.returncode == 0, result.stderr
    assert "packages not installed: libguestfs-xfs" in result.stderr
    assert stubs.calls("apt-get") == []


# --- build.sh: what the libguestfs appliance needs on the host ---------------


def build_env(stubs: Stubs) -> dict[str, str]:
    data = b"disk"
    src = stubs.root.parent / "upstream.qcow2"
    src.write_bytes(data)
    return {
        "KVC_STUB_CURL_SRC": str(src),
        "KVC_URL": "https://images.example.invalid/disk.qcow2",
        "KVC_CHECKSUM": "sha256:" + hashlib.sha256(data).hexdigest(),
        "KVC_OUTPUT": "artifacts/build/debian-12/amd64/disk.qcow2",
        "KVC_FORCE_TCG": "true",
        "KVC_SYSPREP_INSTALL": "qemu-guest-agent",
        "CI": "true",
    }


@pytest.mark.parametrize(("has_dhclient", "expected"), [
    (True, ["libguestfs-xfs", "dhcpcd-base", "isc-dhcp-client"]),
    (False, ["libguestfs-xfs", "dhcpcd-base"]),
])
def test_build_installs_what_the_appliance_needs(
    stubs: Stubs, has_dhclient: bool, expected: list[str]
) -> None:
    add_dpkg(stubs, "")
    candidate = "4.4.3-P1" if has_dhclient else "(none)"
    policy = f"printf '%s:\\n  Installed: (none)\\n  Candidate: {candidate}\\n' \"$2\"\n"
    stubs.add("apt-cache", policy)
    result = stubs.run("build.sh", build_env(stubs))
    assert result.returncode == 0, result.stderr
    installs = [c.argv for c in stubs.calls("apt-get") if c.argv[0] == "install"]
    assert installs == [["install", "-y", "-q", "--no-install-recommends", *expected]]


def passt_probe(stubs: Stubs) -> Path:
    """A virt-customize that records what `passt --help` does in its environment,
    as libguestfs would see it (lib/launch.c runs it through the shell)."""
    seen = stubs.root.parent / "passt-status"
    stubs.add("virt-customize", f'passt --help >/dev/null 2>&1; echo $? > "{seen}"\n')
    stubs.add("passt", "exit 0\n")
    return seen


def test_build_hides_passt_so_libguestfs_uses_slirp(stubs: Stubs) -> None:
    seen = passt_probe(stubs)
    result = stubs.run("build.sh", build_env(stubs))
    assert result.returncode == 0, result.stderr
    # libguestfs takes passt only when this exits 0 or 1 (v1.52.0:lib/launch.c:401-421).
    assert seen.read_text() == "127\n"
    assert "appliance network: SLIRP" in result.stderr


def test_build_leaves_passt_alone_when_asked(stubs: Stubs) -> None:
    seen = passt_probe(stubs)
    result = stubs.run("build.sh", build_env(stubs) | {"KVC_GUESTFS_PASST": "true"})
    assert result.returncode == 0, result.stderr
    assert seen.read_text() == "0\n"
