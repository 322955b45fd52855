"""Translate pydantic's errors into positioned, human diagnostics.

pydantic reports locations as paths through the data; the loader recorded a
position for every path, so each error can point at the exact key or value.
Messages are rewritten in the spec's own vocabulary ("unknown key ... did you
mean ...") rather than pydantic's generic wording.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kvc.spec import models
from kvc.spec.diagnostics import Diagnostic, Position
from kvc.spec.loader import Document, PathKey, kind_of


def diagnostics(doc: Document, model: type[BaseModel],
                exc: ValidationError) -> Iterator[Diagnostic]:
    errors = exc.errors()
    dedents = _dedents(doc, model, errors)
    yield from (dedent.diagnostic(doc) for dedent in dedents)
    for error in errors:
        # "[key]" stays: a bad name of the empty key itself (a misspelt arch) is a
        # problem of its own, not one the dedent explains.
        loc: PathKey = tuple(error["loc"])
        if not any(dedent.explains(loc) for dedent in dedents):
            yield _one(doc, model, error)


def _one(doc: Document, model: type[BaseModel], error: ErrorDetails) -> Diagnostic:
    loc: PathKey = tuple(part for part in error["loc"] if part != "[key]")
    name = str(loc[-1]) if loc else "spec"
    kind = error["type"]
    if kind == "extra_forbidden":
        return Diagnostic(doc.pos(loc), _unknown_key(name, _allowed(model, loc[:-1])),
                          "unknown-key")
    if kind == "missing":
        return Diagnostic(doc.pos(loc[:-1]), f"missing required key '{name}'", "missing-key")
    if "[key]" in error["loc"]:
        return Diagnostic(doc.pos(loc), _bad_key(error), "value")
    # An empty value has no position of its own (the parser reports the next
    # token's): point at its key.
    pos = doc.pos(loc) if error["input"] is None else doc.value_pos(loc)
    if kind == "literal_error" and loc == ("kvc",):
        return Diagnostic(pos, f"unsupported spec format 'kvc: {error['input']}'; this kvc "
                          "reads format 1", "version")
    if kind == "literal_error":
        return Diagnostic(pos, _literal(error), "value")
    if kind.endswith("_type") or kind in {"model_attributes_type", "dict_type"}:
        return Diagnostic(pos, _type_message(doc, loc, pos, error), "type")
    if kind == "too_short":
        return Diagnostic(pos, f"'{name}' must not be empty", "value")
    return Diagnostic(pos, f"{name}: {error['msg']}", "value")


def _unknown_key(name: str, allowed: list[str]) -> str:
    homes = _homes().get(name)
    if homes:
        return f"'{name}' belongs {' or '.join(homes)}, not here"
    message = f"unknown key '{name}'"
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    if allowed:
        return f"{message}; expected one of: {', '.join(sorted(allowed))}"
    return message


@cache
def _homes() -> dict[str, list[str]]:
    """Where each spec key may be written, for "'post_commands' belongs under 'sysprep'"."""
    homes: dict[str, list[str]] = {}
    for cls, home in _HOMES.items():
        inherited = {name for base in cls.__bases__ if issubclass(base, BaseModel)
                     for name in base.model_fields}
        for name, field in cls.model_fields.items():
            if name not in inherited:
                homes.setdefault(field.alias or name, []).append(home)
    return homes


_HOMES: dict[type[BaseModel], str] = {
    models.Spec: "at the top level",
    models.ArchLayer: "under defaults, a flavor or a release",
    models.Layer: "under defaults, a flavor or a release",
    models.Flavor: "under a flavor",
    models.Release: "on a release (an item of 'releases')",
    models.DownloadLayer: "under 'download'",
    models.SysprepLayer: "under 'sysprep'",
    models.TestLayer: "under 'test'",
    models.PublishLayer: "under 'publish'",
    models.Backends: "under 'backends'",
    models.GitHubBackend: "under 'backends.github'",
    models.CircleCIBackend: "under 'backends.circleci'",
    models.Update: "under 'update'",
}


@dataclass(frozen=True)
class _Dedent:
    """Key ``owner`` was left empty because the keys after it, meant as its
    children, were written at its own indentation (``siblings``)."""

    owner: PathKey
    siblings: tuple[PathKey, ...]

    def explains(self, loc: PathKey) -> bool:
        return loc == self.owner or any(loc[:len(s)] == s for s in self.siblings)

    def diagnostic(self, doc: Document) -> Diagnostic:
        owner, first = str(self.owner[-1]), self.siblings[0]
        names = " and ".join(f"'{s[-1]}'" for s in self.siblings[:3])
        more = " (and the keys after it)" if len(self.siblings) > 3 else ""
        line = doc.pos(self.owner).line
        return Diagnostic(doc.pos(first), f"{names}{more} must be indented under "
                          f"'{owner}' (line {line}), which is empty as written; indent "
                          f"with more spaces than '{owner}'", "indent")


def _dedents(doc: Document, model: type[BaseModel],
             errors: list[ErrorDetails]) -> list[_Dedent]:
    failing = {tuple(p for p in error["loc"] if p != "[key]") for error in errors}
    found: list[_Dedent] = []
    for path, mapping in _mappings(doc.data, ()):
        keys = list(mapping)
        for index, key in enumerate(keys):
            if mapping[key] is None:
                owner = (*path, key)
                siblings = _swallowed(doc, model, owner, keys[index + 1:], failing)
                if siblings:
                    found.append(_Dedent(owner, siblings))
    return found


def _swallowed(doc: Document, model: type[BaseModel], owner: PathKey, after: list[str],
               failing: set[PathKey]) -> tuple[PathKey, ...]:
    """The keys after an empty ``owner`` that fail here but would fit under it."""
    annotation = _at(model, owner)
    children: set[str] | None = None  # None: a mapping of user names takes any key
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        children = {f.alias or n for n, f in annotation.model_fields.items()}
    elif typing.get_origin(annotation) is not dict:
        return ()
    here = set(_allowed(model, owner[:-1]))  # a key valid where it stands was not dedented
    taken: list[PathKey] = []
    for key in after:
        sibling = (*owner[:-1], key)
        fails = any(loc[:len(sibling)] == sibling for loc in failing)
        below = doc.pos(sibling).line > doc.pos(owner).line
        if not (fails and below and key not in here and (children is None or key in children)):
            break
        taken.append(sibling)
    return tuple(taken)


def _mappings(data: Any, path: PathKey) -> Iterator[tuple[PathKey, dict[str, Any]]]:
    if isinstance(data, dict):
        yield path, data
        for key, value in data.items():
            yield from _mappings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _mappings(value, (*path, index))


def _at(model: type[BaseModel], loc: PathKey) -> Any:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    return _unwrap(current)


def _bad_key(error: ErrorDetails) -> str:
    expected = _expected(error)
    return f"'{error['input']}' is not allowed here; use {expected}"


def _literal(error: ErrorDetails) -> str:
    return f"'{error['input']}' is not one of: {_expected(error)}"


def _expected(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    text = str(ctx.get("expected", ""))
    return text.replace(" or ", ", ").replace("'", "")


def _type_message(doc: Document, loc: PathKey, pos: Position, error: ErrorDetails) -> str:
    wanted = _WANTED.get(error["type"], error["type"].removesuffix("_type"))
    got = _describe(error["input"])
    name = str(loc[-1]) if loc else "spec"
    if error["type"] == "string_type" and got in {"a number", "a boolean", "a date"}:
        token = _token(doc.text, pos)
        return (f"'{name}' must be a string, but YAML reads {token} as {got}; "
                f"quote it: \"{token}\"")
    return f"'{name}' must be {wanted}, got {got}"


_WANTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(value: Any) -> str:
    kind = kind_of(value)
    if kind is None:
        return f"a value of type {value!r}"
    return "nothing (null)" if kind == "null" else f"a {kind}"


def _token(text: str, pos: Position) -> str:
    lines = text.splitlines()
    if not 0 < pos.line <= len(lines):
        return "this value"
    rest = lines[pos.line - 1][pos.col - 1:]
    # The value ends at a comment or, in a flow collection, at the next comma or
    # closing bracket; a number, boolean or date never holds one of them.
    token = re.split(r" #|[,\]}]", rest, maxsplit=1)[0].strip()
    return token or "this value"


def _allowed(model: type[BaseModel], loc: PathKey) -> list[str]:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    """Follow one path element through a model's type annotations."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in {name, field.alias}:
                return _unwrap(field.annotation)
        return None
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    if origin is list and args:
        return _unwrap(args[0])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] so the step sees the real container or model."""
    origin = typing.get_origin(annotation)
    if origin in {typing.Union, types.UnionType}:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


# Keys whose absence is itself an error later (a url, a checksum, a name a
# template uses): a misspelling of one must not be dropped silently, or the
# next phase reports a second, dependent problem.
_LOAD_BEARING = frozenset({
    "url", "release_checksum", "checksum_url", "insecure_skip_checksum", "locked_url",
    "vars", "release_version", "release_name", "releases", "arches", "kvc", "registry",
    "flavors", "image",
})
# Top-level keys no image build depends on for its other checks.
_DETACHABLE = frozenset({"backends", "update", "image"})


def salvage(data: Any, model: type[BaseModel], exc: ValidationError) -> Any | None:
    """``data`` without the parts that failed validation, so that later phases can
    still report every problem independent of them; None if nothing independent is
    left (a broken ``defaults`` or ``registry`` reaches every image build).

    A flavor with an error is dropped whole (its other problems may depend on the
    broken value); an unknown key is dropped alone unless it was meant as a key
    that something else needs. Only mappings are edited, never lists, so every
    remaining release keeps its index and its positions.
    """
    pruned = copy.deepcopy(data)
    for error in exc.errors():
        loc: PathKey = tuple(part for part in error["loc"] if part != "[key]")
        if not _prune(pruned, model, loc, error):
            return None
    return pruned


def _prune(data: dict[str, Any], model: type[BaseModel], loc: PathKey,
           error: ErrorDetails) -> bool:
    if not loc:
        return False
    harmless = error["type"] == "extra_forbidden" and not _load_bearing(model, loc)
    if (harmless or "[key]" in error["loc"]) and _drop(data, loc):
        return True
    if loc[0] == "flavors" and len(loc) >= 2:
        return _drop(data, loc[:2])
    return loc[0] in _DETACHABLE and _drop(data, loc[:1])


def _load_bearing(model: type[BaseModel], loc: PathKey) -> bool:
    name = str(loc[-1])
    meant = difflib.get_close_matches(name, _allowed(model, loc[:-1]), n=1, cutoff=0.6)
    return name in _LOAD_BEARING or bool(meant and meant[0] in _LOAD_BEARING)


def _drop(data: Any, loc: PathKey) -> bool:
    """Delete the mapping entry at ``loc``; False if it is not one (already gone is fine)."""
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return True
    if not isinstance(parent, dict):
        return False
    parent.pop(loc[-1], None)
    return True
