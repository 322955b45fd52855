"""``kvc validate``: the whole front half of the compiler, nothing written."""

from __future__ import annotations

from pathlib import Path

import click

from kvc.backends import BACKENDS
from kvc.compiler import dag, kubevirt_support
from kvc.compiler.driver import Resolved, load
from kvc.compiler.graph import build_pipeline


def _configured_backends(resolved: Resolved) -> list[str]:
    """The backends the spec has settings for: validate warns as their compiles would.

    Only those are imported (tests/test_imports.py); a spec without settings for a
    backend says nothing about running there.
    """
    settings = resolved.spec.backends
    return [name for name in BACKENDS
            if settings is not None and getattr(settings, name, None) is not None]


def run(spec: Path) -> int:
    resolved = load(spec)
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    warnings = kubevirt_support.warnings(resolved.builds)
    for name in _configured_backends(resolved):
        warnings += BACKENDS[name].warnings(resolved)
    for warning in warnings:
        click.echo(warning, err=True)
    click.echo(f"{spec}: ok ({len(pipeline.images)} images, {len(resolved.builds)} image "
               f"builds, {len(pipeline.jobs)} jobs)")
    return 0
