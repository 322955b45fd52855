"""Imported releases -> the spec a careful person would write, as commented YAML.

A value every image (that depends on it) shares, or most of them, goes into
``defaults``; a value all releases of one flavor share, and that differs from
the default, goes into the flavor; everything else stays on its release. A
value equal to kvc's built-in default is not written at all. Keys an image
does not depend on (sysprep settings of an image that is not customized) are
left to inheritance.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from kvc.compiler.layers import BUILTIN
from kvc.importer.tree import ImportedRelease

KEYS = (
    "arches", "url", "download.decompress", "download.convert", "sysprep.enabled",
    "sysprep.disk_size", "sysprep.operations", "sysprep.update", "sysprep.install",
    "sysprep.post_commands", "sysprep.commands", "sysprep.selinux_relabel", "test.enabled",
    "test.checks", "publish.tags", "publish.latest",
)
_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def layer_values(releases: Sequence[ImportedRelease]) -> tuple[
        dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(defaults, per-flavor, per-release) values after lifting shared ones up."""
    defaults: dict[str, Any] = {}
    flavors: dict[str, dict[str, Any]] = {r.flavor: {} for r in releases}
    own: list[dict[str, Any]] = [{} for _ in releases]
    for key in KEYS:
        caring = [(i, r) for i, r in enumerate(releases) if key in r.result.values]
        if not caring:
            continue
        effective = _lift_default(key, [r.result.values[key] for _, r in caring], defaults)
        for flavor, settings in flavors.items():
            mine = [(i, r) for i, r in caring if r.flavor == flavor]
            here = _flavor_value(key, [r.result.values[key] for _, r in mine], effective)
            if here is not _MISSING:
                settings[key] = here
            inherited = effective if here is _MISSING else here
            for i, release in mine:
                if not _same(release.result.values[key], inherited):
                    own[i][key] = release.result.values[key]
    return defaults, flavors, own


def _lift_default(key: str, values: list[Any], defaults: dict[str, Any]) -> Any:
    builtin = BUILTIN.get(key, _MISSING)
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    best, count = counts.most_common(1)[0]
    if count >= 2 and count * 2 > len(values):
        value = json.loads(best)
        if not _same(value, builtin):
            defaults[key] = value
        return value
    return builtin


def _flavor_value(key: str, values: list[Any], inherited: Any) -> Any:
    if len(values) < 2 or any(not _same(v, values[0]) for v in values):
        return _MISSING
    return _MISSING if _same(values[0], inherited) else values[0]


def nest(flat: dict[str, Any]) -> CommentedMap:
    out = CommentedMap()
    for key in KEYS:
        if key not in flat:
            continue
        node = out
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, CommentedMap())
        node[leaf] = _seq(flat[key])
    return out


def _seq(value: Any) -> Any:
    if isinstance(value, list):
        seq = CommentedSeq(_seq(v) for v in value)
        if all(isinstance(v, str) for v in value) and len(value) <= 4 and \
                sum(len(v) for v in value) < 60:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        return CommentedMap((k, _seq(v)) for k, v in value.items())
    return value


def release_map(release: ImportedRelease, values: dict[str, Any]) -> CommentedMap:
    node = CommentedMap()
    node["release_version"] = release.release
    node.update(nest(values))
    if release.result.urls:
        node["per_arch"] = CommentedMap(
            (arch, CommentedMap(url=url)) for arch, url in release.result.urls.items())
    node["release_checksum"] = CommentedMap(release.result.checksums)
    node.yaml_add_eol_comment(f"from {release.origin}", "release_version")
    return node


def _null(representer: Any, _: None) -> Any:
    """An explicit null ("no resize") must read as one, not as an empty value."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def render(registry: str, releases: Sequence[ImportedRelease], header: list[str]) -> str:
    defaults, flavor_values, own = layer_values(releases)
    doc = CommentedMap()
    doc["kvc"] = 1
    doc["registry"] = registry
    if defaults:
        doc["defaults"] = nest(defaults)
    flavors = CommentedMap()
    for flavor, values in flavor_values.items():
        node = nest(values)
        seq = CommentedSeq()
        for i, release in enumerate(releases):
            if release.flavor == flavor:
                seq.append(release_map(release, own[i]))
                if release.result.notes:
                    seq.yaml_set_comment_before_after_key(
                        len(seq) - 1, before="\n".join(release.result.notes), indent=6)
        node["releases"] = seq
        flavors[flavor] = node
    doc["flavors"] = flavors
    if header:
        doc.yaml_set_start_comment("\n".join(header))
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # a URL on its own line after "url:" reads worse than a long line
    yaml.representer.add_representer(type(None), _null)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
