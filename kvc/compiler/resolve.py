"""Spec -> resolved image builds (defaults -> flavor -> release -> per_arch).

Every template is expanded here, once, so that backends and stage scripts only
ever see literal values; and every value keeps the Origin it came from so
``kvc explain`` and diagnostics can point back into the spec.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from kvc.compiler import layers
from kvc.compiler.layers import Flat, LayerRef
from kvc.compiler.model import (
    UNAME_ARCH,
    Download,
    ImageBuild,
    Origin,
    Publish,
    Sysprep,
    TestSettings,
)
from kvc.compiler.templates import TemplateError, expand
from kvc.compiler.variables import expand_vars
from kvc.spec.diagnostics import Collector
from kvc.spec.loader import Document
from kvc.spec.models import Flavor, Release, Spec

BUILTIN_NAMES = ("flavor", "release_version", "release_name", "arch", "uname_arch", "registry")


class _Context:
    """Per-compile state: the document, its diagnostics and the flattened layers."""

    def __init__(self, doc: Document, spec: Spec, errors: Collector) -> None:
        self.doc = doc
        self.spec = spec
        self.errors = errors
        self.base = layers.merge(layers.builtin(), self._flat("defaults", ("defaults",),
                                                               spec.defaults))

    def _flat(self, name: str, path: tuple[str | int, ...], layer: Any) -> Flat:
        if layer is None:
            return {}
        return layers.flatten(self.doc, LayerRef(name, path, layer))

    def per_arch(self, name: str, path: tuple[str | int, ...], layer: Any, arch: str) -> Flat:
        overrides = getattr(layer, "per_arch", None) or {}
        return self._flat(f"{name} per_arch.{arch}", (*path, "per_arch", arch),
                          overrides.get(arch))

    def error_at(self, origin: Origin, message: str, kind: str, index: int | None = None,
                 char: int | None = None) -> None:
        path = origin.path if index is None else (*origin.path, index)
        pos = self.doc.char_pos(path, char) if char is not None else self.doc.value_pos(path)
        if origin.pos is None:
            pos = self.doc.pos(())
        self.errors.add(pos, message, kind)


def resolve(doc: Document, spec: Spec, errors: Collector) -> list[ImageBuild]:
    ctx = _Context(doc, spec, errors)
    builds: list[ImageBuild] = []
    for flavor_name, flavor in spec.flavors.items():
        for index, release in enumerate(flavor.releases):
            builds.extend(_release_builds(ctx, flavor_name, flavor, index, release))
    return builds


def _release_builds(ctx: _Context, flavor_name: str, flavor: Flavor, index: int,
                    release: Release) -> Iterator[ImageBuild]:
    fpath = ("flavors", flavor_name)
    rpath = (*fpath, "releases", index)
    fname = f"flavor {flavor_name}"
    rname = f"release {flavor_name}/{release.release_version}"
    common = layers.merge(ctx.base, ctx._flat(fname, fpath, flavor),
                          ctx._flat(rname, rpath, release))
    arches = _arches(ctx, common)
    for arch in arches:
        flat = layers.merge(
            common,
            ctx.per_arch("defaults", ("defaults",), ctx.spec.defaults, arch),
            ctx.per_arch(fname, fpath, flavor, arch),
            ctx.per_arch(rname, rpath, release, arch),
        )
        build = _build(ctx, flavor_name, release, rpath, arch=arch, flat=flat,
                       arches=tuple(arches))
        if build is not None:
            yield build


def _arches(ctx: _Context, flat: Flat) -> list[str]:
    value, origin = flat["arches"]
    arches: list[str] = list(value)
    if not arches:
        ctx.error_at(origin, "'arches' must name at least one architecture", "value")
    for i, arch in enumerate(arches):
        if arch in arches[:i]:
            ctx.error_at(origin, f"architecture '{arch}' is listed twice", "value", index=i)
    return list(dict.fromkeys(arches))


def _build(ctx: _Context, flavor: str, release: Release, rpath: tuple[str | int, ...], *,
           arch: str, flat: Flat, arches: tuple[str, ...]) -> ImageBuild | None:
    names = _names(ctx, flavor, release, arch, flat)
    if names is None:
        return None
    values = _expand_all(ctx, flat, names)
    if values is None:
        return None
    url = _url(ctx, release, rpath, arch=arch, flat=flat, values=values)
    origins = MappingProxyType({key: origin for key, (_, origin) in flat.items()})
    return ImageBuild(
        flavor=flavor,
        release_version=release.release_version,
        release_name=release.release_name or "",
        arch=arch,
        arches=arches,
        registry=ctx.spec.registry,
        image=_image(ctx, names),
        url=url,
        url_pattern=values.get("url") or "",
        checksum=values.get(f"release_checksum.{arch}"),
        checksum_url=values.get("checksum_url"),
        insecure_skip_checksum=release.insecure_skip_checksum,
        download=_download(values),
        sysprep=_sysprep(values),
        test=_test(values),
        publish=_publish(values),
        vars=MappingProxyType({k[5:]: v for k, v in values.items() if k.startswith("vars.")}),
        origins=origins,
        release_pos=ctx.doc.pos((*rpath, "release_version")),
    )


def _names(ctx: _Context, flavor: str, release: Release, arch: str,
           flat: Flat) -> dict[str, str] | None:
    """Built-in names plus user vars (which may use built-ins and each other)."""
    names = {
        "flavor": flavor,
        "release_version": release.release_version,
        "release_name": release.release_name or "",
        "arch": arch,
        "uname_arch": UNAME_ARCH[arch],
        "registry": ctx.spec.registry,
    }
    user = {key[5:]: (value, origin) for key, (value, origin) in flat.items()
            if key.startswith("vars.")}
    ok = True
    for name, (_, origin) in user.items():
        if name in names:
            ctx.error_at(origin, f"vars entry '{name}' shadows the built-in name '{name}'",
                         "vars")
            ok = False
    return _expand_vars(ctx, names, user) if ok else None


def _expand_vars(ctx: _Context, names: dict[str, str],
                 user: Mapping[str, tuple[str, Origin]]) -> dict[str, str] | None:
    expanded, problems = expand_vars(names, {name: value for name, (value, _) in user.items()})
    for problem in problems:
        ctx.error_at(user[problem.name][1], problem.message, problem.kind, char=problem.offset)
    return None if problems else expanded


def _expand_all(ctx: _Context, flat: Flat, names: Mapping[str, str]) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    ok = True
    for key, (value, origin) in flat.items():
        if key.startswith("vars."):
            values[key] = names[key[5:]]
        elif isinstance(value, str):
            values[key] = _expand_one(ctx, origin, value, names, None)
        elif isinstance(value, list):
            values[key] = [_expand_one(ctx, origin, item, names, i) if isinstance(item, str)
                           else item for i, item in enumerate(value)]
        else:
            values[key] = value
        ok = ok and not _has_failure(values[key])
    return values if ok else None


class _Failed(str):
    """Marks a value whose template failed (the error is already reported)."""


def _has_failure(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, _Failed) for item in value)
    return isinstance(value, _Failed)


def _expand_one(ctx: _Context, origin: Origin, value: str, names: Mapping[str, str],
                index: int | None) -> str:
    try:
        return expand(value, names)
    except TemplateError:
        _report_template(ctx, origin, value, names, index)
        return _Failed(value)


def _report_template(ctx: _Context, origin: Origin, value: str, names: Mapping[str, str],
                     index: int | None) -> None:
    try:
        expand(value, names)
    except TemplateError as exc:
        ctx.error_at(origin, exc.message, exc.kind, index=index, char=exc.offset)


def _url(ctx: _Context, release: Release, rpath: tuple[str | int, ...], *, arch: str,
         flat: Flat, values: Mapping[str, Any]) -> str:
    url: str | None = values.get("url")
    if url is None:
        build_id = f"{rpath[1]}/{release.release_version}/{arch}"
        ctx.errors.add(ctx.doc.pos(rpath), f"no 'url' for {build_id}: set it on the release, "
                       "the flavor or defaults", "missing-key")
        return ""
    if "*" in url:
        locked = (release.locked_url or {}).get(arch)  # type: ignore[call-overload]
        if locked is None:
            ctx.error_at(flat["url"][1], f"url has a wildcard; run `kvc lock` to pin the "
                         f"newest file for {arch}", "unpinned")
            return url
        return str(locked)
    return url


def _image(ctx: _Context, names: Mapping[str, str]) -> str:
    template = ctx.spec.image or "{registry}/{flavor}"
    try:
        return expand(template, names)
    except TemplateError as exc:
        ctx.errors.add(ctx.doc.char_pos(("image",), exc.offset), exc.message, exc.kind)
        return template


def _download(v: Mapping[str, Any]) -> Download:
    return Download(v["download.in"], v["download.container"], v["download.decompress"],
                    v["download.convert"])


def _sysprep(v: Mapping[str, Any]) -> Sysprep:
    install = tuple(p.strip() for p in v["sysprep.install"].split(",") if p.strip())
    return Sysprep(
        enabled=v["sysprep.enabled"], operations=tuple(v["sysprep.operations"]),
        update=v["sysprep.update"], install=install,
        post_commands=tuple(v["sysprep.post_commands"]),
        selinux_relabel=v["sysprep.selinux_relabel"], makefile=v["sysprep.makefile"],
        makefile_dir=v["sysprep.makefile_dir"], makefile_target=v["sysprep.makefile_target"],
        disk_size=v["sysprep.disk_size"],
    )


def _test(v: Mapping[str, Any]) -> TestSettings:
    return TestSettings(v["test.enabled"], v["test.kubevirt"], tuple(v["test.checks"]),
                        v["test.timeout"])


def _publish(v: Mapping[str, Any]) -> Publish:
    return Publish(tuple(v["publish.tags"]), v["publish.latest"], v["publish.sign"],
                   v["publish.refresh"])
