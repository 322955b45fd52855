"""Spec -> resolved image builds (defaults -> flavor -> release -> per_arch).

Every template is expanded here, once, so that backends and stage scripts only
ever see literal values; and every value keeps the Origin it came from so
``kvc explain`` and diagnostics can point back into the spec.

Layers merge as flat ``dotted.key`` leaves (layers.py), which is what origins
and templates need. The result is then read back through the spec's own typed
models (``ArchLayer`` and its sections), and each resolved section is built by
keyword from their fields, so mypy checks every name and type on the way from
spec key to job env (docs/spec.md, "Adding a spec key").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from kvc.compiler import layers
from kvc.compiler.layers import Flat, LayerRef
from kvc.compiler.model import (
    SECTIONS,
    UNAME_ARCH,
    Download,
    ImageBuild,
    Origin,
    Publish,
    Sysprep,
    TestSettings,
)
from kvc.compiler.templates import TemplateError, expand, placeholders, shell_style
from kvc.compiler.variables import expand_vars
from kvc.spec.diagnostics import Collector
from kvc.spec.loader import Document
from kvc.spec.models import (
    ArchLayer,
    DownloadLayer,
    Flavor,
    PublishLayer,
    Release,
    Spec,
    SysprepLayer,
    TestLayer,
)

# Keys whose values are shell run in the guest, where `$name` is the guest's own
# variable; in every other key a shell-style placeholder is a mistake.
SHELL_KEYS = frozenset({"sysprep.post_commands", "sysprep.commands"})
_LAYER_FIELDS = tuple(ArchLayer.model_fields)

T = TypeVar("T")
L = TypeVar("L", bound=BaseModel)
R = TypeVar("R")


class _Context:
    """Per-compile state: the document, its diagnostics and the flattened layers."""

    def __init__(self, doc: Document, spec: Spec, errors: Collector) -> None:
        self.doc = doc
        self.spec = spec
        self.errors = errors
        self.sections: dict[tuple[Callable[[Any], Any], str], Any] = {}
        self.flats: dict[tuple[str | int, ...], Flat] = {}
        self.base = layers.merge(layers.builtin(), self._flat("defaults", ("defaults",),
                                                               spec.defaults))

    def _flat(self, name: str, path: tuple[str | int, ...], layer: Any) -> Flat:
        """A layer flattened once, however many releases and arches inherit it."""
        flat = self.flats.get(path)
        if flat is None:
            flat = self.flats[path] = ({} if layer is None else
                                       layers.flatten(self.doc, LayerRef(name, path, layer)))
        return flat

    def per_arch(self, name: str, path: tuple[str | int, ...], layer: Any, arch: str) -> Flat:
        overrides = getattr(layer, "per_arch", None) or {}
        return self._flat(f"{name} per_arch.{arch}", (*path, "per_arch", arch),
                          overrides.get(arch))

    def section(self, fields: dict[str, Any], layer: type[L], rule: Callable[[L], R]) -> R:
        """``rule`` applied to the typed section; builds that resolve to the same values
        (most do, across arches and releases) share one result."""
        # repr is exact for the YAML scalars and lists a section holds, and cheap.
        key = (rule, repr(fields))
        found = self.sections.get(key)
        if found is None:
            found = self.sections[key] = rule(layer.model_construct(**fields))
        return cast(R, found)

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
    common_origins = _origins(common)
    for arch in arches:
        overrides = (ctx.per_arch("defaults", ("defaults",), ctx.spec.defaults, arch),
                     ctx.per_arch(fname, fpath, flavor, arch),
                     ctx.per_arch(rname, rpath, release, arch))
        flat = layers.merge(common, *overrides)
        origins = common_origins.copy()
        for layer in overrides:
            origins.update(_origins(layer))
        yield _build(ctx, flavor_name, release, rpath, arch=arch, flat=flat,
                     arches=tuple(arches), origins=origins)


def _origins(flat: Flat) -> dict[str, Origin]:
    return {key: origin for key, (_, origin) in flat.items()}


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
           arch: str, flat: Flat, arches: tuple[str, ...],
           origins: dict[str, Origin]) -> ImageBuild:
    where = f"{flavor}/{release.release_version}"
    names = _names(ctx, flavor, release, arch, flat)
    image = _image(ctx, names, where)
    sections, top, unresolved = _expand_all(ctx, flat, names, where)
    v = _layer(top)
    return ImageBuild(
        flavor=flavor,
        release_version=release.release_version,
        release_name=release.release_name or "",
        arch=arch,
        arches=arches,
        registry=ctx.spec.registry,
        image=image or "",
        url=_url(ctx, release, rpath, arch=arch, flat=flat, url=v.url),
        url_pattern=v.url or "",
        checksum=(v.release_checksum or {}).get(arch),  # type: ignore[call-overload]
        checksum_url=v.checksum_url,
        insecure_skip_checksum=release.insecure_skip_checksum,
        download=ctx.section(sections["download"], DownloadLayer, _download),
        sysprep=ctx.section(sections["sysprep"], SysprepLayer, _sysprep),
        test=ctx.section(sections["test"], TestLayer, _test),
        publish=ctx.section(sections["publish"], PublishLayer, _publish),
        vars=MappingProxyType(dict(v.vars or {})),
        origins=MappingProxyType(origins),
        release_pos=ctx.doc.pos((*rpath, "release_version")),
        unresolved=unresolved if image is not None else unresolved | {"image"},
        verify_at_build=release.verify_at_build,
        verify_at_build_pos=(ctx.doc.value_pos((*rpath, "verify_at_build"))
                             if release.verify_at_build else None),
    )


# -- the resolver rules: one keyword per resolved field, read from the typed layer --

def _download(d: DownloadLayer) -> Download:
    return Download(in_=_set(d.in_), container=_set(d.container),
                    decompress=_set(d.decompress), convert=_set(d.convert))


def _sysprep(s: SysprepLayer) -> Sysprep:
    return Sysprep(
        enabled=_set(s.enabled), operations=tuple(_set(s.operations)), update=_set(s.update),
        install=_packages(_set(s.install)), post_commands=tuple(_set(s.post_commands)),
        selinux_relabel=_set(s.selinux_relabel), makefile=_set(s.makefile),
        makefile_dir=_set(s.makefile_dir), makefile_target=_set(s.makefile_target),
        disk_size=s.disk_size, commands=_commands(_set(s.commands)),
    )


def _commands(items: list[str | dict[str, str]]) -> tuple[tuple[str, str | None], ...]:
    """Bare strings are flag commands; a mapping holds one command and its argument
    (a mapping of several keys is reported by rules.check_commands)."""
    out: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, None))
        else:
            out.extend(item.items())
    return tuple(out)


def _test(t: TestLayer) -> TestSettings:
    return TestSettings(enabled=_set(t.enabled), kubevirt=_set(t.kubevirt),
                        checks=tuple(_set(t.checks)), timeout=_set(t.timeout),
                        mode=_set(t.mode))


def _publish(p: PublishLayer) -> Publish:
    return Publish(tags=tuple(_set(p.tags)), latest=_set(p.latest), sign=_set(p.sign),
                   refresh=_set(p.refresh), attest=_set(p.attest))


def _packages(install: str | Sequence[str]) -> tuple[str, ...]:
    """The spec's comma string (or the built-in list) as package names."""
    items = install.split(",") if isinstance(install, str) else install
    return tuple(name.strip() for name in items if name.strip())


def _set(value: T | None) -> T:
    """A merged value the built-in layer guarantees (model.py gives every key a default)."""
    if value is None:  # pragma: no cover - a key without a built-in default
        raise AssertionError("a resolved key has no built-in default")
    return value


def _layer(top: dict[str, Any]) -> ArchLayer:
    """The merged layer's own keys read back into the spec's typed layer model;
    ``model_construct`` skips validation, since every leaf was validated in its
    own layer already."""
    return ArchLayer.model_construct(**top)


# -- templates --

@dataclass(frozen=True, slots=True)
class _Names:
    """What placeholders expand to for one build, and the vars that failed (already
    reported): templates using those are withheld rather than reported again."""

    values: dict[str, str]
    broken: frozenset[str] = frozenset()

    def depends_on_broken(self, template: str) -> bool:
        try:
            return bool(self.broken) and not self.broken.isdisjoint(placeholders(template))
        except TemplateError:
            return False


def _names(ctx: _Context, flavor: str, release: Release, arch: str, flat: Flat) -> _Names:
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
    # A blank version is reported where it is written (structure.py): templates using
    # it (the built-in tag, at 1:1) are withheld rather than reported again.
    broken = set() if release.release_version.strip() else {"release_version"}
    for name, (value, origin) in user.items():
        if name in names:
            ctx.error_at(origin, f"vars entry '{name}' shadows the built-in name '{name}'",
                         "vars")
            broken.add(name)
        shell = shell_style(value, [*names, *user]) if "$" in value else None
        if shell is not None:
            ctx.error_at(origin, shell.message, shell.kind, char=shell.offset)
            broken.add(name)
    raw = {name: value for name, (value, _) in user.items() if name not in names}
    expanded, problems = expand_vars(names, raw, f"{flavor}/{release.release_version}")
    for problem in problems:
        ctx.error_at(user[problem.name][1], problem.message, problem.kind, char=problem.offset)
        broken.add(problem.name)
    return _Names(expanded, frozenset(broken))


def _expand_all(ctx: _Context, flat: Flat, names: _Names, where: str) -> tuple[
        dict[str, dict[str, Any]], dict[str, Any], frozenset[str]]:
    """Every leaf with its templates filled, grouped as section mappings and the
    layer's other keys, and the keys whose templates failed (reported; they keep
    their raw text so that rules can skip them)."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    top: dict[str, Any] = dict.fromkeys(_LAYER_FIELDS)  # all given: no defaults to compute
    failed: set[str] = set()
    for key, (value, origin) in flat.items():
        result = value
        if type(value) is str:
            if not _templated(value):
                pass
            elif key[:5] == "vars.":
                result = names.values.get(key[5:], value)
            else:
                result = _expand_one(ctx, origin, value, names, where,
                                     shell=key not in SHELL_KEYS)
                if result is None:
                    result = value
                    failed.add(key)
        elif type(value) is list and _templated_items(value):
            items = [_expand_item(ctx, origin, item, names, where, shell=key not in SHELL_KEYS,
                                  index=i) for i, item in enumerate(value)]
            if None in items:
                failed.add(key)
            result = [raw if item is None else item
                      for raw, item in zip(value, items, strict=True)]
        head, _, leaf = key.partition(".")
        section = sections.get(head)
        if section is not None:
            section[leaf] = result
        elif leaf:
            top[head] = {**(top[head] or {}), leaf: result}
        else:
            top[head] = result
    failed.update(f"vars.{name}" for name in names.broken)
    return sections, top, frozenset(failed)


def _expand_item(ctx: _Context, origin: Origin, item: Any, names: _Names, where: str, *,
                 shell: bool, index: int) -> Any:
    """List items: strings, and the {command: argument} items of sysprep.commands
    (None once an error is reported)."""
    if isinstance(item, str):
        return _expand_one(ctx, origin, item, names, where, shell=shell, index=index)
    if isinstance(item, dict):
        expanded = {key: _expand_one(ctx, origin, value, names, where, shell=shell, index=index)
                    if isinstance(value, str) else value for key, value in item.items()}
        return None if None in expanded.values() else expanded
    return item


def _templated(text: str) -> bool:
    """Whether ``text`` may hold a placeholder (or a shell-style one to refuse)."""
    return "{" in text or "}" in text or "$" in text


def _templated_items(items: list[Any]) -> bool:
    try:
        return _templated("".join(items))
    except TypeError:  # not all strings: look item by item
        return True


def _expand_one(ctx: _Context, origin: Origin, value: str, names: _Names,
                where: str, *, shell: bool, index: int | None = None) -> str | None:
    """The expanded value, or None once its error is reported (or withheld)."""
    error = shell_style(value, names.values) if shell else None
    if error is None and names.depends_on_broken(value):
        return None
    if error is None:
        try:
            return expand(value, names.values, where)
        except TemplateError as exc:
            error = exc if shell else _guest_variable(value, exc)
    ctx.error_at(origin, error.message, error.kind, index=index, char=error.offset)
    return None


def _guest_variable(value: str, error: TemplateError) -> TemplateError:
    """In guest shell, ``${NAME}`` is usually the guest's variable, not a placeholder."""
    name = value[error.offset + 1:value.find("}", error.offset)]
    if error.offset == 0 or value[error.offset - 1] != "$" or not name.isidentifier():
        return error
    return TemplateError(error.offset - 1, f"'${{{name}}}' reads as the kvc placeholder "
                         f"'{{{name}}}'; for the guest's shell variable write '${{{{{name}}}}}' "
                         f"or '${name}'", error.kind)


def _url(ctx: _Context, release: Release, rpath: tuple[str | int, ...], *, arch: str,
         flat: Flat, url: str | None) -> str:
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


def _image(ctx: _Context, names: _Names, where: str) -> str | None:
    template = ctx.spec.image or "{registry}/{flavor}"
    error = shell_style(template, names.values)
    if error is None and names.depends_on_broken(template):
        return None
    if error is None:
        try:
            return expand(template, names.values, where)
        except TemplateError as exc:
            error = exc
    ctx.errors.add(ctx.doc.char_pos(("image",), error.offset), error.message, error.kind)
    return None
