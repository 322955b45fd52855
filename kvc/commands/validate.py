"""``kvc validate``: the whole front half of the compiler, nothing written."""

from __future__ import annotations

from pathlib import Path

import click

from kvc.backends import gitlab
from kvc.compiler import dag, kubevirt_support
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline


def run(spec: Path) -> int:
    resolved = load(spec)
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    warnings = kubevirt_support.warnings(resolved.builds)
    settings = resolved.spec.backends.gitlab if resolved.spec.backends else None
    if settings is not None:  # the spec says it runs on GitLab
        warnings += gitlab.hosted_test_warnings(resolved.builds, settings.tags)
    for warning in warnings:
        click.echo(warning, err=True)
    click.echo(f"{spec}: ok ({len(pipeline.images)} images, {len(resolved.builds)} image "
               f"builds, {len(pipeline.jobs)} jobs)")
    return 0
