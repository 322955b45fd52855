"""``{name}`` placeholders, with ``{{`` and ``}}`` as literal braces.

Templates are parsed once per distinct string (a spec with a thousand image
builds repeats the same few URL templates) and expanded per build. Errors carry
the character offset so the diagnostic can point at the placeholder itself.

Shell-style placeholders (``$arch``, ``${release_version}``) are not templates:
kvc would emit them literally (``$24.04`` after ``{release_version}`` expands).
``shell_style`` finds them so the resolver can refuse them in every key whose
value is not itself a guest shell command (docs/spec.md, "Templates").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHELL = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


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


def expand(template: str, names: Mapping[str, str], where: str = "this image") -> str:
    """Fill every placeholder; ``where`` names the image in an "is empty" error."""
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
            raise TemplateError(offset, _empty(name, where), "template")
        out.append(value)
    return "".join(out)


def placeholders(template: str) -> tuple[str, ...]:
    return tuple(part[0] for part in parse(template) if isinstance(part, tuple))


def shell_style(template: str, names: Collection[str]) -> TemplateError | None:
    """The first ``$name`` or ``${name}`` in ``template``, as an error with a suggestion."""
    if "$" not in template:
        return None
    match = _SHELL.search(template)
    if match is None:
        return None
    name = match.group(1) or match.group(2)
    close = _closest(name, names)
    fix = (f"did you mean '{{{close}}}'?" if close else
           "write a {placeholder} (a built-in name or a vars entry)")
    return TemplateError(match.start(), f"'{match.group(0)}' is shell syntax, which kvc does "
                         f"not expand here; {fix}", "template")


def _empty(name: str, where: str) -> str:
    hint = "; give that release a release_name" if name == "release_name" else ""
    return f"'{{{name}}}' is empty for {where}{hint}"


def _closest(name: str, names: Collection[str]) -> str | None:
    """A known name differing only in case ({ARCH}), else the nearest spelling."""
    folded = {known.lower(): known for known in names}
    if name.lower() in folded:
        return folded[name.lower()]
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(name: str, names: Mapping[str, str]) -> str:
    close = _closest(name, names)
    hint = f"; did you mean '{{{close}}}'?" if close else ""
    return f"unknown placeholder '{{{name}}}'{hint}"
