"""What each CI system makes of a string in its config, read strictly.

Tests compare the emitted environment with the IR through these readers, so a
value that the CI system would evaluate (a GitHub ``${{ }}`` expression, a
CircleCI ``<< >>`` parameter) is a failure, never silently accepted: only the
escape each emitter uses is understood, and nothing else that looks like
syntax may remain. They read emitted values; they never import the emitters.

- GitHub evaluates ``${{ <expression> }}`` in ``env:`` values; the only
  expression understood here is a string literal ``'...'`` (``''`` is a quote),
  which is how the GitHub emitter spells a literal ``${{``.
- CircleCI substitutes ``<< ... >>`` anywhere in the config; ``\\<<`` is a
  literal ``<<``, the escape the CircleCI emitter uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

GH_OPEN = "${{"
CIRCLE_OPEN = "<<"


class Unescaped(AssertionError):
    """The CI system would evaluate this part of a value that kvc meant as data."""


def github_expressions(raw: str) -> Iterator[tuple[int, int, str | None]]:
    """Each ``${{ }}`` in ``raw``: (start, end, the literal's value or None if not a literal)."""
    start = raw.find(GH_OPEN)
    while start >= 0:
        i = start + len(GH_OPEN)
        while raw[i : i + 1] == " ":
            i += 1
        literal: str | None = None
        if raw[i : i + 1] == "'":
            literal, i = _string_literal(raw, i)
            while raw[i : i + 1] == " ":
                i += 1
            if raw[i : i + 2] != "}}":
                literal = None
        end = raw.find("}}", i)
        if end < 0:
            raise Unescaped(f"unterminated ${{{{ in {raw!r}")
        yield start, end + 2, literal
        start = raw.find(GH_OPEN, end + 2)


def _string_literal(raw: str, quote: int) -> tuple[str, int]:
    out, i = [], quote + 1
    while i < len(raw):
        if raw[i] == "'":
            if raw[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(raw[i])
        i += 1
    raise Unescaped(f"unterminated string literal in {raw!r}")


def github_value(raw: str) -> str:
    """The value a GitHub job sees for ``raw``; any non-literal expression is an error."""
    parts, last = [], 0
    for start, end, literal in github_expressions(raw):
        if literal is None:
            raise Unescaped(f"GitHub would evaluate {raw[start:end]!r} in {raw!r}")
        parts += [raw[last:start], literal]
        last = end
    return "".join([*parts, raw[last:]])


def circleci_value(raw: str) -> str:
    """The value a CircleCI job sees for ``raw``; an unescaped ``<<`` is an error."""
    parts, i = [], 0
    while i < len(raw):
        if raw.startswith("\\" + CIRCLE_OPEN, i):
            parts.append(CIRCLE_OPEN)
            i += 3
        elif raw.startswith(CIRCLE_OPEN, i):
            raise Unescaped(f"CircleCI would substitute at {raw[i:]!r} in {raw!r}")
        else:
            parts.append(raw[i])
            i += 1
    return "".join(parts)


def github_env(env: dict[str, Any]) -> dict[str, str]:
    return {name: github_value(str(value)) for name, value in env.items()}


def circleci_env(env: dict[str, Any]) -> dict[str, str]:
    return {name: circleci_value(str(value)) for name, value in env.items()}


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a parsed document with its dotted location."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")
    elif isinstance(value, str):
        yield where, value
