"""Rules on the spec's shape that no single resolved build can see."""

from __future__ import annotations

import re

from kvc.compiler.naming import names_for
from kvc.compiler.rules import REGISTRY
from kvc.spec.diagnostics import Collector
from kvc.spec.loader import Document
from kvc.spec.models import Spec

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORKFLOW = re.compile(r"[A-Za-z0-9_.-]+\Z")
_CRON_FIELD = re.compile(r"[0-9*/,\-A-Za-z]+\Z")
# What each backend's publish condition cannot hold, though git allows it in a branch:
# GitLab compares it in a rule's double-quoted string, which has no escape (a '"' ends
# it; a '$' may be expanded); GitHub reads '${{' in an `if:` as an expression even
# inside a string; CircleCI substitutes '<<' parameters anywhere in its config.
_UNWRITABLE: dict[str, tuple[tuple[str, ...], str]] = {
    "circleci": (("<<",), "CircleCI's config"),
    "github": (("${{",), "a GitHub expression"),
    "gitlab": (('"', "$"), "a GitLab rule"),
}
# Never in a git ref name: control characters, space, ~ ^ : ? * [ \, '..' and '@{'.
_NOT_IN_REF = re.compile(r"[\x00-\x20\x7f~^:?*[\\]|\.\.|@\{")


def check(doc: Document, spec: Spec, errors: Collector) -> None:
    _registry(doc, spec, errors)
    _identity_names(doc, spec, errors)
    _images_unique(doc, spec, errors)
    _var_names(doc, errors)
    _per_arch_arches(doc, errors)
    _backends(doc, spec, errors)
    _schedule(doc, spec, errors)


def _registry(doc: Document, spec: Spec, errors: Collector) -> None:
    if not REGISTRY.match(spec.registry):
        errors.add(doc.value_pos(("registry",)), f"'{spec.registry}' is not a registry such as "
                   "docker.io/containercraft or ghcr.io/org", "registry")


def _identity_names(doc: Document, spec: Spec, errors: Collector) -> None:
    """Flavor and release names become job ids, paths and tags: keep them plain."""
    for flavor_name, flavor in spec.flavors.items():
        if not _NAME.match(flavor_name):
            errors.add(doc.pos(("flavors", flavor_name)), f"flavor name '{flavor_name}' may "
                       "only use letters, digits, '.', '_' and '-'", "name")
        for index, release in enumerate(flavor.releases):
            version = release.release_version
            if version.strip() and not _NAME.match(version):
                errors.add(doc.value_pos(("flavors", flavor_name, "releases", index,
                                          "release_version")),
                           f"release_version '{version}' may only use letters, digits, '.', "
                           "'_' and '-'", "name")


def _images_unique(doc: Document, spec: Spec, errors: Collector) -> None:
    seen: dict[str, str] = {}
    for flavor_name, flavor in spec.flavors.items():
        for index, release in enumerate(flavor.releases):
            ident = f"{flavor_name}/{release.release_version}"
            slug = names_for(flavor_name, release.release_version).slug
            pos = doc.value_pos(("flavors", flavor_name, "releases", index, "release_version"))
            if not release.release_version.strip():
                errors.add(pos, "release_version must not be empty", "name")
            elif slug not in seen:
                seen[slug] = ident
            elif seen[slug] == ident:
                errors.add(pos, f"image {ident} is defined twice", "duplicate-image")
            else:
                errors.add(pos, f"image {ident} and image {seen[slug]} both become "
                           f"'{slug}' in job and artifact names; rename one", "name-collision")


def _var_names(doc: Document, errors: Collector) -> None:
    for path, pos in doc.keys.items():
        if len(path) >= 2 and path[-2] == "vars" and not _VAR_NAME.match(str(path[-1])):
            errors.add(pos, f"vars name '{path[-1]}' must be letters, digits and '_', not "
                       "starting with a digit", "vars")


def _per_arch_arches(doc: Document, errors: Collector) -> None:
    for path, pos in doc.keys.items():
        if len(path) >= 3 and path[-3] == "per_arch" and path[-1] == "arches":
            errors.add(pos, "'arches' cannot be set under per_arch; set it on the release, "
                       "the flavor or defaults", "value")


def _backends(doc: Document, spec: Spec, errors: Collector) -> None:
    github = spec.backends.github if spec.backends else None
    if github and github.workflow is not None and not _WORKFLOW.match(github.workflow):
        errors.add(doc.value_pos(("backends", "github", "workflow")),
                   f"workflow '{github.workflow}' must be a plain file name", "value")
    for name in _UNWRITABLE:  # every backend with a default_branch
        settings = getattr(spec.backends, name) if spec.backends else None
        if settings is not None and settings.default_branch is not None:
            _default_branch(doc, errors, name, settings.default_branch)


def _default_branch(doc: Document, errors: Collector, name: str, branch: str) -> None:
    texts, where = _UNWRITABLE[name]
    pos = doc.value_pos(("backends", name, "default_branch"))
    if not _is_branch_name(branch):
        errors.add(pos, f"backends.{name}.default_branch '{_shown(branch)}' is not a "
                   "branch name git accepts (git check-ref-format --branch)", "value")
    elif any(text in branch for text in texts):
        errors.add(pos, f"backends.{name}.default_branch '{branch}' cannot be compared "
                   f"in {where} (no {' or '.join(repr(t) for t in texts)})", "value")


def _is_branch_name(name: str) -> bool:
    """git's rules for a branch name: those of refs/heads/NAME (git/git@b1ac1eb8d2e0:
    Documentation/git-check-ref-format.adoc:28-59; '@' alone is refused only as a whole
    ref name), no leading '-' (:84-87), and not HEAD (refs.c, check_branch_ref)."""
    parts = name.split("/")
    return not (name in {"", "HEAD"} or name.startswith("-") or name.endswith(".")
                or _NOT_IN_REF.search(name)
                or any(not part or part.startswith(".") or part.endswith(".lock")
                       for part in parts))


def _shown(text: str) -> str:
    """Control characters spelled out, so a message stays on its line."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _schedule(doc: Document, spec: Spec, errors: Collector) -> None:
    if spec.update is None:
        return
    fields = spec.update.schedule.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        errors.add(doc.value_pos(("update", "schedule")), f"schedule '{spec.update.schedule}' "
                   "must be a 5-field cron expression such as '0 4 * * 1'", "value")
