"""Each stage's environment carries the spec's choices, both ways round.

Written from the surviving mutants of kvc/compiler/env.py
(docs/mutation-report.md): every boolean the spec sets must reach its job as
"true" when set and "false" when not, and the dated tag prefix must follow
the first moving tag when there is one.
"""

from __future__ import annotations

import hashlib

import pytest

from kvc.compiler.graph import build_pipeline
from kvc.ir import Stage
from tests.conftest import resolve_text

CHECKSUM = "sha256:" + hashlib.sha256(b"test_env").hexdigest()


def spec(flavor_extra: str) -> str:
    return f"""\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64]
{flavor_extra}    releases:
      - release_version: "12"
        url: https://example.org/debian-12.qcow2
        release_checksum: {{amd64: "{CHECKSUM}"}}
"""


def env_of(stage: Stage, flavor_extra: str) -> dict[str, str]:
    pipeline = build_pipeline(resolve_text(spec(flavor_extra)))
    (job,) = [j for j in pipeline.jobs if j.stage is stage]
    return job.env_dict()


@pytest.mark.parametrize("value", [True, False])
def test_download_convert_reaches_the_build(value: bool) -> None:
    env = env_of(Stage.BUILD, f"    download: {{convert: {str(value).lower()}}}\n")
    assert env["KVC_CONVERT"] == str(value).lower()


@pytest.mark.parametrize("value", [True, False])
def test_sysprep_update_reaches_the_build(value: bool) -> None:
    env = env_of(Stage.BUILD, f"    sysprep: {{update: {str(value).lower()}}}\n")
    assert env["KVC_SYSPREP_UPDATE"] == str(value).lower()


@pytest.mark.parametrize("value", [True, False])
def test_publish_sign_reaches_the_publish_job(value: bool) -> None:
    env = env_of(Stage.PUBLISH, f"    publish: {{sign: {str(value).lower()}}}\n")
    assert env["KVC_SIGN"] == str(value).lower()


@pytest.mark.parametrize(("tags", "prefix"), [("[stable, '{release_version}']", "stable"),
                                              ("[]", "12")])
def test_dated_tag_prefix_is_the_first_tag_or_the_release(tags: str, prefix: str) -> None:
    env = env_of(Stage.PUBLISH, f"    publish: {{tags: {tags}}}\n")
    assert env["KVC_DATED_TAG_PREFIX"] == prefix


def test_makefile_settings_reach_the_build() -> None:
    env = env_of(Stage.BUILD, "    sysprep: {makefile: true, makefile_target: golden,"
                              " makefile_dir: img/x}\n")
    assert (env["KVC_MAKEFILE"], env["KVC_MAKEFILE_TARGET"], env["KVC_MAKEFILE_DIR"]) == (
        "true", "golden", "img/x")
