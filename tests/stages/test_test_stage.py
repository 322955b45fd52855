"""test.sh: its pure functions (sourced) and its flow against stub tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import STAGES, Stubs

MANIFEST = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: debian-12-vm
spec:
  template:
    spec:
      volumes:
        - name: disk
          containerDisk:
            image: __KVC_IMAGE__
        - name: cloudinit
          cloudInitNoCloud:
            userData: |
              #cloud-config
              ssh_authorized_keys: ["__KVC_SSH_PUBKEY__"]
"""
REF = "ghcr.io/example/debian@sha256:" + "ab" * 32


def call_function(snippet: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Source test.sh (main does not run) and call a function."""
    script = f'. "{STAGES / "test.sh"}"; {snippet}'
    return subprocess.run(
        ["bash", "-c", script, "test", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("900", 900), ("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("08m", 480)],
)
def test_parse_timeout(spec: str, seconds: int) -> None:
    result = call_function('parse_timeout "$1"', spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{seconds}\n"


@pytest.mark.parametrize("spec", ["", "15x", "m", "-5m", "1.5h", "0", "15m; rm -rf /", "$(id)"])
def test_parse_timeout_rejects(spec: str) -> None:
    result = call_function('parse_timeout "$1"', spec)
    assert result.returncode != 0
    assert "KVC_TIMEOUT" in result.stderr


def test_substitute_manifest_is_literal(tmp_path: Path, hostile: str, canary: Path) -> None:
    src = tmp_path / "in.yaml"
    src.write_text(MANIFEST)
    dest = tmp_path / "out.yaml"
    image = r"reg.example/a&b\1@sha256:" + "0" * 64
    result = call_function(
        'substitute_manifest "$1" "$2" "$3" "$4"', str(src), str(dest), image, hostile
    )
    assert result.returncode == 0, result.stderr
    expected = MANIFEST.replace("__KVC_IMAGE__", image).replace("__KVC_SSH_PUBKEY__", hostile)
    assert dest.read_text() == expected
    assert not canary.exists()


@pytest.mark.parametrize(
    ("checks", "names"),
    [
        ("boot,guest-agent,ssh", ["boot", "guest-agent", "ssh"]),
        ("ssh, boot", ["ssh", "boot"]),
        ("boot,,", ["boot"]),
    ],
)
def test_check_names(checks: str, names: list[str]) -> None:
    result = call_function('KVC_CHECKS="$1" check_names', checks)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == names


def test_unknown_check_is_rejected() -> None:
    result = call_function('KVC_CHECKS="$1" check_names', "boot,reboot")
    assert result.returncode != 0
    assert "unknown check 'reboot'" in result.stderr


# --- the whole stage against stubs ------------------------------------------


def stage_env(stubs: Stubs, checks: str, oci: bool = False) -> dict[str, str]:
    staged = stubs.root / "artifacts/staged/debian-12"
    staged.mkdir(parents=True)
    (staged / "ref").write_text(REF + "\n")
    if oci:
        (staged / "image.oci.tar").write_bytes(b"oci")
        (staged / "archive-ref").write_text("ghcr.io/example/debian:kvc-staged-debian-12\n")
    manifest = stubs.root / ".kvc/manifests/debian-12.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(MANIFEST)
    return {
        "KVC_ARCH": "amd64",
        "KVC_STAGED_DIR": "artifacts/staged/debian-12",
        "KVC_MANIFEST": ".kvc/manifests/debian-12.yaml",
        "KVC_KUBEVIRT_VERSION": "v1.6.0",
        "KVC_CHECKS": checks,
        "KVC_TIMEOUT": "10m",
        "KVC_LOG_DIR": "artifacts/test-logs/debian-12-amd64",
        "KVC_FORCE_TCG": "true",
        "KVC_STUB_STDOUT_kubectl": "debian-12-vm",
        "KVC_STUB_STDOUT_virtctl": "kvc-ssh-ok",
    }


def argvs(stubs: Stubs, tool: str) -> list[list[str]]:
    return [c.argv for c in stubs.calls(tool)]


def wait_timeout(argv: list[str]) -> int:
    (flag,) = [a for a in argv if a.startswith("--timeout=")]
    return int(flag.removeprefix("--timeout=").removesuffix("s"))


def test_runs_checks_in_order_with_emulation_and_cleans_up(stubs: Stubs) -> None:
    result = stubs.run("test.sh", stage_env(stubs, "boot,guest-agent,ssh"))
    assert result.returncode == 0, result.stderr

    kubectl = argvs(stubs, "kubectl")
    base = "https://github.com/kubevirt/kubevirt/releases/download/v1.6.0"
    assert kubectl[0] == ["apply", "-f", f"{base}/kubevirt-operator.yaml"]
    assert kubectl[1] == ["apply", "-f", f"{base}/kubevirt-cr.yaml"]
    assert kubectl[2][:5] == ["-n", "kubevirt", "patch", "kubevirt", "kubevirt"]
    assert "useEmulation" in kubectl[2][-1]
    waits = [a for a in kubectl if a[0] == "wait"]
    assert [w[1:3] for w in waits] == [
        ["vmi/debian-12-vm", "--for=condition=Ready"],
        ["vmi/debian-12-vm", "--for=condition=AgentConnected"],
    ]
    assert all(0 < wait_timeout(w) <= 600 for w in waits)
    ssh = argvs(stubs, "virtctl")[0]
    assert ssh[0] == "ssh" and ssh[-1] == "kvc@vmi/debian-12-vm"

    kind = argvs(stubs, "kind")
    assert kind[0][:4] == ["create", "cluster", "--name", "kvc-debian-12"]
    assert kind[-1] == ["delete", "cluster", "--name", "kvc-debian-12"]
    assert stubs.tools()[-1] == "kind"

    applied = stubs.root / "artifacts/test-logs/debian-12-amd64/manifest.yaml"
    text = applied.read_text()
    assert f"image: {REF}\n" in text
    assert '["ssh-ed25519 ' in text and 'kvc-test"]' in text
    assert ["apply", "-f", "artifacts/test-logs/debian-12-amd64/manifest.yaml"] in kubectl


def test_failed_check_still_collects_logs_and_deletes_cluster(stubs: Stubs) -> None:
    recorder = stubs.bin / "kubectl"
    real = recorder.read_text().splitlines()[-1].removeprefix("exec ")
    stubs.add("kubectl", f'{real}\n[[ "$*" != *AgentConnected* ]]\n')
    result = stubs.run("test.sh", stage_env(stubs, "boot,guest-agent,ssh"))
    assert result.returncode != 0
    assert "virtctl" not in stubs.tools()  # ssh never ran after the failure
    assert argvs(stubs, "kind")[-1] == ["delete", "cluster", "--name", "kvc-debian-12"]
    kubectl = argvs(stubs, "kubectl")
    assert ["describe", "vm/debian-12-vm", "vmi/debian-12-vm"] in kubectl
    assert any(a[:2] == ["export", "logs"] for a in argvs(stubs, "kind"))


def test_oci_archive_is_loaded_and_used_by_its_archive_ref(stubs: Stubs) -> None:
    # A run id in the environment must not matter: the name comes from archive-ref.
    env = stage_env(stubs, "boot", oci=True) | {"KVC_RUN_ID": "42"}
    result = stubs.run("test.sh", env)
    assert result.returncode == 0, result.stderr
    load = argvs(stubs, "kind")[1]
    assert load == [
        "load", "image-archive", "artifacts/staged/debian-12/image.oci.tar",
        "--name", "kvc-debian-12",
    ]  # fmt: skip
    applied = stubs.root / "artifacts/test-logs/debian-12-amd64/manifest.yaml"
    assert "image: ghcr.io/example/debian:kvc-staged-debian-12\n" in applied.read_text()


def test_invalid_input_fails_before_creating_a_cluster(stubs: Stubs) -> None:
    env = stage_env(stubs, "boot,telepathy")
    result = stubs.run("test.sh", env)
    assert result.returncode != 0
    assert stubs.calls() == []
