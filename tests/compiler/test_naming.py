"""Every name derives from the identity, sanitised for the strictest backend."""

from __future__ import annotations

import re

import pytest

from kvc.compiler.naming import names_for, sanitize

GITHUB_JOB_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@pytest.mark.parametrize(("raw", "safe"), [
    ("ubuntu-24.04", "ubuntu-24-04"),
    ("centos-stream-9", "centos-stream-9"),
    ("fedora-coreos-41.20241215.3.0", "fedora-coreos-41-20241215-3-0"),
    ("a b/c:d+e", "a-b-c-d-e"),
    ("Under_Score", "Under_Score"),
])
def test_sanitize_keeps_only_job_id_characters(raw: str, safe: str) -> None:
    assert sanitize(raw) == safe


def test_names_share_one_slug() -> None:
    names = names_for("ubuntu", "24.04")
    assert names.slug == "ubuntu-24-04"
    assert names.job("build", "arm64") == "build-ubuntu-24-04-arm64"
    assert names.job("containerize") == "containerize-ubuntu-24-04"
    assert names.build_artifact("amd64") == "build-ubuntu-24-04-amd64"
    assert names.build_output("amd64") == "artifacts/build/ubuntu-24-04/amd64/disk.qcow2"
    assert names.build_output("amd64").startswith(names.build_dir("amd64") + "/")
    assert names.bake_target == names.slug
    assert names.cache_key("arm64", "f00d") == "kvc-build-ubuntu-24-04-arm64-f00d"
    assert names.log_artifact("arm64") != names.build_artifact("arm64")


@pytest.mark.parametrize("stage", ["build", "containerize", "test", "publish"])
def test_job_ids_are_valid_github_ids(stage: str) -> None:
    for flavor, version in [("ubuntu", "24.04"), ("opensuse-leap", "15.6"), ("x", "v1+b2")]:
        assert GITHUB_JOB_ID.match(names_for(flavor, version).job(stage, "amd64"))


def test_different_identities_can_collide_which_the_compiler_rejects() -> None:
    # the reason for the name-collision rule (tests/data/err/name-collision.yaml)
    assert names_for("ubuntu", "24.04").slug == names_for("ubuntu", "24-04").slug
