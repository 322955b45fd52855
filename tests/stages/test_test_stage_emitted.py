"""The compiled test job, end to end against stub cluster tools.

A spec asking for every check (boot, guest-agent, ssh) on two arches is
compiled; each emitted test job's environment is read from the workflow as
GitHub reads it, and the emitted .kvc/stages/test.sh runs with exactly that
environment. The assertions are about what the cluster would receive (the
files handed to kubectl, the key handed to virtctl), not about how test.sh
gets there, so they hold across rewrites of the stage script.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from tests.backends.ci_syntax import github_env
from tests.stages.conftest import Stubs
from tests.stages.test_test_stage import fake_tool, kvm_fixture, pin_to

REF = "ghcr.io/example/debian@sha256:" + "cd" * 32
SPEC = """\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64, arm64]
    test:
      checks: [boot, guest-agent, ssh]
      timeout: 5m
    releases:
      - release_version: "12"
        url: https://example.org/debian-12-{arch}.qcow2
        release_checksum:
          amd64: "sha256:0bf4bf0e345d29a182a994654a94322b66a6227cf0905690d60e634b8a74275f"
          arm64: "sha256:a3b0c44298fc1c149afbf4c8996fb92427aa41a4649b934ca495991b7852b855"
"""


def stage_jobs(root: Path) -> dict[str, dict[str, Any]]:
    """The emitted jobs that run the test stage, by id."""
    workflow = YAML(typ="safe").load((root / ".github/workflows/kvc.yml").read_text())
    return {job_id: job for job_id, job in workflow["jobs"].items()
            if any("bash .kvc/stages/test.sh" in step.get("run", "") for step in job["steps"])}


@pytest.fixture
def compiled(stubs: Stubs) -> dict[str, dict[str, Any]]:
    spec = stubs.root / "kvc.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "github"])
    assert result.exit_code == 0, result.output
    jobs = stage_jobs(stubs.root)
    assert len(jobs) == 2, sorted(jobs)
    return jobs


def public_key(private_key: str, tmp_path: Path) -> str:
    key = tmp_path / "given_key"
    key.write_text(private_key)
    key.chmod(0o600)
    result = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True,
                            text=True, check=True)
    return " ".join(result.stdout.split()[:2])


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_emitted_test_job_runs_with_its_manifest_and_env(
        stubs: Stubs, compiled: dict[str, dict[str, Any]], arch: str, tmp_path: Path) -> None:
    (job_id,) = [j for j in compiled if j.endswith(f"-{arch}")]
    env = github_env(compiled[job_id]["env"])
    assert env["KVC_ARCH"] == arch, job_id
    assert "ssh" in env["KVC_CHECKS"].split(",")

    manifest = stubs.root / env["KVC_MANIFEST"]
    vm_name = YAML(typ="safe").load(manifest.read_text())["metadata"]["name"]
    staged = stubs.root / env["KVC_STAGED_DIR"]
    staged.mkdir(parents=True)
    (staged / "ref").write_text(REF + "\n")

    # The pinned kind/kubectl/virtctl are a recording fake whose sha256 the copied
    # pin table names (tests/stages/test_test_stage.py), so nothing real is fetched.
    fake = fake_tool(tmp_path)
    pin_to(stubs, fake)
    # virtctl has no pinned arm64 build yet (tools.sh): arm64 runs every other check.
    checks = env["KVC_CHECKS"] if arch == "amd64" else "boot,guest-agent"
    # KubeVirt never emulates arm64: that job runs with a (fixture) KVM whose probe passes.
    kvm = {"KVC_FORCE_TCG": "true"}
    if arch == "arm64":
        for qemu in ("qemu-system-x86_64", "qemu-system-aarch64"):
            stubs.add(qemu)
        kvm = kvm_fixture(tmp_path, "Y") | {"KVC_FORCE_TCG": "false"}
    run = stubs.run_emitted(".kvc/stages/test.sh", {
        **env,
        **kvm,
        "KVC_CHECKS": checks,
        "KVC_TEST_MODE": "kubevirt",  # the mode whose cluster tools are stubbed
        "KVC_STUB_CURL_SRC": str(fake), "KVC_POLL_INTERVAL": "0",
        "KVC_TOOLS_DIR": str(tmp_path / "tools"),
    })
    assert run.returncode == 0, run.stdout + run.stderr

    # Every call ran with the job's own arch.
    assert stubs.calls()
    assert {call.env["KVC_ARCH"] for call in stubs.calls()} == {arch}

    # What the cluster received: every placeholder substituted.
    given = stubs.files("kubectl")
    assert given, "kubectl was handed no file"
    received = "\n".join(entry["content"] for entry in given)
    assert "__KVC_" not in received, received
    assert REF in received
    assert vm_name in received

    if arch != "amd64":
        return
    # The ssh check logs in with the key whose public half the guest was given.
    (identity,) = {entry["content"] for entry in stubs.files("virtctl")}
    assert public_key(identity, tmp_path) in received
    ssh = [c.argv for c in stubs.calls("virtctl") if c.argv[0] == "ssh"]
    assert ssh and ssh[-1][-1].endswith(f"@vmi/{vm_name}")
