"""``kvc import``: read a tree, check each image on its own, write one spec.

Each image is first composed into a one-image spec and put through kvc's own
validation, so an image whose values kvc rejects is skipped with kvc's
message instead of spoiling the others. Only then are the survivors lifted
into one spec, which is validated again before it is written (atomically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kvc.compiler.driver import load_source
from kvc.importer import compose
from kvc.importer.tree import ImportedRelease, Tree, read_tree
from kvc.spec.diagnostics import Diagnostic, Position, SpecError, render


@dataclass
class Outcome:
    spec: str | None
    report: list[str] = field(default_factory=list)
    problems: str = ""  # rendered FILE:LINE:COL diagnostics of unreadable input


def import_tree(root: Path, registry: str | None = None) -> Outcome:
    tree = read_tree(root, registry)
    kept = _check_each(tree)
    _unique(tree, kept)
    outcome = Outcome(None, problems=_problems(tree))
    if kept:
        text = compose.render(tree.registry, kept, _header(tree))
        load_source(text.encode(), "imported spec")  # a bug in kvc import if it fails
        outcome.spec = text
    outcome.report = _report(tree, kept)
    return outcome


def _check_each(tree: Tree) -> list[ImportedRelease]:
    kept = []
    for release in tree.releases:
        text = compose.render(tree.registry, [release], [])
        try:
            load_source(text.encode(), "spec")
        except SpecError as error:
            why = "; ".join(d.message for d in error.diagnostics)
            tree.skipped.append(f"images/{release.result.directory}: kvc rejects its values: "
                                f"{why}")
            continue
        kept.append(release)
    return kept


def _unique(tree: Tree, kept: list[ImportedRelease]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for release in list(kept):
        key = (release.flavor, release.release)
        if key in seen:
            kept.remove(release)
            tree.skipped.append(f"images/{release.result.directory}: {key[0]}/{key[1]} is "
                                f"already imported from images/{seen[key]}")
        else:
            seen[key] = release.result.directory


def _problems(tree: Tree) -> str:
    if not tree.problems:
        return ""
    diagnostics = []
    sources: dict[str, str] = {}
    for problem in tree.problems:
        name = str(problem.file.relative_to(tree.root)) if problem.file.is_relative_to(
            tree.root) else str(problem.file)
        diagnostics.append(Diagnostic(Position(name, problem.line, problem.col),
                                      problem.message, "not-evaluated"))
        sources[name] = problem.file.read_text(encoding="utf-8", errors="replace")
    return render(diagnostics, sources)


def _header(tree: Tree) -> list[str]:
    lines = [f"Imported by `kvc import` from {tree.root.name or tree.root}; check it with "
             "`kvc validate` and `kvc plan`."]
    lines += [f"Note: {note}" for note in tree.notes]
    lines += [f"Left out: {item}" for item in tree.left_out]
    lines += [f"Skipped: {item}" for item in tree.skipped]
    return lines


def _report(tree: Tree, kept: list[ImportedRelease]) -> list[str]:
    lines = []
    for release in kept:
        lines.append(f"imported   {release.flavor}/{release.release} "
                     f"({', '.join(release.result.arches)}) from {release.origin}")
        lines += [f"  note: {note}" for note in release.result.notes]
    lines += [f"left out   {item}" for item in tree.left_out]
    lines += [f"skipped    {item}" for item in tree.skipped]
    lines += [f"note       {note}" for note in tree.notes]
    lines.append(f"{len(kept)} images imported, {len(tree.skipped)} skipped, "
                 f"{len(tree.left_out)} left out")
    return lines
