"""The compile pipeline's front half: file -> validated spec -> resolved builds.

One run reports every independent problem: schema errors, then (on what is
left after dropping the parts that failed, see ``schema_errors.salvage``) shape
rules, templates, value rules and unpinned checksums, all sorted by position.
Only problems that depend on an earlier failure are withheld.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kvc.compiler import resolve, rules, structure
from kvc.compiler.model import ImageBuild
from kvc.spec.diagnostics import Collector, Position
from kvc.spec.loader import Document, load_bytes, load_file
from kvc.spec.models import Spec


@dataclass(frozen=True)
class Resolved:
    doc: Document
    spec: Spec
    builds: tuple[ImageBuild, ...]

    @property
    def path(self) -> str:
        return self.doc.file

    def images(self) -> dict[str, tuple[ImageBuild, ...]]:
        """Builds grouped by image (flavor/release_version), in spec order."""
        grouped: dict[str, list[ImageBuild]] = defaultdict(list)
        for build in self.builds:
            grouped[build.image_id].append(build)
        return {key: tuple(value) for key, value in grouped.items()}


UNPINNED = frozenset({"unpinned"})


def load(path: Path, *, allow_unpinned: bool = False) -> Resolved:
    """``allow_unpinned`` tolerates only what `kvc lock` is about to fix."""
    return resolve_document(load_file(path), allow_unpinned=allow_unpinned)


def load_source(raw: bytes, name: str) -> Resolved:
    return resolve_document(load_bytes(raw, name))


def resolve_document(doc: Document, *, allow_unpinned: bool = False) -> Resolved:
    errors = Collector(ignore=UNPINNED if allow_unpinned else frozenset())
    spec = _validate(doc, errors)
    if spec is None:
        errors.raise_if_any()
        raise AssertionError("validation failed without a diagnostic")  # pragma: no cover
    structure.check(doc, spec, errors)
    # A bad registry, flavor or release name already explains a bad image name or tag.
    names_broken = any(d.kind in {"registry", "name"} for d in errors.items)
    skip = frozenset({"@image", "publish.tags"} if names_broken else ())
    builds = resolve.resolve(doc, spec, errors)
    for build in builds:
        _apply_rules(doc, build, errors, skip)
    _image_consistency(doc, builds, errors)
    errors.raise_if_any()
    return Resolved(doc, spec, tuple(builds))


def _validate(doc: Document, errors: Collector) -> Spec | None:
    """The spec, or what of it is independent of its schema errors (then reported)."""
    try:
        return Spec.model_validate(doc.data)
    except ValidationError as exc:
        from kvc.spec import schema_errors  # noqa: PLC0415 -- only a bad spec needs it
        errors.items.extend(schema_errors.diagnostics(doc, Spec, exc))
        rest = schema_errors.salvage(doc.data, Spec, exc)
    if rest is None:
        return None
    try:
        return Spec.model_validate(rest)
    except ValidationError:
        return None


def _apply_rules(doc: Document, build: ImageBuild, errors: Collector,
                 skip: frozenset[str]) -> None:
    for rule in rules.RULES:
        for problem in rule(build):
            if problem.key not in skip and problem.key.removeprefix("@") not in build.unresolved:
                errors.add(_problem_pos(doc, build, problem), problem.message, problem.kind)


def _problem_pos(doc: Document, build: ImageBuild, problem: rules.Problem) -> Position:
    if problem.key == "@release":
        return build.release_pos
    if problem.key == "@image":
        return doc.value_pos(("image",) if "image" in doc.data else ("registry",))
    if problem.key == "verify_at_build" and build.verify_at_build_pos is not None:
        return build.verify_at_build_pos  # a key of the release itself, not a resolved value
    origin = build.origins.get(problem.key)
    if origin is None or origin.pos is None:
        return build.release_pos
    if problem.index is not None:
        item = (*origin.path, problem.index)
        if item in doc.values:  # the value was written as a list: point at the item
            return doc.values[item]
    return doc.value_pos(origin.path)


def _image_consistency(doc: Document, builds: list[ImageBuild], errors: Collector) -> None:
    """Tags are per image: per-arch publish overrides would make them ambiguous."""
    first: dict[str, ImageBuild] = {}
    for build in builds:
        other = first.setdefault(build.image_id, build)
        if other.publish != build.publish or other.image != build.image:
            origin = build.origins.get("publish.tags")
            pos = doc.value_pos(origin.path) if origin and origin.pos else build.release_pos
            errors.add(pos, f"publish settings of {build.build_id} differ from "
                       f"{other.build_id}; tags belong to the whole image, not one arch",
                       "publish")
