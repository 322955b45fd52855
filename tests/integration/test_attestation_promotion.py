"""Attestation manifests survive publish's promotion, with real publish.sh, skopeo
and a real registry.

What this proves and what it does not: BuildKit is not available here (no buildkitd
packaged for this Debian nor on PyPI), so containerize cannot run. The index it pushes
is written by hand in the layout BuildKit documents for attestations
(moby/buildkit@v0.32.2:docs/attestations/attestation-storage.md:20-182: one
`unknown/unknown` manifest per platform image, annotated `vnd.docker.reference.type:
attestation-manifest` and `vnd.docker.reference.digest`, with
`application/vnd.in-toto+json` layers; in both forms BuildKit writes: an OCI artifact
with `artifactType`, the empty config and a `subject`
(exporter/containerimage/writer.go:644), or with `oci-artifact=false` a plain image
config), and pushed by digest to docker-registry, as containerize's
`push-by-digest=true` output does (util/push/push.go:58-63 pushes the whole index under
the bare repository name).

Then the real kvc/stages/publish.sh promotes it to its final tags. publish.sh runs
`docker buildx imagetools create --tag ... REPO@DIGEST`. In the "buildx" case that is
the real buildx (Debian 13's docker-buildx 0.13.1, which
scripts/install-integration-deps.sh unpacks into .tools/bin; missing, the case skips, or
fails under KVC_REQUIRE_INTEGRATION=1) behind a `docker` shim, because no docker CLI is
installed where CI runs: the shim only does the CLI's plugin dispatch, `docker buildx
ARGS` runs `docker-buildx ARGS`, and refuses any other docker command. The standalone
binary builds the same commands as the plugin
(docker/buildx@v0.13.1:cmd/buildx/main.go:37-43,61-65), so imagetools create is buildx's
own; the docker CLI itself (and its `docker login`, which publish.sh runs only with
credentials, none here) is not tested. In the "stub" case a stand-in `docker` accepts
only what publish.sh may pass (a `buildx imagetools create` with `--tag` options and one
by-digest source) and does what imagetools create does for one index source and no
annotations, push the source's original bytes
(docker/buildx@v0.36.1:util/imagetools/create.go:104-118, the same in
v0.13.1:util/imagetools/create.go:80-85), with `skopeo copy --all --preserve-digests`.
Either way the test checks that every final tag names the staged digest byte for byte,
that each attestation manifest and its statements are still there, and that publish
hands on the staged digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.gate import installed

from .conftest import LOCAL_BUILDX, STAGES, Registry, require, run

pytestmark = pytest.mark.integration

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
ATTESTATION_ARTIFACT = "application/vnd.docker.attestation.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
IN_TOTO = "application/vnd.in-toto+json"
PREDICATES = ("https://spdx.dev/Document", "https://slsa.dev/provenance/v0.2")


class Layout:
    """A minimal OCI image layout written blob by blob."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data),
                **extra}

    def json_blob(self, document: Any, media_type: str, **extra: Any) -> dict[str, Any]:
        return self.blob(json.dumps(document, sort_keys=True).encode(), media_type, **extra)

    def manifest(self, config: dict[str, Any], layers: list[dict[str, Any]],
                 fields: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return self.json_blob({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                               "layers": layers, **(fields or {})}, OCI_MANIFEST, **extra)


def attestation_manifest(layout: Layout, image: dict[str, Any], statements: list[Any],
                         artifact: bool) -> dict[str, Any]:
    """The attestation manifest of one platform image, in either form BuildKit writes."""
    unknown = {"architecture": "unknown", "os": "unknown"}
    descriptor = {"platform": unknown, "annotations": {
        "vnd.docker.reference.digest": image["digest"],
        "vnd.docker.reference.type": "attestation-manifest"}}
    if artifact:
        config = layout.blob(b"{}", OCI_EMPTY)
        subject = {k: image[k] for k in ("mediaType", "digest", "size")}
        return layout.manifest(config, statements, {"artifactType": ATTESTATION_ARTIFACT,
                                                    "subject": subject}, **descriptor)
    config = layout.json_blob({**unknown, "rootfs": {"type": "layers", "diff_ids": []}},
                              OCI_CONFIG)
    return layout.manifest(config, statements, **descriptor)


def attested_index(layout: Layout, artifact: bool) -> dict[str, Any]:
    """Two platform images, each with an SBOM and a provenance attestation manifest."""
    manifests = []
    for arch in ("amd64", "arm64"):
        platform = {"architecture": arch, "os": "linux"}
        config = layout.json_blob({**platform, "rootfs": {"type": "layers", "diff_ids": []}},
                                  OCI_CONFIG)
        disk = layout.blob(f"disk image for {arch}".encode(), OCI_LAYER)
        image = layout.manifest(config, [disk], platform=platform)
        statements = [layout.json_blob({"_type": "https://in-toto.io/Statement/v0.1",
                                        "predicateType": p, "predicate": {}}, IN_TOTO,
                                       annotations={"in-toto.io/predicate-type": p})
                      for p in PREDICATES]
        manifests += [image, attestation_manifest(layout, image, statements, artifact)]
    index = layout.json_blob({"schemaVersion": 2, "mediaType": OCI_INDEX,
                              "manifests": manifests}, OCI_INDEX)
    (layout.root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [{**index, "annotations": {
            "org.opencontainers.image.ref.name": "staged"}}]}))
    return index


def skopeo(*args: str) -> str:
    return run(["skopeo", *args]).stdout


def raw(ref: str) -> bytes:
    return run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
               ).stdout.encode()


# Stands in for `docker buildx imagetools create` where no buildx plugin is installed.
# Anything publish.sh is not expected to pass (an --annotation, a --platform filter, a
# second source, a tag as source) is refused, so the stand-in never hides a promotion
# that would rewrite the index.
DOCKER_STUB = r"""#!/usr/bin/env bash
set -euo pipefail
[ "${1:-} ${2:-} ${3:-}" = "buildx imagetools create" ] ||
  { echo "docker stub: unsupported: $*" >&2; exit 2; }
shift 3
tags=()
while [ "$#" -gt 1 ]; do
  [ "$1" = --tag ] || { echo "docker stub: unsupported option $1" >&2; exit 2; }
  tags+=("$2")
  shift 2
done
[[ "${1:-}" =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]] ||
  { echo "docker stub: the source is not one repo@digest: ${1:-}" >&2; exit 2; }
for tag in "${tags[@]}"; do
  skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
    "docker://$1" "docker://$tag" >&2
done
"""


# `docker` for the "buildx" case: the docker CLI's plugin dispatch and nothing else.
DOCKER_SHIM = """#!/bin/sh
[ "${1:-}" = buildx ] || { echo "docker shim: only 'docker buildx' is provided: $*" >&2; exit 2; }
shift
exec "$KVC_TEST_DOCKER_BUILDX" "$@"
"""


def publish(scratch: Path, repo: str, staged: str, docker: str) -> list[str]:
    """Run publish.sh on the staged reference; the tags it set, in its order."""
    staged_dir = scratch / "staged"
    staged_dir.mkdir()
    (staged_dir / "ref").write_text(staged + "\n")
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB if docker == "stub" else DOCKER_SHIM)
    (bin_dir / "docker").chmod(0o755)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("KVC_", "DOCKER_"))}
    if docker == "buildx":
        # A fresh DOCKER_CONFIG: no developer's builders, contexts or logins take part.
        env |= {"KVC_TEST_DOCKER_BUILDX": installed("docker-buildx", LOCAL_BUILDX),
                "DOCKER_CONFIG": str(scratch / "docker")}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "KVC_STAGED_DIR": str(staged_dir), "KVC_IMAGE": repo,
            "KVC_TAGS": "12,12.5", "KVC_DATED_TAG_PREFIX": "12", "KVC_LATEST": "true",
            "KVC_RETRY_DELAY": "0", "KVC_OUTPUT_FILE": str(scratch / "output")}
    result = subprocess.run(["bash", str(STAGES / "publish.sh")], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert (scratch / "output").read_text() == f"digest={staged.split('@')[1]}\n"
    promoted = re.search(r"promoting \S+ to (.*)", result.stderr)
    assert promoted, result.stderr
    return promoted.group(1).split()


@pytest.mark.parametrize("docker", ["buildx", "stub"])
@pytest.mark.parametrize("artifact", [True, False], ids=["oci-artifact", "image-config"])
def test_publish_promotes_the_staged_index_with_its_attestations(
        registry: Registry, scratch: Path, artifact: bool, docker: str) -> None:
    require("skopeo")
    layout = Layout(scratch / "oci")
    index = attested_index(layout, artifact)
    repo = f"{registry.host}/kvc/debian"
    # containerize: push by digest (the staging tag only carries it there).
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout.root}:staged", f"docker://{repo}:staging")
    staged = f"{repo}@{index['digest']}"
    staged_bytes = raw(staged)
    assert hashlib.sha256(staged_bytes).hexdigest() == index["digest"].removeprefix("sha256:")

    tags = publish(scratch, repo, staged, docker)
    assert tags[:2] == ["12", "12.5"] and tags[3:] == ["latest"]
    assert re.fullmatch(rf"12-[0-9]{{8}}-{index['digest'][7:19]}", tags[2]), tags
    for tag in tags:
        assert raw(f"{repo}:{tag}") == staged_bytes, tag  # same bytes: the tested digest
    promoted = json.loads(staged_bytes)
    kinds = [(m["platform"]["os"], m["platform"]["architecture"],
              m.get("annotations", {}).get("vnd.docker.reference.type"))
             for m in promoted["manifests"]]
    assert kinds == [("linux", "amd64", None), ("unknown", "unknown", "attestation-manifest"),
                     ("linux", "arm64", None), ("unknown", "unknown", "attestation-manifest")]
    statements = []
    for entry in promoted["manifests"][1::2]:
        manifest = json.loads(raw(f"{repo}@{entry['digest']}"))
        assert [(layer["mediaType"], layer["annotations"]["in-toto.io/predicate-type"])
                for layer in manifest["layers"]] == [(IN_TOTO, p) for p in PREDICATES]
        statements += [layer["digest"] for layer in manifest["layers"]]
    # The whole attested image, statements included, copies back out by a final tag.
    back = scratch / "back"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{repo}:latest", f"oci:{back}:final")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == \
        index["digest"]
    for digest in [m["digest"] for m in promoted["manifests"]] + statements:
        blob = back / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert blob.read_bytes() == (layout.root / "blobs" / "sha256" /
                                     digest.removeprefix("sha256:")).read_bytes(), digest
