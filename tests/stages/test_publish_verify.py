"""publish.sh verifies the signature it just made, as each backend's run step sets it up.

The spec is compiled for each backend; the emitted run command of the publish job
(its runtime exports, then ``bash .kvc/stages/publish.sh``) runs under bash with
that backend's built-in variables faked and recording stubs for docker and cosign.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from tests.stages.conftest import RECORD, Stubs

DIGEST = "sha256:" + hashlib.sha256(b"publish verify test index").hexdigest()
IMAGE = "ghcr.io/example/debian"
ORG = "6a8c2f1e-0000-4000-8000-000000000001"
PROJECT = "0d2e5c7b-0000-4000-8000-000000000002"
WORKFLOW_REF = "example/images/.github/workflows/kvc.yml@refs/heads/main"
GITLAB_PROJECT = "https://gitlab.com/example/images"
SPEC = """\
kvc: 1
registry: ghcr.io/example
defaults:
  publish:
    sign: {sign}
flavors:
  debian:
    arches: [amd64]
    releases:
      - release_version: "12"
        url: "https://example.org/debian-12-{{arch}}.qcow2"
        release_checksum:
          amd64: "sha256:a28e6f6be8732e69a52851dfd352420415ebd4ec81268bb1b7ffb7d266ae0be6"
"""
# Each backend's built-in variables, as its runner would set them.
CI_ENV: dict[str, dict[str, str]] = {
    "github": {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKFLOW_REF": WORKFLOW_REF,
               "GITHUB_RUN_ID": "42", "GITHUB_SHA": "abc", "GITHUB_REPOSITORY": "example/images"},
    "circleci": {"CIRCLE_ORGANIZATION_ID": ORG, "CIRCLE_PROJECT_ID": PROJECT,
                 "CIRCLE_WORKFLOW_WORKSPACE_ID": "ws", "CIRCLE_SHA1": "abc",
                 "CIRCLE_REPOSITORY_URL": "git@github.com:example/images.git"},
    "gitlab": {"CI_SERVER_URL": "https://gitlab.com", "CI_PROJECT_URL": GITLAB_PROJECT,
               "CI_COMMIT_REF_NAME": "main", "CI_PIPELINE_ID": "42", "CI_COMMIT_SHA": "abc",
               "CI_CONFIG_PATH": "ci/images.yml"},
}
# What cosign verify must be asked, per backend (docs/verifying.md).
IDENTITY_FLAGS: dict[str, list[str]] = {
    "github": ["--certificate-oidc-issuer", "https://token.actions.githubusercontent.com",
               "--certificate-identity", f"https://github.com/{WORKFLOW_REF}"],
    "circleci": ["--certificate-oidc-issuer", f"https://oidc.circleci.com/org/{ORG}",
                 "--certificate-identity-regexp",
                 rf"^https://circleci\.com/api/v2/projects/{PROJECT}/pipeline-definitions/"],
    # "https://" + ci_config_ref_uri (sigstore/fulcio@v1.8.8:config/identity/config.yaml:251).
    "gitlab": ["--certificate-oidc-issuer", "https://gitlab.com",
               "--certificate-identity", f"{GITLAB_PROJECT}//ci/images.yml@refs/heads/main"],
}
BACKENDS = list(IDENTITY_FLAGS)


def publish_job(stubs: Stubs, backend: str, sign: bool = True) -> tuple[dict[str, str], str]:
    """Compile the spec into the stub repository; the publish job's env and run command."""
    (stubs.root / "kvc.yaml").write_text(SPEC.format(sign=str(sign).lower()))
    result = CliRunner().invoke(main, ["compile", str(stubs.root / "kvc.yaml"), "-b", backend])
    assert result.exit_code == 0, result.output
    yaml = YAML(typ="safe")
    if backend == "github":
        doc: Any = yaml.load((stubs.root / ".github/workflows/kvc.yml").read_text())
        job = doc["jobs"]["publish-debian-12"]
        run = next(s for s in job["steps"] if s.get("name") == "Run the publish stage")
        return dict(job["env"]), run["run"]
    if backend == "gitlab":
        doc = yaml.load((stubs.root / ".gitlab/kvc/images/debian-12.yml").read_text())
        job = doc["publish-debian-12"]
        # The job's script first installs docker and cosign; the stage starts at the exports.
        script: str = job["script"]
        start = script.index("export KVC_")
        return {k: str(v) for k, v in job["variables"].items()
                if k.startswith("KVC_")}, script[start:]
    doc = yaml.load((stubs.root / ".circleci/kvc.yml").read_text())
    job = doc["jobs"]["publish-debian-12"]
    run = next(s["run"] for s in job["steps"] if isinstance(s, dict) and "run" in s
               and s["run"]["name"] == "Run the publish stage")
    return dict(job["environment"]), run["command"]


def run_publish(stubs: Stubs, backend: str, env: dict[str, str], command: str,
                extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    staged = stubs.root / env["KVC_STAGED_DIR"]
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "ref").write_text(f"{IMAGE}@{DIGEST}\n")
    outputs = {"GITHUB_OUTPUT": str(stubs.root.parent / "github-output"),
               "GITHUB_STEP_SUMMARY": str(stubs.root.parent / "summary")}
    return subprocess.run(
        ["bash", "-c", command],
        env={**stubs.env, **env, **CI_ENV[backend], **outputs, **(extra or {})},
        cwd=stubs.root, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signs_then_verifies_with_this_runs_identity(stubs: Stubs, backend: str) -> None:
    env, command = publish_job(stubs, backend)
    result = run_publish(stubs, backend, env, command)
    assert result.returncode == 0, result.stderr
    cosign = [c.argv for c in stubs.calls("cosign")]
    assert cosign == [["sign", "--yes", f"{IMAGE}@{DIGEST}"],
                      ["verify", *IDENTITY_FLAGS[backend], f"{IMAGE}@{DIGEST}"]]
    assert stubs.tools()[-3:] == ["cosign", "cosign", "docker"]  # signed before tags move


def test_github_hands_the_promoted_digest_to_later_steps(stubs: Stubs) -> None:
    env, command = publish_job(stubs, "github")
    assert run_publish(stubs, "github", env, command).returncode == 0
    assert (stubs.root.parent / "github-output").read_text() == f"digest={DIGEST}\n"


def test_circleci_identity_matches_its_projects_certificates_only() -> None:
    """The regexp against the SAN Fulcio writes for CircleCI
    (sigstore/fulcio@v1.8.8:config/identity/config.yaml:297-315)."""
    pattern = re.compile(IDENTITY_FLAGS["circleci"][3])
    san = "https://circleci.com/api/v2/projects/{}/pipeline-definitions/9f3e0000-0000-4000-8000-3"
    assert pattern.match(san.format(PROJECT))
    assert not pattern.match(san.format("0d2e5c7b-0000-4000-8000-000000000099"))
    assert not pattern.match(san.format(PROJECT).replace("circleci.com", "circleciXcom"))
    assert not pattern.match("https://evil.example/" + san.format(PROJECT))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signature_that_does_not_verify_fails_the_job(stubs: Stubs, backend: str) -> None:
    # cosign signs, but every verify fails (recorded first, so the call is visible).
    stubs.add("cosign", f'{RECORD} cosign "$@" || exit 1\n'
                        '[ "$1" != verify ]\n')
    env, command = publish_job(stubs, backend)
    result = run_publish(stubs, backend, env, command)
    assert result.returncode != 0
    assert "does not verify" in result.stderr
    assert [c.argv[0] for c in stubs.calls("cosign")] == ["sign", "verify", "verify", "verify"]


@pytest.mark.parametrize("missing", ["KVC_SIGN_ISSUER", "KVC_SIGN_IDENTITY"])
def test_missing_identity_fails_the_job(stubs: Stubs, missing: str) -> None:
    env, command = publish_job(stubs, "github")
    command = "\n".join(line for line in command.splitlines()
                        if not line.startswith(f"export {missing}="))
    result = run_publish(stubs, "github", env, command, {missing: ""})
    assert result.returncode != 0
    assert missing in result.stderr
    assert [c.argv[0] for c in stubs.calls("cosign")] == ["sign"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsigned_publish_gets_no_identity_and_calls_no_cosign(stubs: Stubs,
                                                               backend: str) -> None:
    env, command = publish_job(stubs, backend, sign=False)
    assert "KVC_SIGN_" not in command
    result = run_publish(stubs, backend, env, command)
    assert result.returncode == 0, result.stderr
    assert stubs.calls("cosign") == []
