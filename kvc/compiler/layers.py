"""Flatten spec layers into ``dotted.key -> (value, Origin)`` and merge them.

Mappings merge key by key and lists/scalars replace (SPEC.md), which is exactly
"later layer wins per leaf" once every mapping is flattened to dotted leaves.
Each layer is flattened once and shared by every build that inherits it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kvc.compiler.model import Origin
from kvc.spec.loader import Document, PathKey
from kvc.spec.models import ArchLayer

Flat = dict[str, tuple[Any, Origin]]

# Keys that describe a layer's place in the tree rather than image settings.
_STRUCTURAL = {"per_arch", "releases", "release_version", "release_name",
               "insecure_skip_checksum", "locked_url"}
# Keys whose explicit null is meaningful ("no resize"); elsewhere null inherits.
_NULLABLE = {"sysprep.disk_size"}

BUILTIN: Mapping[str, Any] = {
    "arches": ["amd64", "arm64"],
    "download.in": "host",
    "download.container": "quay.io/kubevirt/libguestfs-tools:latest",
    "download.decompress": "auto",
    "download.convert": False,
    "sysprep.enabled": True,
    "sysprep.operations": ["defaults"],
    "sysprep.update": False,
    "sysprep.install": "qemu-guest-agent,cloud-init",
    "sysprep.post_commands": [],
    "sysprep.selinux_relabel": False,
    "sysprep.makefile": False,
    "sysprep.makefile_dir": "images/{flavor}",
    "sysprep.makefile_target": "customize",
    "sysprep.disk_size": None,
    "test.enabled": True,
    "test.kubevirt": "v1.6.0",
    "test.checks": ["boot", "guest-agent"],
    "test.timeout": "15m",
    "publish.tags": ["{release_version}"],
    "publish.latest": False,
    "publish.sign": False,
    "publish.refresh": "0",
}

_BUILTIN_ORIGIN = Origin("built-in default")


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer of the spec, where it sits in the document and what to call it."""

    name: str
    path: PathKey
    layer: ArchLayer


def builtin() -> Flat:
    return {key: (value, _BUILTIN_ORIGIN) for key, value in BUILTIN.items()}


def flatten(doc: Document, ref: LayerRef) -> Flat:
    data = ref.layer.model_dump(by_alias=True, exclude_unset=True, exclude=_STRUCTURAL)
    flat: Flat = {}
    for dotted, path, value in _leaves(data, ()):
        if value is None and dotted not in _NULLABLE:
            continue
        full = ref.path + path
        flat[dotted] = (value, Origin(ref.name, doc.pos(full), full))
    return flat


def _leaves(data: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[
        tuple[str, tuple[str, ...], Any]]:
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, Mapping):
            yield from _leaves(value, here)
        else:
            yield ".".join(here), here, value


def merge(*layers: Flat) -> Flat:
    merged: Flat = {}
    for layer in layers:
        merged.update(layer)
    return merged
