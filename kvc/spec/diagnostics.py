"""Diagnostics: every user mistake becomes ``FILE:LINE:COL: message [kind]``.

Errors are collected rather than raised one by one so that a user fixing a
spec sees everything wrong with it in one run, sorted by position, the way
compilers and linters report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A 1-based line/column in a file (the form editors jump to)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True, slots=True)
class Diagnostic:
    pos: Position
    message: str
    kind: str

    def headline(self) -> str:
        return f"{self.pos}: {self.message} [{self.kind}]"


class SpecError(Exception):
    """Raised with every diagnostic found; the CLI renders them and exits 1."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(set(diagnostics)))
        super().__init__("\n".join(d.headline() for d in self.diagnostics))


@dataclass
class Collector:
    """Accumulates diagnostics across passes; ``raise_if_any`` ends a phase."""

    items: list[Diagnostic] = field(default_factory=list)
    # Kinds a caller tolerates, e.g. `kvc lock` runs on specs that are not pinned yet.
    ignore: frozenset[str] = frozenset()

    def add(self, pos: Position, message: str, kind: str) -> None:
        if kind not in self.ignore:
            self.items.append(Diagnostic(pos, message, kind))

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)


def render(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> str:
    """Headline plus the offending source line and a caret, like compilers do."""
    out: list[str] = []
    for diag in diagnostics:
        out.append(diag.headline())
        out.extend(_excerpt(diag.pos, sources.get(diag.pos.file)))
    return "\n".join(out) + "\n"


def _excerpt(pos: Position, text: str | None) -> list[str]:
    if text is None or pos.line < 1:
        return []
    lines = text.splitlines()
    if pos.line > len(lines):
        return []
    source = lines[pos.line - 1].expandtabs(1)
    if len(source) > 200:
        source = source[:200] + "…"
    gutter = f"{pos.line:>5} | "
    caret = " " * (len(gutter) + max(pos.col - 1, 0)) + "^"
    return [gutter + source, caret]
