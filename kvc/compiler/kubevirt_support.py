"""Which Kubernetes each KubeVirt release supports, and the warning validate prints.

The test stage runs KubeVirt on kind's pinned node image (KVC_KIND_NODE_IMAGE in
kvc/stages/tools.sh). A spec may choose another KubeVirt release with
``test.kubevirt``; when that release does not support the node's Kubernetes the
test may still pass or fail for reasons unrelated to the image, so ``kvc
validate`` warns (it is not an error: KubeVirt often works a minor outside its
table). The table is KubeVirt's own, kubevirt/sig-release
releases/k8s-support-matrix.md, commits bbf298e (2025-07-30), 9029086
(2026-03-24) and 47f8f09 (2026-07-02); a Kubernetes minor marked EOL there was
supported and stays listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources

from kvc.compiler.model import ImageBuild

# KubeVirt minor -> the Kubernetes minors it supports.
SUPPORT: Mapping[str, frozenset[str]] = {
    "1.2": frozenset({"1.27", "1.28", "1.29"}),
    "1.3": frozenset({"1.28", "1.29", "1.30"}),
    "1.4": frozenset({"1.29", "1.30", "1.31"}),
    "1.5": frozenset({"1.30", "1.31", "1.32"}),
    "1.6": frozenset({"1.31", "1.32", "1.33"}),
    "1.7": frozenset({"1.32", "1.33", "1.34"}),
    "1.8": frozenset({"1.33", "1.34", "1.35"}),
    "1.9": frozenset({"1.34", "1.35", "1.36"}),
}

_MINOR = re.compile(r"v(\d+\.\d+)\.")


def _tools_value(name: str) -> str:
    text = resources.files("kvc.stages").joinpath("tools.sh").read_text(encoding="utf-8")
    match = re.search(rf'^{name}="([^"]*)"', text, re.MULTILINE)
    if match is None:  # pragma: no cover - tools.sh is part of kvc
        raise LookupError(f"{name} is missing from kvc/stages/tools.sh")
    return match.group(1)


def node_kubernetes() -> str:
    """The Kubernetes minor of the kind node image the test stage uses."""
    return _tools_value("KVC_KIND_NODE_KUBERNETES")


def pinned_virtctl() -> frozenset[tuple[str, str]]:
    """(version, arch) of every virtctl the pin table can download."""
    text = resources.files("kvc.stages").joinpath("tools.sh").read_text(encoding="utf-8")
    return frozenset(re.findall(r'^\s*"virtctl (\S+) (\S+) ', text, re.MULTILINE))


def pinned_kubevirt() -> frozenset[str]:
    """KubeVirt releases whose manifests the pin table can download."""
    text = resources.files("kvc.stages").joinpath("tools.sh").read_text(encoding="utf-8")
    return frozenset(re.findall(r'^\s*"kubevirt-operator (\S+) ', text, re.MULTILINE))


def supports(kubevirt: str, kubernetes: str) -> bool:
    match = _MINOR.match(kubevirt)
    return match is not None and kubernetes in SUPPORT.get(match.group(1), frozenset())


def warnings(builds: Iterable[ImageBuild]) -> list[str]:
    """One `FILE:LINE:COL: warning: ...` line per test.kubevirt value the stage cannot honour."""
    kubernetes = node_kubernetes()
    pinned = pinned_kubevirt()
    virtctl = pinned_virtctl()
    lines: dict[str, None] = {}
    for build in builds:
        if not build.test.enabled:
            continue
        version = build.test.kubevirt
        origin = build.origins.get("test.kubevirt")
        where = str(origin.pos) if origin is not None and origin.pos is not None else "kvc"
        if not supports(version, kubernetes):
            lines[f"{where}: warning: test.kubevirt {version} does not support Kubernetes "
                  f"{kubernetes}, which the test cluster runs (KubeVirt's support table: "
                  "docs/stages.md) [kubevirt-support]"] = None
        if version not in pinned:
            lines[f"{where}: warning: test.kubevirt {version} has no pinned checksums in "
                  f".kvc/stages/tools.sh (pinned: {', '.join(sorted(pinned))}); the kubevirt "
                  "test mode will refuse to download it [kubevirt-pin]"] = None
        # ssh in kubevirt mode runs virtctl; test.mode auto falls back to qemu mode
        # without a pinned one, a forced kubevirt mode cannot.
        if (build.test.mode == "kubevirt" and "ssh" in build.test.checks
                and version in pinned and (version, build.arch) not in virtctl):
            mode = build.origins.get("test.mode")
            at = str(mode.pos) if mode is not None and mode.pos is not None else where
            lines[f"{at}: warning: test.mode kubevirt with the ssh check needs virtctl "
                  f"{version} for linux-{build.arch}, which has no verified sha256 in "
                  f".kvc/stages/tools.sh: that test stops before it starts; use test.mode "
                  f"auto or qemu for {build.arch} (docs/stages.md, 'Pinned tools') "
                  "[virtctl-pin]"] = None
    return list(lines)
