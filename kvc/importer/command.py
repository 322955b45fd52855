"""``kvc import DIR``: the spec to a file (atomically) or stdout, the report to stderr."""

from __future__ import annotations

from pathlib import Path

import click

from kvc.errors import EXIT_OK, EXIT_USER, FatalError
from kvc.importer.run import import_tree
from kvc.writer import write_atomic


def run(directory: Path, out: Path | None, registry: str | None) -> int:
    if not directory.is_dir():
        raise FatalError(f"{directory}: not a directory")
    outcome = import_tree(directory, registry)
    if outcome.problems:
        click.echo(outcome.problems, nl=False, err=True)
    for line in outcome.report:
        click.echo(line, err=True)
    if outcome.spec is None:
        click.echo("kvc: error: no image could be imported", err=True)
        return EXIT_USER
    if out is None:
        click.echo(outcome.spec, nl=False)
    else:
        write_atomic(out, outcome.spec)
        click.echo(f"wrote {out}", err=True)
    return EXIT_OK
