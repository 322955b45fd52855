"""Stable, readable YAML: block style, insertion order, no anchors, no folding.

Emitted files are read and diffed by people, so the same input must give the
same bytes, keys must stay in the order the emitter chose, and multi-line
scripts must stay literal blocks.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

# Plain scalars that YAML 1.1 parsers (still common in CI tooling) would read
# as booleans, nulls or base-60 numbers: always quote them.
_AMBIGUOUS = re.compile(r"(?i:y|yes|n|no|true|false|on|off|null|~)\Z|[0-9][0-9_]*(:[0-5]?[0-9])+\Z")


class _Representer(RoundTripRepresenter):
    def ignore_aliases(self, data: Any) -> bool:
        return True


class Commented(str):
    """A scalar emitted with an end-of-line comment (e.g. an action's version)."""

    comment: str

    def __new__(cls, value: str, comment: str) -> Commented:
        obj = super().__new__(cls, value)
        obj.comment = comment
        return obj


def _prepare(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = CommentedMap()
        for key, item in value.items():
            out[str(key)] = _prepare(item)
            if isinstance(item, Commented):
                out.yaml_add_eol_comment(item.comment, str(key))
        return out
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    if isinstance(value, Commented):
        return str(value)
    if isinstance(value, str) and "\n" in value and _block_safe(value):
        return LiteralScalarString(value)
    if isinstance(value, str) and not all(ch.isprintable() or ch == "\n" for ch in value):
        return DoubleQuotedScalarString(value)  # escapes controls and Unicode line breaks
    if isinstance(value, str) and _AMBIGUOUS.match(value):
        return SingleQuotedScalarString(value)
    return value


def _block_safe(value: str) -> bool:
    """A literal block keeps a value byte-exact only without edge whitespace or controls."""
    lines = value.split("\n")
    return (not value[:1].isspace() and not value.endswith("\n\n")
            and all(line == line.rstrip() for line in lines)
            and value.replace("\n", "").isprintable())  # every other character printable


def dump(data: Mapping[str, Any]) -> str:
    """Fast path for the shapes emitters produce; ruamel for anything unusual.

    ruamel's pure-Python emitter dominated compile time at scale (seconds for a
    thousand builds). The fast path writes the same bytes for the common
    shapes, asks ruamel how to spell each unusual scalar once, and hands the
    whole document to ruamel when a value could fold or nest in a way it does
    not model; tests compare both paths byte for byte.
    """
    try:
        return _fast.document(data)
    except _Unusual:
        return _ruamel_dump(data)


def _ruamel_dump(data: Mapping[str, Any]) -> str:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(_prepare(data), stream)
    return stream.getvalue()


class _Unusual(Exception):
    """A shape the fast path does not model: ruamel writes the whole document."""


# Scalars that are plain in ruamel's block context and read back as strings:
# a letter, '_', '/' or '$' first, no indicator sequences (': ', ' #'), no edge space.
_PLAIN = re.compile(r"""[A-Za-z_/$][\w./,=+@${}()|&!*<>~%^?\[\]:# '"-]*\Z""", re.ASCII)
# Digit-first words (versions, hex digests): plain unless YAML reads them as a
# number or date, which ruamel then single-quotes.
_WORD = re.compile(r"[0-9.][\w./,:=+@-]*\Z", re.ASCII)
# ruamel writes a longer key as an explicit "? key": its simple keys stop where
# the key plus its tag ("!!str") reach 128 characters (ruamel.yaml 0.19.1
# emitter.py:112 MAX_SIMPLE_KEY_LENGTH, :766-795 check_simple_key).
_LONGEST_KEY: Final = 122
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*\Z")
_LONGEST = 2000  # past this ruamel may fold a line (width 4096 counts the indent)
_REMEMBERED = 100_000  # distinct strings spelled once (a 1,000-build compile: ~30,000)


class _FastWriter:
    def __init__(self) -> None:
        self._scalars: dict[tuple[type, Any], str] = {}
        # Strings repeat across jobs (step names, paths, expressions): each is spelled once.
        self._strings: dict[str, str] = {}
        self._keys: dict[str, str] = {}

    def document(self, data: Mapping[str, Any]) -> str:
        out: list[str] = []
        if not data:
            raise _Unusual
        self._mapping(data, 0, out, first_prefix="")
        return "".join(out)

    def _mapping(self, data: Mapping[str, Any], indent: int, out: list[str],
                 first_prefix: str) -> None:
        pad = " " * indent
        prefix = first_prefix
        keys = self._keys
        for key, value in data.items():
            name = keys.get(key) if type(key) is str else None
            if name is None:
                name = self._key(str(key))
                if len(keys) < _REMEMBERED:
                    keys[name] = name
            out.append(f"{prefix}{name}:")
            prefix = pad
            self._value(value, indent, out)

    def _value(self, value: Any, indent: int, out: list[str]) -> None:
        if type(value) is str and "\n" not in value:  # most values: skip the checks below
            out.append(f" {self._scalar(value)}\n")
        elif type(value) is dict or isinstance(value, Mapping):
            if not value:
                out.append(" {}\n")
                return
            out.append("\n")
            self._mapping(value, indent + 2, out, first_prefix=" " * (indent + 2))
        elif isinstance(value, list | tuple):
            if not value:
                out.append(" []\n")
                return
            out.append("\n")
            self._sequence(value, indent + 2, out)
        elif isinstance(value, Commented):
            text = str(value)
            if self._scalar(text) != text:
                raise _Unusual  # ruamel spells a commented value as it stands
            out.append(f" {text}  # {value.comment}\n")
        elif isinstance(value, str) and "\n" in value and _block_safe(value):
            out.append(self._literal(value, indent + 2))
        else:
            out.append(f" {self._scalar(value)}\n")

    def _sequence(self, items: list[Any] | tuple[Any, ...], indent: int, out: list[str],
                  first_prefix: str | None = None) -> None:
        """Items with their dash at column ``indent``; the first item's line may
        already hold an outer dash (a list nested in a list starts on its line)."""
        dash = " " * indent + "- "
        prefix = dash if first_prefix is None else first_prefix
        for item in items:
            if isinstance(item, Mapping) and item:
                self._mapping(item, indent + 2, out, first_prefix=prefix)
            elif isinstance(item, list | tuple) and item:
                self._sequence(item, indent + 4, out, first_prefix=prefix + "  - ")
            elif isinstance(item, Mapping | list | tuple | Commented) or (
                    isinstance(item, str) and "\n" in item):
                raise _Unusual
            else:
                out.append(f"{prefix}{self._scalar(item)}\n")
            prefix = dash

    @staticmethod
    def _literal(value: str, indent: int) -> str:
        pad = " " * indent
        body = value[:-1] if value.endswith("\n") else value
        header = " |\n" if value.endswith("\n") else " |-\n"
        return header + "".join(f"{pad}{line}\n" if line else "\n"
                                for line in body.split("\n"))

    def _key(self, key: str) -> str:
        if len(key) > _LONGEST_KEY:
            raise _Unusual
        # Keys skip _prepare's YAML 1.1 quoting (``on:`` stays plain); only what
        # YAML 1.2 itself reads as a bool or null would be quoted.
        if _KEY.match(key) and key.lower() not in {"true", "false", "null"}:
            return key
        raise _Unusual

    def _scalar(self, value: Any) -> str:
        if type(value) is str:
            text = self._strings.get(value)
            if text is None:
                if len(self._strings) > _REMEMBERED:  # a long-lived process: stay bounded
                    self._strings.clear()
                text = self._strings[value] = self._spell(value)
            return text
        return self._spell(value)

    def _spell(self, value: Any) -> str:
        if value is True or value is False:
            return "true" if value else "false"
        if isinstance(value, str):
            if len(value) > _LONGEST:
                raise _Unusual
            if _AMBIGUOUS.match(value):
                return f"'{value}'"  # what _prepare's single quoting writes
            if (": " not in value and " #" not in value and not value.endswith((" ", ":"))):
                if _PLAIN.match(value):
                    return value
                if _WORD.match(value):
                    return value if _reads_as_text(value) else f"'{value}'"
        elif type(value) is int:
            return str(value)
        cache_key = (type(value), value)
        text = self._scalars.get(cache_key)
        if text is None:
            text = self._scalars[cache_key] = _spelled(value)
        return text


_RESOLVER = VersionedResolver()
_STR = _RESOLVER.resolve(ScalarNode, "", (False, True))  # the plain string tag


def _reads_as_text(value: str) -> bool:
    return bool(_RESOLVER.resolve(ScalarNode, value, (True, False)) == _STR)


def _spelled(value: Any) -> str:
    """How ruamel spells one scalar as a block mapping value (on one line, or not at all)."""
    text = _ruamel_dump({"k": value})
    if not text.startswith("k: ") or text.count("\n") != 1:
        raise _Unusual
    return text[3:-1]


_fast = _FastWriter()
