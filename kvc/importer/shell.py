"""A safe subset of shell assignments, evaluated without ever running a shell.

``env.sh`` files of hand-written pipelines are ``source``d by their build
script, so anything in them runs with the CI's secrets. kvc import only reads
them: it understands plain assignments (``NAME=value``, ``export NAME=value``)
whose values are literals, single- or double-quoted strings and ``$NAME`` /
``${NAME}`` references, plus the one command substitution every such tree uses
to map Debian arch names to uname names. Everything else is a Problem at its
line and column; no text from the file ever reaches a process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


class Marker(Enum):
    """Parts of a value that differ per architecture."""

    ARCH = "arch"              # ${ARCH}: amd64 | arm64
    UNAME_ARCH = "uname_arch"  # the sed idiom below: x86_64 | aarch64


Part = str | Marker
Value = tuple[Part, ...]

UNAME = {"amd64": "x86_64", "arm64": "aarch64"}

# $(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/'), in the spellings
# seen in the wild: $ARCH or ${ARCH}, quoted or not, either order, optional g.
_SUBS = (r"s/amd64/x86_64/g?\s*;\s*s/arm64/aarch64/g?",
         r"s/arm64/aarch64/g?\s*;\s*s/amd64/x86_64/g?")
_IDIOM = re.compile(
    r"\$\(\s*echo\s+(\"?)\$(?:ARCH|\{ARCH\})\1\s*\|\s*sed\s+(?:-e\s+)?(['\"])(?:"
    + "|".join(_SUBS) + r")\2\s*\)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
# `export NAME ...` without a value changes nothing the build script reads.
_EXPORT_ONLY = re.compile(r"export(?:\s+[A-Za-z_][A-Za-z0-9_]*)+\s*(?:#.*)?")
# Characters that mean something to the shell outside quotes.
_SPECIAL = set(";&|<>()`")

# What the build script itself defines before sourcing env.sh: references to
# these are fine. ARCH and FLAVOR are the job's parameters.
SCRIPT_DEFAULTS: dict[str, Value] = {
    "BASE_URL": (), "DOWNLOAD_FILE": (), "CUSTOMIZE": ("true",),
    "VIRT_SYSPREP_OPERATIONS": (),
}
# Assigning these would change the build script's own machinery.
_PROTECTED = frozenset({
    "ARCH", "FLAVOR", "SHASUM", "SUMMER", "QCOW2_FILE", "QCOW2_TMPFILE", "PATH", "IFS",
    "HOME", "USER", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND",
    "LIBGUESTFS_BACKEND", "LIBGUESTFS_CACHEDIR", "LD_PRELOAD", "LD_LIBRARY_PATH",
})


@dataclass(frozen=True, slots=True)
class Problem:
    line: int  # 1-based
    col: int   # 1-based
    message: str


@dataclass
class Env:
    """The result of reading one env.sh: final values and what could not be read."""

    values: dict[str, Value] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # where each name was last set
    problems: list[Problem] = field(default_factory=list)


class _Unsupported(Exception):
    def __init__(self, col: int, message: str) -> None:
        super().__init__(message)
        self.col = col
        self.message = message


def evaluate(text: str, flavor: str) -> Env:
    """Read assignments in order, as ``source`` would, without executing any."""
    env = Env()
    scope: dict[str, Value] = {"FLAVOR": (flavor,), **SCRIPT_DEFAULTS}
    for number, line in enumerate(text.split("\n"), 1):
        try:
            assigned = _statement(line, scope)
        except _Unsupported as exc:
            env.problems.append(Problem(number, exc.col + 1, exc.message))
            continue
        if assigned is not None:
            scope[assigned[0]] = assigned[1]
            env.values[assigned[0]] = assigned[1]
            env.lines[assigned[0]] = number
    return env


def _statement(line: str, scope: dict[str, Value]) -> tuple[str, Value] | None:
    stripped = line.lstrip(" \t")
    start = len(line) - len(stripped)
    if not stripped or stripped.startswith("#"):
        return None
    if line.endswith("\\"):
        raise _Unsupported(len(line) - 1, "line continuations are not supported")
    if _EXPORT_ONLY.fullmatch(line, start):
        return None
    match = _ASSIGN.match(line, start)
    if match is None:
        raise _Unsupported(start, "not an assignment: kvc import evaluates only NAME=value "
                           "lines and never runs commands")
    name = match.group(1)
    if name in _PROTECTED:
        raise _Unsupported(match.start(1), f"assigning {name} changes the build script "
                           "itself; it cannot be imported")
    value, end = _word(line, match.end(), scope)
    rest = line[end:]
    if rest.strip() and not rest.lstrip(" \t").startswith("#"):
        raise _Unsupported(end + len(rest) - len(rest.lstrip(" \t")),
                           "only one assignment per line, with nothing after it")
    return name, value


def _word(line: str, i: int, scope: dict[str, Value]) -> tuple[Value, int]:
    """One shell word starting at i; returns its value and where it ended."""
    parts: list[Part] = []
    if line.startswith("~", i):
        raise _Unsupported(i, "'~' would expand to the build machine's home directory")
    while i < len(line) and line[i] not in " \t":
        char = line[i]
        if char == "'":
            i = _single(line, i, parts)
        elif char == '"':
            i = _double(line, i + 1, scope, parts)
        elif char == "$":
            i = _dollar(line, i, scope, parts)
        elif char == "\\":
            if i + 1 >= len(line):
                raise _Unsupported(i, "line continuations are not supported")
            parts.append(line[i + 1])
            i += 2
        elif char in _SPECIAL:
            raise _Unsupported(i, f"'{char}' is shell syntax kvc import does not evaluate")
        elif ord(char) < 32 or char == "\x7f":
            raise _Unsupported(i, "control character in a value")
        else:
            parts.append(char)
            i += 1
    return _join(parts), i


def _single(line: str, i: int, parts: list[Part]) -> int:
    close = line.find("'", i + 1)
    if close < 0:
        raise _Unsupported(i, "unterminated single quote (multi-line strings are not "
                           "supported)")
    parts.append(line[i + 1:close])
    return close + 1


def _double(line: str, i: int, scope: dict[str, Value], parts: list[Part]) -> int:
    """The inside of a double-quoted string; returns the index after its quote."""
    start = i - 1
    while i < len(line):
        char = line[i]
        if char == '"':
            return i + 1
        if char == "\\" and i + 1 < len(line) and line[i + 1] in '$`"\\':
            parts.append(line[i + 1])
            i += 2
        elif char == "$":
            i = _dollar(line, i, scope, parts)
        elif char == "`":
            raise _Unsupported(i, "command substitution is never run by kvc import")
        elif ord(char) < 32 and char != "\t":
            raise _Unsupported(i, "control character in a value")
        else:
            parts.append(char)
            i += 1
    raise _Unsupported(start, "unterminated double quote (multi-line strings are not "
                       "supported)")


def _dollar(line: str, i: int, scope: dict[str, Value], parts: list[Part]) -> int:
    idiom = _IDIOM.match(line, i)
    if idiom is not None:
        parts.append(Marker.UNAME_ARCH)
        return idiom.end()
    nxt = line[i + 1:i + 2]
    if nxt == "(":
        raise _Unsupported(i, "command substitution is never run by kvc import (only the "
                           "arch-mapping idiom $(echo ${ARCH} | sed "
                           "'s/amd64/x86_64/;s/arm64/aarch64/') is understood)")
    if nxt == "{":
        close = line.find("}", i + 2)
        name = line[i + 2:close] if close > 0 else ""
        if not _NAME.fullmatch(name):
            raise _Unsupported(i, "only ${NAME} expansions are understood (no operators "
                               "such as ${NAME:-...})")
        parts.extend(_lookup(name, i, scope))
        return close + 1
    match = _NAME.match(line, i + 1)
    if match is None:
        if nxt in ("", " ", "\t", '"'):
            parts.append("$")
            return i + 1
        raise _Unsupported(i, f"'${nxt}' is a shell expansion kvc import does not evaluate")
    parts.extend(_lookup(match.group(0), i, scope))
    return match.end()


def _lookup(name: str, col: int, scope: dict[str, Value]) -> Value:
    if name == "ARCH":
        return (Marker.ARCH,)
    if name not in scope:
        raise _Unsupported(col, f"${name} is not assigned above in this file (its value "
                           "would come from the build machine)")
    return scope[name]


def _join(parts: list[Part]) -> Value:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return tuple(out)


def render(value: Value, arch: str) -> str:
    """The value one architecture's build would see."""
    return "".join(part if isinstance(part, str) else
                   (arch if part is Marker.ARCH else UNAME[arch]) for part in value)


def template(value: Value) -> str:
    """The value as a kvc template: {arch} / {uname_arch}, literal braces doubled."""
    return "".join(part.replace("{", "{{").replace("}", "}}") if isinstance(part, str)
                   else "{" + part.value + "}" for part in value)
