"""``{name}`` placeholders, with ``{{`` and ``}}`` as literal braces.

Templates are parsed once per distinct string (a spec with a thousand image
builds repeats the same few URL templates) and expanded per build. Errors carry
the character offset so the diagnostic can point at the placeholder itself.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class TemplateError(Exception):
    """A problem at character ``offset`` of the template string."""

    offset: int
    message: str
    kind: str


Part = str | tuple[str, int]  # literal text, or (placeholder name, offset)


@lru_cache(maxsize=4096)
def parse(template: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    last = 0
    for match in _TOKEN.finditer(template):
        parts.append(template[last:match.start()])
        token = match.group(0)
        if token in {"{{", "}}"}:
            parts.append(token[0])
        elif match.group(1) is not None and _NAME.match(match.group(1)):
            parts.append((match.group(1), match.start()))
        elif match.group(1) is not None:
            raise TemplateError(match.start(), f"'{token}' is not a valid placeholder "
                                "(write {{ and }} for literal braces)", "template")
        else:
            raise TemplateError(match.start(), f"unbalanced '{token}' "
                                "(write {{ and }} for literal braces)", "template")
        last = match.end()
    parts.append(template[last:])
    return tuple(part for part in parts if part != "")


def expand(template: str, names: Mapping[str, str]) -> str:
    if "{" not in template and "}" not in template:
        return template
    out: list[str] = []
    for part in parse(template):
        if isinstance(part, str):
            out.append(part)
            continue
        name, offset = part
        value = names.get(name)
        if value is None:
            raise TemplateError(offset, _unknown(name, names), "template")
        if value == "":
            raise TemplateError(offset, f"placeholder '{{{name}}}' is empty for this image",
                                "template")
        out.append(value)
    return "".join(out)


def placeholders(template: str) -> tuple[str, ...]:
    return tuple(part[0] for part in parse(template) if isinstance(part, tuple))


def _unknown(name: str, names: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    hint = f"; did you mean '{{{close[0]}}}'?" if close else ""
    return f"unknown placeholder '{{{name}}}'{hint}"
