"""``kvc init``: a starter spec that validates and compiles as it is."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from kvc.backends.base import EmitInput
from kvc.commands import schema
from kvc.errors import FatalError
from kvc.writer import write_atomic

SPEC_NAME = "kvc.yaml"


def starter() -> str:
    return resources.files("kvc.templates").joinpath("starter.kvc.yaml").read_text("utf-8")


def run(directory: Path, force: bool) -> int:
    spec = directory / SPEC_NAME
    if spec.exists() and not force:
        raise FatalError(f"{spec} already exists; use --force to overwrite it")
    write_atomic(spec, starter())
    header = EmitInput.header_for(SPEC_NAME)
    write_atomic(directory / schema.FILE_NAME, schema.render(header))
    click.echo(f"wrote {spec} and {directory / schema.FILE_NAME}")
    click.echo(f"next: kvc lock {spec} && kvc compile {spec} --backend github")
    return 0
