"""Attestation manifests survive a digest-preserving promotion, with real skopeo
and a real registry.

What this proves and what it does not: BuildKit is not available here (no buildx
plugin, no buildkitd), and neither is `docker buildx imagetools create`, which is
what publish.sh runs. So the index is written by hand in the layout BuildKit
documents for attestations (moby/buildkit@v0.32.2:docs/attestations/
attestation-storage.md:20-182: one `unknown/unknown` manifest per platform image,
annotated `vnd.docker.reference.type: attestation-manifest` and
`vnd.docker.reference.digest`, with `application/vnd.in-toto+json` layers; in
both forms BuildKit writes: an OCI artifact with `artifactType`, the empty config
and a `subject`, or with `oci-artifact=false` a plain image config), pushed
by digest to docker-registry, and promoted to a final tag with
`skopeo copy --all --preserve-digests`. It shows that a registry stores and serves
such an index byte for byte, that a by-digest promotion keeps the index digest and
every attestation manifest and blob, and that the promoted tag resolves to the
staged digest. That imagetools create does the same (pushes the source index's
original bytes) rests on its source, cited in publish.sh
(docker/buildx@v0.36.1:util/imagetools/create.go:104-118), not on this test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Registry, require, run

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


@pytest.mark.parametrize("artifact", [True, False], ids=["oci-artifact", "image-config"])
def test_promotion_by_digest_keeps_the_index_and_its_attestations(
        registry: Registry, scratch: Path, artifact: bool) -> None:
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

    # publish: promote the staged digest to a final tag.
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           "--dest-tls-verify=false", f"docker://{staged}", f"docker://{repo}:12")
    final_bytes = raw(f"{repo}:12")
    assert final_bytes == staged_bytes  # same bytes, so the same digest
    promoted = json.loads(final_bytes)
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
    # The whole attested image, statements included, copies back out by the final tag.
    back = scratch / "back"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{repo}:12", f"oci:{back}:final")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == \
        index["digest"]
    for digest in [m["digest"] for m in promoted["manifests"]] + statements:
        blob = back / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert blob.read_bytes() == (layout.root / "blobs" / "sha256" /
                                     digest.removeprefix("sha256:")).read_bytes(), digest
