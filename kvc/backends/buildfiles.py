"""Files shared by every backend: stage scripts, Containerfile, bake file, manifests.

All of them derive from the IR alone, so a new backend gets them for free.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from kvc import stages
from kvc.backends import yamlout
from kvc.backends.base import EmitInput, Files, comment_header
from kvc.ir import Job, Pipeline, Stage, Target

OWNED_DIR = ".kvc"
CONTAINERFILE = ".kvc/Containerfile"
BAKE_FILE = ".kvc/docker-bake.json"
LABEL_PREFIX = "dev.kvc"
RUNTIME_VARIABLES = ("KVC_SOURCE", "KVC_REVISION", "KVC_CREATED")


def emit(source: EmitInput) -> Files:
    lines = [EmitInput.header_for(source.spec_name)]  # the same whatever the backend
    files: Files = {}
    for name in stages.SCRIPTS:
        files[f"{stages.DIR}/{name}"] = _script(name, lines)
    files[CONTAINERFILE] = comment_header(lines) + stages.read("Containerfile")
    files[BAKE_FILE] = bake(source.pipeline, lines[0])
    for target in source.pipeline.targets:
        job = source.pipeline.find(target.image, Stage.CONTAINERIZE)
        assert job is not None, target.image  # every image has a containerize job
        files[f".kvc/manifests/{target.slug}.yaml"] = (
            comment_header(lines) + yamlout.dump(manifest(source.pipeline, job)))
    return files


def _script(name: str, header: list[str]) -> str:
    text = stages.read(name)
    shebang, _, rest = text.partition("\n")
    if not shebang.startswith("#!"):
        return comment_header(header) + text
    return shebang + "\n" + comment_header(header) + rest


def _jobs(pipeline: Pipeline, stage: Stage, image: str | None = None) -> list[Job]:
    return [j for j in pipeline.jobs if j.stage is stage and image in {None, j.image}]


def _env(job: Job) -> dict[str, str]:
    return job.env_dict()


def bake(pipeline: Pipeline, header: str) -> str:
    targets = {t.slug: _target(t) for t in pipeline.targets}
    document = {
        "//": header,
        "variable": {name: {"default": ""} for name in RUNTIME_VARIABLES},
        "group": {"default": {"targets": list(targets)}},
        "target": targets,
    }
    return json.dumps(document, indent=2) + "\n"


def _target(target: Target) -> dict[str, Any]:
    return {
        "context": target.context,
        "dockerfile": posixpath.relpath(CONTAINERFILE, target.context),
        "platforms": [f"linux/{arch}" for arch in target.arches],
        "tags": [f"{target.repository}:{tag}" for tag in target.tags],
        "labels": _labels(target),
        "annotations": [f"index,manifest:{key}=${{{var}}}" for key, var in _OCI_RUNTIME],
        "attest": list(ATTEST if target.attest else NO_ATTEST),
    }


# BuildKit attestations as bake's `attest` list (docker/buildx@v0.36.1:bake/bake.go:839),
# each entry parsed as CSV with a required type (util/buildflags/attests_cty.go:52-57,
# attests.go:136-171). They need a builder with the docker-container driver, which
# containerize.sh creates (build/opt.go:347-354; driver/docker-container/driver.go:557),
# and both the registry and the OCI archive outputs carry them. Without any provenance
# entry buildx adds min-mode provenance itself (build/opt.go:362-372), so "off" must
# disable it explicitly: a disabled entry suppresses that default (attests.go:43-46).
ATTEST = ("type=sbom", "type=provenance,mode=max")
NO_ATTEST = ("type=provenance,disabled=true",)


_OCI_RUNTIME = (
    ("org.opencontainers.image.source", "KVC_SOURCE"),
    ("org.opencontainers.image.revision", "KVC_REVISION"),
    ("org.opencontainers.image.created", "KVC_CREATED"),
)


def _labels(target: Target) -> dict[str, str]:
    labels = {key: f"${{{var}}}" for key, var in _OCI_RUNTIME}
    labels["org.opencontainers.image.title"] = f"{target.flavor} {target.release_version}"
    labels["org.opencontainers.image.version"] = target.release_version
    labels[f"{LABEL_PREFIX}.flavor"] = target.flavor
    labels[f"{LABEL_PREFIX}.release-version"] = target.release_version
    for upstream in target.upstream:
        labels[f"{LABEL_PREFIX}.upstream.{upstream.arch}.url"] = upstream.url
        labels[f"{LABEL_PREFIX}.upstream.{upstream.arch}.checksum"] = upstream.checksum
    return labels


def vm_name(slug: str) -> str:
    """A DNS-1123 label: what Kubernetes accepts as an object name."""
    return f"kvc-test-{slug.lower().replace('_', '-')}"[:63].rstrip("-")


def manifest(pipeline: Pipeline, containerize: Job) -> dict[str, Any]:
    name = vm_name(_env(containerize)["KVC_IMAGE_SLUG"])
    checks = {c for t in _jobs(pipeline, Stage.TEST, containerize.image)
              for c in _env(t)["KVC_CHECKS"].split(",")}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kvc"}},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": {"labels": {"kubevirt.io/vm": name}},
                "spec": _vm_spec(checks),
            },
        },
    }


def _vm_spec(checks: set[str]) -> dict[str, Any]:
    return {
        "domain": {
            "devices": {"disks": [
                {"name": "containerdisk", "disk": {"bus": "virtio"}},
                {"name": "cloudinitdisk", "disk": {"bus": "virtio"}},
            ]},
            "resources": {"requests": {"memory": "1Gi"}},
        },
        "terminationGracePeriodSeconds": 0,
        "volumes": [
            {"name": "containerdisk",
             "containerDisk": {"image": "__KVC_IMAGE__", "imagePullPolicy": "IfNotPresent"}},
            {"name": "cloudinitdisk", "cloudInitNoCloud": {"userData": _user_data(checks)}},
        ],
    }


SSH_USER = "kvc"  # test.sh logs in as KVC_SSH_USER, whose default this is


def _user_data(checks: set[str]) -> str:
    lines = ["#cloud-config"]
    if "ssh" in checks:
        lines += ["users:", "  - default", f"  - name: {SSH_USER}", "    shell: /bin/bash",
                  "    ssh_authorized_keys:", "      - __KVC_SSH_PUBKEY__"]
    if "guest-agent" in checks:
        lines += ["runcmd:", "  - [systemctl, enable, --now, qemu-guest-agent]"]
    return "\n".join(lines) + "\n"
