"""``kvc validate``: the whole front half of the compiler, nothing written."""

from __future__ import annotations

from pathlib import Path

import click

from kvc.compiler import dag, kubevirt_support
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline


def run(spec: Path) -> int:
    resolved = load(spec)
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    for warning in kubevirt_support.warnings(resolved.builds):
        click.echo(warning, err=True)
    click.echo(f"{spec}: ok ({len(pipeline.images)} images, {len(resolved.builds)} image "
               f"builds, {len(pipeline.jobs)} jobs)")
    return 0
