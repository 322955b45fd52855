"""Issue 16 at compile time: BuildKit attestations in the bake file, the signing
identity only where publish signs, and GitHub's provenance step with its permissions.

Without buildx, the bake file is checked here against what bake itself reads: the
JSON names of its target fields and the CSV form of an `attest` entry.
tests/integration/test_bake_print.py runs the real `bake --print` of buildx 0.13.1
(Debian 13's, which scripts/install-integration-deps.sh unpacks into .tools/bin).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kvc.backends import buildfiles
from kvc.backends.actions import ACTIONS
from kvc.backends.github import _subject_name
from kvc.ir import SIGN_RUNTIME, Stage

from .conftest import FIXTURE_SPECS, SPECS, emitted, generated, spec_params

# The JSON names of bake's target fields (docker/buildx@v0.36.1:bake/bake.go:831-877).
BAKE_TARGET_FIELDS = frozenset({
    "description", "inherits", "annotations", "attest", "context", "contexts", "dockerfile",
    "dockerfile-inline", "args", "labels", "tags", "cache-from", "cache-to", "target",
    "secret", "ssh", "platforms", "output", "pull", "no-cache", "network", "no-cache-filter",
    "shm-size", "ulimits", "resources", "call", "entitlements", "extra-hosts", "policy",
})
# The inputs of the pinned action (actions/attest-build-provenance@v4.1.0:action.yml:8-72).
ATTEST_ACTION_INPUTS = frozenset({
    "subject-path", "subject-digest", "subject-name", "subject-checksums", "predicate-type",
    "predicate", "predicate-path", "push-to-registry", "create-storage-record", "show-summary",
    "github-token",
})
OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")


def parse_attest(entry: str) -> dict[str, str]:
    """One entry as bake parses a string: CSV of key=value, a type required
    (docker/buildx@v0.36.1:util/buildflags/attests_cty.go:52-57, attests.go:136-171)."""
    fields = next(csv.reader([entry]))
    pairs = dict(field.split("=", 1) for field in fields)
    assert len(pairs) == len(fields) and all("=" in f for f in fields), entry
    assert pairs.get("type") in {"sbom", "provenance"}, entry
    return pairs


def bake_targets(spec: Path) -> dict[str, Any]:
    targets: dict[str, Any] = json.loads(generated(spec, "github")[buildfiles.BAKE_FILE])["target"]
    return targets


@pytest.mark.parametrize("spec", spec_params())
def test_bake_targets_use_only_bake_fields_and_valid_attest_entries(spec: Path) -> None:
    for name, target in bake_targets(spec).items():
        assert set(target) <= BAKE_TARGET_FIELDS, (name, set(target) - BAKE_TARGET_FIELDS)
        for entry in target["attest"]:
            parse_attest(entry)


# How buildx before v0.16.0 splits an annotation key into type, platform and key
# (docker/buildx@v0.13.1:util/buildflags/export.go:84); newer ones accept the same
# single-type form (v0.36.1:util/buildflags/export.go:170-200).
OLD_BUILDX_ANNOTATION = re.compile(r"^(?:([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?:)?(\S+)$")


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_annotations_have_one_type_each(spec: Path) -> None:
    """Every buildx a runner may have reads each annotation's type: the index and
    each platform manifest get the run's source, revision and creation time."""
    for name, target in bake_targets(spec).items():
        seen = set()
        for entry in target["annotations"]:
            key, _, value = entry.partition("=")
            match = OLD_BUILDX_ANNOTATION.match(key)
            assert match and match[1] in {"index", "manifest"}, (name, entry)
            assert match[3].startswith("org.opencontainers.image."), (name, entry)
            assert value.startswith("${KVC_"), (name, entry)
            seen.add((match[1], match[3]))
        assert {t for t, _ in seen} == {"index", "manifest"}, name
        assert len(seen) == len(target["annotations"]) == 6, name
        # Index annotations need an index, which BuildKit makes for one platform
        # without attestations only when asked
        # (moby/buildkit@v0.32.2:exporter/containerimage/writer.go:87-104).
        assert target["args"] == {"BUILDKIT_MULTI_PLATFORM": "1"}, name


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_every_image_asks_for_an_sbom_and_max_provenance_unless_turned_off(spec: Path) -> None:
    pipeline = emitted(spec, "github").pipeline
    targets = bake_targets(spec)
    for target in pipeline.targets:
        entries = [parse_attest(e) for e in targets[target.slug]["attest"]]
        if target.attest:
            assert {"type": "sbom"} in entries
            assert {"type": "provenance", "mode": "max"} in entries
        else:
            # buildx adds min-mode provenance when none is named (build/opt.go:362-372).
            assert entries == [{"type": "provenance", "disabled": "true"}]


def test_publish_attest_false_turns_off_only_its_own_images() -> None:
    targets = bake_targets(OVERRIDES)
    off = {slug for slug, t in targets.items() if t["attest"] == list(buildfiles.NO_ATTEST)}
    on = {slug for slug, t in targets.items() if t["attest"] == list(buildfiles.ATTEST)}
    assert off and all(slug.startswith("fedora-coreos") for slug in off)
    assert on and all(slug.startswith("ubuntu") for slug in on)
    assert off | on == set(targets)


@pytest.mark.parametrize("backend", ["github", "circleci"])
@pytest.mark.parametrize("spec", spec_params())
def test_only_publish_jobs_that_sign_get_the_signing_identity(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        wants = job.stage is Stage.PUBLISH and job.needs_identity_token
        assert bool(set(SIGN_RUNTIME) & set(job.runtime)) == wants, job.id
    signing = sum(j.needs_identity_token for j in out.pipeline.jobs)
    assert out.text.count("export KVC_SIGN_ISSUER=") == signing


def test_github_provenance_step_attests_the_promoted_digest_with_minimal_permissions() -> None:
    out = emitted(OVERRIDES, "github")
    document = out.document()
    action = ACTIONS["attest-build-provenance"]
    for job_id, job in document["jobs"].items():
        uses = [s.get("uses") for s in job["steps"]]
        if not job_id.startswith("publish-"):
            assert action.uses() not in uses, job_id
            assert "attestations" not in job.get("permissions", {}), job_id
            continue
        run = next(s for s in job["steps"] if s.get("name") == "Run the publish stage")
        assert 'export KVC_OUTPUT_FILE="$GITHUB_OUTPUT"' in run["run"]
        attest = job["steps"][uses.index(action.uses())]
        assert job["steps"].index(attest) == job["steps"].index(run) + 1
        # What the run's log shows (the examples, in the snapshots, do not attest).
        assert attest["name"] == "Record GitHub build provenance for the published digest"
        target = next(t for t in out.pipeline.targets if job_id.endswith(t.slug))
        assert set(attest["with"]) <= ATTEST_ACTION_INPUTS
        assert attest["with"] == {
            "subject-name": target.repository,  # quay.io/acme/...: already fully qualified
            "subject-digest": f"${{{{ steps.{run['id']}.outputs.digest }}}}",
            "push-to-registry": True,
            "create-storage-record": False,
        }
        assert job["permissions"] == {"contents": "read", "id-token": "write",
                                      "attestations": "write"}, job_id


def test_github_provenance_is_off_by_default() -> None:
    for spec in SPECS:
        if spec == OVERRIDES:
            continue
        text = emitted(spec, "github").text
        assert "attest-build-provenance" not in text and "attestations:" not in text


def test_docker_hub_subject_names_are_fully_qualified() -> None:
    assert _subject_name("containercraft/debian", "docker.io") == "docker.io/containercraft/debian"
    assert _subject_name("ghcr.io/o/debian", "ghcr.io") == "ghcr.io/o/debian"


GHCR_PROVENANCE = """\
kvc: 1
registry: ghcr.io/example
backends:
  github:
    attest_provenance: true
flavors:
  debian:
    arches: [amd64, arm64]
    releases:
      - release_version: "12"
        url: "https://example.org/debian-12-{arch}.qcow2"
        release_checksum:
          amd64: "sha256:%s"
          arm64: "sha256:%s"
"""


def test_on_ghcr_only_jobs_that_push_get_packages_write(tmp_path: Path) -> None:
    """push-to-registry stores the attestation next to the image, with the login publish
    made (the run's token on ghcr.io): publish already has packages: write for its own
    push, and no other job gains anything from the provenance step."""
    spec = tmp_path / "kvc.yaml"
    spec.write_text(GHCR_PROVENANCE % tuple(
        hashlib.sha256(f"debian 12 {arch}".encode()).hexdigest() for arch in ("amd64", "arm64")))
    out = emitted(spec, "github")
    jobs = out.document()["jobs"]
    action = ACTIONS["attest-build-provenance"].uses()
    for job in out.pipeline.jobs:
        permissions = jobs[job.id].get("permissions", {})
        uses = [s.get("uses") for s in jobs[job.id]["steps"]]
        if job.stage is Stage.PUBLISH:
            assert action in uses, job.id
            assert permissions == {"contents": "read", "packages": "write",
                                   "id-token": "write", "attestations": "write"}, job.id
            continue
        assert action not in uses, job.id
        assert "attestations" not in permissions and "id-token" not in permissions, job.id
        if permissions.get("packages") == "write":
            assert job.stage is Stage.CONTAINERIZE, job.id  # the other job that pushes
