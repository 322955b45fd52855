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
from kvc.ir import Pipeline, Target

CONTAINERFILE = stages.CONTAINERFILE
BAKE_FILE = ".kvc/docker-bake.json"
LABEL_PREFIX = "dev.kvc"
FINGERPRINT_LABEL = f"{LABEL_PREFIX}.fingerprint"  # what the plan stage reads back
RUNTIME_VARIABLES = ("KVC_SOURCE", "KVC_REVISION", "KVC_CREATED")


def emit(source: EmitInput) -> Files:
    lines = [EmitInput.header_for(source.spec_name)]  # the same whatever the backend
    files: Files = {}
    for name in stages.SCRIPTS:
        files[stages.path(name)] = _script(name, lines)
    files[BAKE_FILE] = bake(source.pipeline, lines[0])
    files[stages.PLAN_DATA] = plan_data(source.pipeline, lines[0])
    for target in source.pipeline.targets:
        files[f".kvc/manifests/{target.slug}.yaml"] = (
            comment_header(lines) + yamlout.dump(manifest(target)))
        files[f".kvc/manifests/{target.slug}.user-data"] = user_data(target, lines)
    return files


def _script(name: str, header: list[str]) -> str:
    text = stages.read(name)
    shebang, _, rest = text.partition("\n")
    if not shebang.startswith("#!"):
        return comment_header(header) + text
    return shebang + "\n" + comment_header(header) + rest


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
        "context": _literal(target.context),
        "dockerfile": _literal(posixpath.relpath(CONTAINERFILE, target.context)),
        "platforms": [_literal(f"linux/{arch}") for arch in target.arches],
        "tags": [_literal(f"{target.repository}:{tag}") for tag in target.tags],
        "labels": _labels(target),
        # Always an image index, one arch and no attestations included: BuildKit
        # refuses index annotations on a lone manifest
        # (moby/buildkit@v0.32.2:exporter/containerimage/writer.go:87-104), and
        # builds one for a single platform unless asked
        # (frontend/dockerui/config.go:226-240; docker/buildx@v0.36.1:build/opt.go:331-335).
        "args": {"BUILDKIT_MULTI_PLATFORM": "1"},
        "annotations": [f"{kind}:{key}=${{{var}}}" for kind in ("index", "manifest")
                        for key, var in _OCI_RUNTIME],
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


# The OCI labels that differ per run, also written as annotations of the index
# and of each manifest: one entry per type, because buildx before v0.16.0 reads
# `index,manifest:KEY` as a key with no type, silently
# (docker/buildx@v0.13.1:util/buildflags/export.go:84-104, against
# v0.16.0:util/buildflags/export.go:104), and Ubuntu and Debian runners may
# install such a buildx (GitLab's containerize job does).
_OCI_RUNTIME = (
    ("org.opencontainers.image.source", "KVC_SOURCE"),
    ("org.opencontainers.image.revision", "KVC_REVISION"),
    ("org.opencontainers.image.created", "KVC_CREATED"),
)


def _literal(text: str) -> str:
    """A spec value as bake reads it back unchanged. Bake evaluates every JSON string,
    object keys included, as an HCL template (hashicorp/hcl@v2.24.0:json/spec.md:343-350,
    383-386; docker/buildx@v0.36.1 uses hcl v2.24.0), so a URL holding `${` would
    be a syntax error or, worse, a silent substitution; `$${` and `%%{` are the
    template escapes (hclsyntax/spec.md:787-788)."""
    return text.replace("${", "$${").replace("%{", "%%{")


def _labels(target: Target) -> dict[str, str]:
    labels = {key: f"${{{var}}}" for key, var in _OCI_RUNTIME}
    labels |= {_literal(key): _literal(value) for key, value in _spec_labels(target).items()}
    return labels


def _spec_labels(target: Target) -> dict[str, str]:
    """The labels that carry spec values (no runtime variable)."""
    labels: dict[str, str] = {}
    labels["org.opencontainers.image.title"] = f"{target.flavor} {target.release_version}"
    labels["org.opencontainers.image.version"] = target.release_version
    labels[f"{LABEL_PREFIX}.flavor"] = target.flavor
    labels[f"{LABEL_PREFIX}.release-version"] = target.release_version
    labels[FINGERPRINT_LABEL] = target.fingerprint
    for upstream in target.upstream:
        labels[f"{LABEL_PREFIX}.upstream.{upstream.arch}.url"] = upstream.url
        labels[f"{LABEL_PREFIX}.upstream.{upstream.arch}.checksum"] = upstream.checksum
    return labels


def plan_data(pipeline: Pipeline, header: str) -> str:
    """The plan stage's input (contract 7): one tab-separated line per image.

    slug, image id, repository, image fingerprint, refresh seconds (0: never),
    then the image's moving tags, comma-separated (the plan reads the first and
    checks that the others name the same image). plan.sh reads the fields as data and checks each
    one's shape; a tab or newline cannot reach it (the display id is flattened,
    the other fields are validated names).
    """
    rows = [comment_header([header])]
    for t in pipeline.targets:
        image = " ".join(t.image.split())
        fields = (t.slug, image, t.repository, t.fingerprint, str(t.refresh_seconds),
                  ",".join(t.tags))
        rows.append("\t".join(fields) + "\n")
    return "".join(rows)


def vm_name(slug: str) -> str:
    """A DNS-1123 label: what Kubernetes accepts as an object name."""
    return f"kvc-test-{slug.lower().replace('_', '-')}"[:63].rstrip("-")


USER_DATA_SECRET = "kvc-user-data"  # test-kubevirt.sh creates it from KVC_USER_DATA
SSH_USER = "kvc"  # test.sh logs in as KVC_SSH_USER, whose default this is
BOOT_MARKER = "kvc-boot-ok"  # the boot check looks for it on the serial console


def manifest(target: Target) -> dict[str, Any]:
    """The VM the kubevirt test mode applies; its placeholders are filled by the test stage.

    Cloud-init comes from a Secret made of the generated user-data, so the
    kubevirt and qemu modes boot with the same file.
    """
    name = vm_name(target.slug)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kvc"}},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": {"labels": {"kubevirt.io/vm": name}},
                "spec": _vm_spec(),
            },
        },
    }


def _vm_spec() -> dict[str, Any]:
    return {
        "domain": {
            "devices": {
                "disks": [
                    {"name": "containerdisk", "disk": {"bus": "virtio"}},
                    {"name": "cloudinitdisk", "disk": {"bus": "virtio"}},
                ],
                # The boot check reads the serial console from the launcher's
                # guest-console-log container (KubeVirt >= v1.1.0).
                "logSerialConsole": True,
            },
            "resources": {"requests": {"memory": "1Gi"}},
        },
        "terminationGracePeriodSeconds": 0,
        "volumes": [
            {"name": "containerdisk",
             "containerDisk": {"image": "__KVC_IMAGE__", "imagePullPolicy": "IfNotPresent",
                               "imagePullSecret": "__KVC_PULL_SECRET__"}},
            {"name": "cloudinitdisk",
             "cloudInitNoCloud": {"secretRef": {"name": USER_DATA_SECRET}}},
        ],
    }


def user_data(target: Target, header: list[str]) -> str:
    """Cloud-init for the boot test: the boot marker, plus what the checks need.

    runcmd runs at the end of boot, so the marker on the console means the
    guest OS came up; __KVC_SSH_PUBKEY__ is replaced by the test stage.
    """
    checks = target.checks
    document: dict[str, Any] = {}
    if "ssh" in checks:
        document["users"] = ["default", {"name": SSH_USER, "shell": "/bin/bash",
                                         "ssh_authorized_keys": ["__KVC_SSH_PUBKEY__"]}]
    runcmd: list[list[str]] = []
    if "guest-agent" in checks:
        runcmd.append(["systemctl", "enable", "--now", "qemu-guest-agent"])
    # /dev/console is only the last console= of the kernel command line (tty0 on
    # some images): also write to each serial port that exists, which is where
    # KubeVirt's console log and the qemu mode read (ttyS0, ttyAMA0 on arm64).
    # The marker starts a line of its own: a getty's "host login: " prompt may be
    # waiting on that console without a newline (cloud-final runs after
    # multi-user.target: canonical/cloud-init@13ff31d:systemd/cloud-final.service.tmpl:5-8),
    # and the boot check wants the marker as a whole line (lib.sh kvc_boot_marker).
    runcmd.append(["sh", "-c", f"for d in /dev/console /dev/ttyS0 /dev/ttyAMA0 /dev/hvc0; "
                               f"do [ -c \"$d\" ] && printf '\\n{BOOT_MARKER}\\n' > \"$d\"; "
                               "done; true"])
    document["runcmd"] = runcmd
    return "#cloud-config\n" + comment_header(header) + yamlout.dump(document)
