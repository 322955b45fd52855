"""The emitted bake file, as the real `docker buildx bake --print` reads it.

`bake --print` parses and resolves the definition without a builder or a Docker
daemon. Each target is printed with the --set values containerize.sh passes for
both of its outputs (push by digest with credentials, OCI archive without), taken
from containerize.sh's own bake_settings, so the attestations are checked together
with the outputs that must carry them.

buildx runs as the standalone `docker-buildx` binary, which builds the same commands
as the `docker buildx` plugin (docker/buildx@v0.13.1:cmd/buildx/main.go:37-43,61-65),
so no docker CLI is needed. scripts/install-integration-deps.sh unpacks Debian 13's
docker-buildx 0.13.1 into .tools/bin (Debian 12 packages none); without it these tests
skip, or fail under KVC_REQUIRE_INTEGRATION=1. 0.13.1's --print parses every target
for a build first (docker/buildx@v0.13.1:commands/bake.go:177-191): outputs, which opens
an OCI archive's dest (so the staged directory must exist, as containerize.sh makes it),
annotations and attests (bake/bake.go:1315-1340), but prints the attest and output
entries as the strings written (bake.go:684,698), where v0.20.0 and later print them
parsed (v0.20.0:bake/bake.go:706,720); `entries` reads both forms. Annotations are
printed as the strings bake resolves; kvc writes one type per entry (`index:KEY`,
`manifest:KEY`), since 0.13.1 would read a multi-type prefix (`index,manifest:KEY`,
v0.16.0 and later: v0.16.0:util/buildflags/export.go:104) as part of the key, silently;
tests/backends/test_attestations.py checks that with 0.13.1's own pattern. The checks
that need no buildx are in tests/backends/test_attestations.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kvc.backends import buildfiles
from kvc.ir import Target
from tests.backends.conftest import FIXTURE_SPECS, SPECS, emitted, generated, spec_params
from tests.gate import installed

from .conftest import LOCAL_BUILDX, STAGES

pytestmark = pytest.mark.integration

OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")
# How bake prints the entries kvc writes (docker/buildx@v0.36.1:util/buildflags/attests.go:
# a "disabled" entry keeps only its type and the flag).
ON = [{"type": "sbom"}, {"type": "provenance", "mode": "max"}]
OFF = [{"type": "provenance", "disabled": True}]
# The runtime variables at their empty default, on the index and each manifest.
ANNOTATIONS = [f"{kind}:{key}=" for kind in ("index", "manifest") for key in (
    "org.opencontainers.image.source", "org.opencontainers.image.revision",
    "org.opencontainers.image.created")]
RUNTIME_LABELS = ("org.opencontainers.image.source", "org.opencontainers.image.revision",
                  "org.opencontainers.image.created")


def buildx() -> str:
    return installed("docker-buildx", LOCAL_BUILDX)


def entries(printed: list[Any]) -> list[dict[str, Any]]:
    """Attest or output entries as bake parses them (docker/buildx@v0.36.1:util/buildflags/
    attests.go, export.go): buildx before v0.20.0 prints the `key=value,...` strings as
    written, which are parsed here the same way (v0.13.1:util/buildflags/attests.go:23-72:
    csv fields, `disabled` a boolean)."""
    parsed = []
    for entry in printed:
        if isinstance(entry, str):
            fields = dict(field.split("=", 1) for field in entry.split(","))
            parsed.append({k: (v == "true") if k == "disabled" else v
                           for k, v in fields.items()})
        else:
            parsed.append(entry)
    return parsed


def containerize_settings(target: str, credentials: bool, staged: Path) -> list[str]:
    """The two --set values containerize.sh passes to bake (its bake_settings)."""
    env = {"PATH": os.environ["PATH"], "KVC_BAKE_TARGET": target, "KVC_IMAGE_SLUG": target,
           "KVC_IMAGE": "registry.test/kvc/image", "KVC_STAGED_DIR": str(staged)}
    if credentials:
        env |= {"KVC_REGISTRY_USER": "u", "KVC_REGISTRY_PASSWORD": "p"}
    result = subprocess.run(
        ["bash", "-c", f'. "{STAGES / "containerize.sh"}" && bake_settings'],
        env=env, capture_output=True, text=True, check=True, timeout=60)
    settings = result.stdout.splitlines()
    assert len(settings) == 2, settings
    return settings


def bake_print(root: Path, target: str, settings: list[str]) -> dict[str, Any]:
    args = [arg for setting in settings for arg in ("--set", setting)]
    # A fresh DOCKER_CONFIG: no developer's builders or contexts take part.
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "DOCKER_CONFIG": str(root / "docker")}
    result = subprocess.run(
        [buildx(), "bake", "-f", buildfiles.BAKE_FILE, "--print", *args, target],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)["target"][target]
    return printed


def labels(printed: dict[str, Any]) -> dict[str, str]:
    """Label values as bake holds them: --print escapes template sequences again
    (docker/buildx@v0.36.1:bake/bake.go:878-897)."""
    return {k: v.replace("$${", "${").replace("%%{", "%{") for k, v in printed["labels"].items()}


def spec_labels(target: Target) -> dict[str, str]:
    """What the image's labels must say: the spec's values verbatim (tests/backends/specs/
    hostile.yaml tries `${...}` in URLs), the runtime variables at their empty default."""
    expected = {key: "" for key in RUNTIME_LABELS}
    expected |= {"org.opencontainers.image.title": f"{target.flavor} {target.release_version}",
                 "org.opencontainers.image.version": target.release_version,
                 "dev.kvc.flavor": target.flavor,
                 "dev.kvc.release-version": target.release_version,
                 "dev.kvc.fingerprint": target.fingerprint}
    for upstream in target.upstream:
        expected[f"dev.kvc.upstream.{upstream.arch}.url"] = upstream.url
        expected[f"dev.kvc.upstream.{upstream.arch}.checksum"] = upstream.checksum
    return expected


@pytest.mark.parametrize("spec", spec_params(SPECS))
def test_bake_prints_every_target_with_its_attestations_and_output(
        spec: Path, tmp_path: Path) -> None:
    buildx()
    (tmp_path / buildfiles.BAKE_FILE).parent.mkdir(parents=True)
    (tmp_path / buildfiles.BAKE_FILE).write_text(generated(spec, "github")[buildfiles.BAKE_FILE])
    (tmp_path / "staged").mkdir()  # containerize.sh makes it before baking
    for target in emitted(spec, "github").pipeline.targets:
        for credentials in (True, False):
            settings = containerize_settings(target.slug, credentials, tmp_path / "staged")
            printed = bake_print(tmp_path, target.slug, settings)
            assert entries(printed["attest"]) == (ON if target.attest else OFF), target.slug
            assert labels(printed) == spec_labels(target), target.slug
            assert printed["annotations"] == ANNOTATIONS, target.slug
            [output] = entries(printed["output"])
            wanted = "image" if credentials else "oci"
            assert output["type"] == wanted, (target.slug, output)


def test_spec_with_attestations_off_prints_no_sbom(tmp_path: Path) -> None:
    """publish.attest: false leaves only the disabled provenance entry, which suppresses
    buildx's default min-mode provenance (docker/buildx@v0.36.1:build/opt.go:362-372)."""
    buildx()
    (tmp_path / buildfiles.BAKE_FILE).parent.mkdir(parents=True)
    (tmp_path / buildfiles.BAKE_FILE).write_text(
        generated(OVERRIDES, "github")[buildfiles.BAKE_FILE])
    off = [t for t in emitted(OVERRIDES, "github").pipeline.targets if not t.attest]
    assert off
    for target in off:
        printed = bake_print(tmp_path, target.slug, [])
        assert entries(printed["attest"]) == OFF
