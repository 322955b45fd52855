"""Stable, readable YAML: block style, insertion order, no anchors, no folding.

Emitted files are read and diffed by people, so the same input must give the
same bytes, keys must stay in the order the emitter chose, and multi-line
scripts must stay literal blocks.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.representer import RoundTripRepresenter
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
            and all(ch == "\n" or ch.isprintable() for ch in value))


def dump(data: Mapping[str, Any]) -> str:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(_prepare(data), stream)
    return stream.getvalue()
