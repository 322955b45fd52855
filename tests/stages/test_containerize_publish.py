"""containerize.sh and publish.sh against a recording docker/cosign."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import STAGES, Stubs

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "ghcr.io/example/debian"
STAGED = "artifacts/staged/debian-12"


def containerize_env(stubs: Stubs, arches: str = "amd64,arm64") -> dict[str, str]:
    for arch in arches.split(","):
        disk = stubs.root / "artifacts/build/debian-12" / arch / "disk.qcow2"
        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.write_bytes(b"qcow2")
    return {
        "KVC_BAKE_FILE": ".kvc/docker-bake.json",
        "KVC_BAKE_TARGET": "debian-12",
        "KVC_IMAGE": IMAGE,
        "KVC_ARCHES": arches,
        "KVC_STAGED_DIR": STAGED,
        "KVC_STUB_DIGEST": DIGEST,
    }


def bake_call(stubs: Stubs) -> list[str]:
    (bake,) = [c.argv for c in stubs.calls("docker") if c.argv[:2] == ["buildx", "bake"]]
    return bake


# Vendor variables must not change anything (contract 1): a run id in them,
# in KVC_RUN_ID, or nowhere gives the same push.
@pytest.mark.parametrize(
    "run_ids",
    [
        {"KVC_RUN_ID": "7", "GITHUB_RUN_ID": "8", "CIRCLE_WORKFLOW_ID": "9"},
        {"GITHUB_RUN_ID": "8", "CIRCLE_WORKFLOW_ID": "9"},
        {},
    ],
)
def test_push_by_digest_without_tag_and_record_digest(
    stubs: Stubs, run_ids: dict[str, str]
) -> None:
    secret = "pa$$ 'word' $(touch x)"
    env = containerize_env(stubs) | run_ids
    env |= {"KVC_REGISTRY_USER": "bot", "KVC_REGISTRY_PASSWORD": secret}
    result = stubs.run("containerize.sh", env)
    assert result.returncode == 0, result.stderr

    login = stubs.calls("docker")[0].argv
    assert login == ["login", "--username", "bot", "--password-stdin", "ghcr.io"]
    assert Path(str(stubs.log) + ".login-stdin").read_text() == secret
    assert all(secret not in c.argv for c in stubs.calls())

    bake = bake_call(stubs)
    meta = bake[bake.index("--metadata-file") + 1]
    assert bake == [
        "buildx", "bake", "--builder", "kvc",
        "-f", ".kvc/docker-bake.json",
        "--metadata-file", meta,
        "--set", f"debian-12.tags={IMAGE}",
        "--set", "debian-12.output=type=image,push=true,push-by-digest=true,name-canonical=true",
        "debian-12",
    ]  # fmt: skip
    assert not Path(meta).exists()
    assert (stubs.root / STAGED / "ref").read_text() == f"{IMAGE}@{DIGEST}\n"
    assert sorted(p.name for p in (stubs.root / STAGED).iterdir()) == ["ref"]


def test_without_credentials_exports_oci_archive(stubs: Stubs) -> None:
    env = containerize_env(stubs) | {"KVC_REGISTRY_USER": "bot"}
    result = stubs.run("containerize.sh", env)
    assert result.returncode == 0, result.stderr
    assert "login" not in [c.argv[0] for c in stubs.calls("docker")]
    bake = bake_call(stubs)
    assert f"debian-12.output=type=oci,dest={STAGED}/image.oci.tar" in bake
    assert f"debian-12.tags={IMAGE}:kvc-staged-debian-12" in bake
    staged = stubs.root / STAGED
    assert (staged / "image.oci.tar").read_bytes() == b"oci-archive"
    assert (staged / "ref").read_text() == f"{IMAGE}@{DIGEST}\n"
    assert (staged / "archive-ref").read_text() == f"{IMAGE}:kvc-staged-debian-12\n"


def test_a_publishing_run_without_credentials_fails_before_building(stubs: Stubs) -> None:
    """The archive fallback is for pull requests: a push to the default branch would
    build and test it, then fail in publish, which cannot promote an archive."""
    env = containerize_env(stubs) | {"KVC_PUBLISHES": "true", "KVC_REGISTRY_USER": "bot"}
    result = stubs.run("containerize.sh", env)
    assert result.returncode != 0
    assert "this run publishes" in result.stderr
    assert "KVC_REGISTRY_USER/KVC_REGISTRY_PASSWORD are empty" in result.stderr
    assert not stubs.calls("docker")  # stopped before any work
    assert not (stubs.root / STAGED / "ref").exists()


@pytest.mark.parametrize(("publishes", "credentials", "archive"), [
    ("false", False, True),  # a pull request: the archive fallback
    ("", False, True),  # kvc run, or a backend that does not say
    ("true", True, False),  # a publishing run with credentials pushes
])
def test_the_archive_fallback_only_where_nothing_publishes(
        stubs: Stubs, publishes: str, credentials: bool, archive: bool) -> None:
    env = containerize_env(stubs) | {"KVC_PUBLISHES": publishes}
    if credentials:
        env |= {"KVC_REGISTRY_USER": "bot", "KVC_REGISTRY_PASSWORD": "secret"}
    result = stubs.run("containerize.sh", env)
    assert result.returncode == 0, result.stderr
    assert (stubs.root / STAGED / "image.oci.tar").exists() is archive


def test_a_rerun_replaces_what_an_earlier_attempt_staged(stubs: Stubs) -> None:
    """A re-run in the same workspace (CircleCI) starts from a clean staged dir:
    an archive from an attempt without credentials must not survive a push."""
    staged = stubs.root / STAGED
    staged.mkdir(parents=True)
    for name in ("ref", "image.oci.tar", "archive-ref"):
        (staged / name).write_text("stale\n")
    env = containerize_env(stubs) | {"KVC_REGISTRY_USER": "bot", "KVC_REGISTRY_PASSWORD": "pw"}
    assert stubs.run("containerize.sh", env).returncode == 0
    assert sorted(p.name for p in staged.iterdir()) == ["ref"]
    assert (staged / "ref").read_text() == f"{IMAGE}@{DIGEST}\n"


def test_creates_a_multi_platform_builder_when_missing(stubs: Stubs) -> None:
    env = containerize_env(stubs) | {"KVC_STUB_NO_BUILDER": "1"}
    assert stubs.run("containerize.sh", env).returncode == 0
    argvs = [c.argv for c in stubs.calls("docker")]
    assert ["buildx", "create", "--name", "kvc", "--driver", "docker-container"] in argvs


def test_missing_arch_artifact_fails_before_baking(stubs: Stubs) -> None:
    env = containerize_env(stubs, "amd64") | {"KVC_ARCHES": "amd64,arm64"}
    result = stubs.run("containerize.sh", env)
    assert result.returncode != 0
    assert "artifacts/build/debian-12/arm64/disk.qcow2" in result.stderr
    assert stubs.calls("docker") == []


def test_bake_without_digest_fails_and_writes_no_ref(stubs: Stubs) -> None:
    env = containerize_env(stubs) | {"KVC_STUB_DIGEST": "not-a-digest"}
    result = stubs.run("containerize.sh", env)
    assert result.returncode != 0
    assert not (stubs.root / STAGED / "ref").exists()


# --- publish ---------------------------------------------------------------


def publish_env(stubs: Stubs, ref: str = f"{IMAGE}@{DIGEST}") -> dict[str, str]:
    staged = stubs.root / STAGED
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "ref").write_text(ref + "\n")
    return {
        "KVC_STAGED_DIR": STAGED,
        "KVC_IMAGE": IMAGE,
        "KVC_TAGS": "12,bookworm",
        "KVC_DATED_TAG_PREFIX": "12",
        "KVC_LATEST": "true",
        "KVC_SIGN": "true",
        "KVC_SIGN_ISSUER": "https://token.actions.githubusercontent.com",
        "KVC_SIGN_IDENTITY":
            "https://github.com/example/images/.github/workflows/kvc.yml@refs/heads/main",
    }


def dated(prefix: str) -> set[str]:
    """The dated tag for today or (around midnight) yesterday, in UTC."""
    today = dt.datetime.now(dt.UTC).date()
    days = (today, today - dt.timedelta(days=1))
    return {f"{prefix}-{d:%Y%m%d}-{DIGEST[7:19]}" for d in days}


def promoted_tags(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]


def test_promotes_digest_to_all_tags_and_signs(stubs: Stubs) -> None:
    result = stubs.run("publish.sh", publish_env(stubs))
    assert result.returncode == 0, result.stderr
    assert stubs.tools() == ["cosign", "cosign", "docker"]  # signed before any tag moves
    create = stubs.calls("docker")[0].argv
    assert create[:3] == ["buildx", "imagetools", "create"]
    assert create[-1] == f"{IMAGE}@{DIGEST}"
    tags = promoted_tags(create)
    assert tags[:2] == [f"{IMAGE}:12", f"{IMAGE}:bookworm"]
    assert tags[2].removeprefix(f"{IMAGE}:") in dated("12")
    assert tags[3:] == [f"{IMAGE}:latest"]
    assert len(create) == 3 + 2 * 4 + 1
    assert stubs.calls("cosign")[0].argv == ["sign", "--yes", f"{IMAGE}@{DIGEST}"]
    assert stubs.calls("cosign")[1].argv[0] == "verify"  # tests/stages/test_publish_verify.py


def test_no_latest_no_signing_and_duplicates_removed(stubs: Stubs) -> None:
    env = publish_env(stubs) | {
        "KVC_LATEST": "false",
        "KVC_SIGN": "false",
        "KVC_TAGS": "12, 12,latest-ish",
        "KVC_DATED_TAG_PREFIX": "",
    }
    result = stubs.run("publish.sh", env)
    assert result.returncode == 0, result.stderr
    assert stubs.tools() == ["docker"]
    tags = promoted_tags(stubs.calls("docker")[0].argv)
    assert tags[:2] == [f"{IMAGE}:12", f"{IMAGE}:latest-ish"]
    assert tags[2].removeprefix(f"{IMAGE}:") in dated("12")
    assert len(tags) == 3


@pytest.mark.parametrize(
    "ref",
    [
        f"{IMAGE}:12",
        f"{IMAGE}@sha256:abc",
        f"{IMAGE}@{DIGEST} ; touch pwned",
        "",
    ],
)
def test_refuses_anything_but_a_digest(stubs: Stubs, ref: str) -> None:
    result = stubs.run("publish.sh", publish_env(stubs, ref))
    assert result.returncode != 0
    assert stubs.calls() == []


@pytest.mark.parametrize("one_line", [True, False])
def test_refuses_hostile_tags(stubs: Stubs, hostile: str, canary: Path, one_line: bool) -> None:
    tag = hostile.replace("\n", " ") if one_line else hostile
    env = publish_env(stubs) | {"KVC_TAGS": f"12,{tag}"}
    result = stubs.run("publish.sh", env)
    assert result.returncode != 0
    assert ("invalid tag" if one_line else "must be one line") in result.stderr
    assert stubs.calls() == []
    assert not canary.exists()


def test_refuses_unpushed_oci_archive(stubs: Stubs) -> None:
    env = publish_env(stubs)
    (stubs.root / STAGED / "image.oci.tar").write_bytes(b"x")
    result = stubs.run("publish.sh", env)
    assert result.returncode != 0
    assert "OCI archive" in result.stderr
    assert stubs.calls() == []


def test_login_uses_stdin(stubs: Stubs) -> None:
    env = publish_env(stubs, f"containercraft/debian@{DIGEST}")
    env |= {"KVC_REGISTRY_USER": "u", "KVC_REGISTRY_PASSWORD": "s3cr3t"}
    env["KVC_IMAGE"] = "containercraft/debian"
    env["KVC_SIGN"] = "false"
    assert stubs.run("publish.sh", env).returncode == 0
    login = stubs.calls("docker")[0].argv
    assert login == ["login", "--username", "u", "--password-stdin", "docker.io"]
    assert Path(str(stubs.log) + ".login-stdin").read_text() == "s3cr3t"


def test_signing_failure_fails_the_job(stubs: Stubs) -> None:
    env = publish_env(stubs) | {"KVC_STUB_FAIL_cosign": "-1"}
    assert stubs.run("publish.sh", env).returncode != 0


def test_bake_gets_the_runtime_oci_label_values(stubs: Stubs) -> None:
    # Only the neutral KVC_* values count; vendor variables are ignored.
    env = containerize_env(stubs) | {
        "KVC_SOURCE": "https://example.com/org/images",
        "KVC_REVISION": "abc123",
        "GITHUB_REPOSITORY": "org/other",
        "GITHUB_SHA": "fff",
        "CIRCLE_SHA1": "eee",
    }
    result = stubs.run("containerize.sh", env)
    assert result.returncode == 0, result.stderr
    (bake,) = [c for c in stubs.calls("docker") if c.argv[:2] == ["buildx", "bake"]]
    assert bake.env["KVC_SOURCE"] == "https://example.com/org/images"
    assert bake.env["KVC_REVISION"] == "abc123"
    created = dt.datetime.strptime(bake.env["KVC_CREATED"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(dt.datetime.now() - created) < dt.timedelta(days=1)


def test_label_values_fall_back_to_the_checkout(stubs: Stubs) -> None:
    root = stubs.root
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "remote", "add", "origin", "https://example.com/r.git"],
                   check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    result = stubs.run("containerize.sh", containerize_env(stubs) | {"GITHUB_SHA": "fff"})
    assert result.returncode == 0, result.stderr
    (bake,) = [c for c in stubs.calls("docker") if c.argv[:2] == ["buildx", "bake"]]
    assert bake.env["KVC_SOURCE"] == "https://example.com/r.git"
    assert bake.env["KVC_REVISION"] == head


# Variables only one CI sets: GitHub's GITHUB_* and RUNNER_*, CircleCI's CIRCLE_*,
# GitLab's CI_* and GITLAB_*. (CI itself, which all of them set, is no vendor's.)
VENDOR_VARIABLE = re.compile(r"\b(?:GITHUB|RUNNER|CIRCLE|CI|GITLAB)_[A-Z0-9_]+")


def test_stage_scripts_name_no_ci_vendor() -> None:
    """Contract 1: backends map their variables to KVC_*; scripts read only those."""
    scripts = sorted(STAGES.glob("*.sh"))
    assert {s.name for s in scripts} >= {"lib.sh", "plan.sh", "test.sh"}
    for script in scripts:
        assert not VENDOR_VARIABLE.findall(script.read_text()), script.name


@pytest.mark.parametrize("name", ["$GITHUB_RUN_ID", "${RUNNER_TEMP}", "$CIRCLE_SHA1",
                                  '"$CI_PIPELINE_ID"', "${GITLAB_USER_LOGIN:-}"])
def test_the_vendor_pattern_sees_every_ci(name: str) -> None:
    assert VENDOR_VARIABLE.search(f"echo {name}")
    assert not VENDOR_VARIABLE.search('[ "${CI:-}" = true ] && echo "$KVC_CI_X"')


def test_publish_refuses_a_digest_from_another_repository(stubs: Stubs) -> None:
    env = publish_env(stubs, f"ghcr.io/example/other@{DIGEST}")
    result = stubs.run("publish.sh", env)
    assert result.returncode != 0
    assert "is not in ghcr.io/example/debian" in result.stderr
    assert stubs.calls() == []
