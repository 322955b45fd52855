"""Flatten spec layers into ``dotted.key -> (value, Origin)`` and merge them.

Mappings merge key by key and lists/scalars replace (SPEC.md), which is exactly
"later layer wins per leaf" once every mapping is flattened to dotted leaves.
Each layer is flattened once and shared by every build that inherits it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from kvc.compiler.model import DEFAULT_ARCHES, SECTIONS, Origin
from kvc.spec.loader import Document, PathKey
from kvc.spec.models import ArchLayer

Flat = dict[str, tuple[Any, Origin]]

# Keys that describe a layer's place in the tree rather than image settings.
_STRUCTURAL = {"per_arch", "releases", "release_version", "release_name",
               "insecure_skip_checksum", "locked_url", "verify_at_build"}


def spec_key(field_name: str) -> str:
    """A resolved field's key in the spec (``in_`` is ``in``, a Python keyword)."""
    return field_name.rstrip("_")


def _builtin() -> dict[str, Any]:
    """The built-in layer, read by name from the resolved model's field defaults."""
    flat: dict[str, Any] = {"arches": list(DEFAULT_ARCHES)}
    for section, cls in SECTIONS.items():
        for item in fields(cls):
            value = item.default
            flat[f"{section}.{spec_key(item.name)}"] = (
                list(value) if isinstance(value, tuple) else value)
    return flat


BUILTIN: Mapping[str, Any] = MappingProxyType(_builtin())
# Keys whose explicit null is meaningful (disk_size: null is "no resize"): those
# whose built-in default is None. Elsewhere a null inherits.
_NULLABLE = frozenset(key for key, value in BUILTIN.items() if value is None)
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
