"""``kvc plan``: what will be built where, from what, tagged how."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.compiler.model import ImageBuild
from kvc.ir import Pipeline, Stage

COLUMNS = ("IMAGE BUILD", "RUNNER", "SOURCE", "CHECKSUM", "SYSPREP", "IMAGE", "SIGNED", "TAGS",
           "FINGERPRINT")


def run(spec: Path, as_json: bool) -> int:
    resolved = load(spec)
    pipeline = build_pipeline(resolved)
    rows = [_row(build, pipeline) for build in resolved.builds]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(_table(rows))
        for note in _notes(rows):
            click.echo(note)
    return 0


def _row(build: ImageBuild, pipeline: Pipeline) -> dict[str, Any]:
    job = pipeline.find(build.image_id, Stage.BUILD, build.arch)
    assert job is not None, build.build_id  # every resolved build has a build job
    algo = build.checksum.split(":", 1)[0] if build.checksum else None
    return {
        "build": build.build_id,
        "image": build.image_id,
        "arch": build.arch,
        "runner": job.runner,
        "url": build.url,
        "checksum_algo": algo,
        "checksum": build.checksum,
        "insecure_skip_checksum": build.insecure_skip_checksum,
        "verify_at_build": build.verifies_at_build,
        "checksum_url": build.checksum_url,
        "sysprep": _sysprep_summary(build),
        "image_ref": build.image,
        "tags": list(build.publish.tags),
        "latest": build.publish.latest,
        "sign": build.publish.sign,
        "test": list(build.test.checks) if build.test.enabled else [],
        "fingerprint": job.fingerprint,
    }


def _sysprep_summary(build: ImageBuild) -> str:
    sysprep = build.sysprep
    if not sysprep.enabled:
        return "off"
    parts = []
    if sysprep.update:
        parts.append("update")
    if sysprep.install:
        parts.append(f"install {len(sysprep.install)}")
    if sysprep.post_commands:
        parts.append(f"{len(sysprep.post_commands)} cmd")
    if sysprep.selinux_relabel:
        parts.append("relabel")
    if sysprep.makefile:
        parts.append("make")
    parts.append("ops " + ",".join(sysprep.operations))
    return ", ".join(parts)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    tags = ", ".join(row["tags"] + (["latest"] if row["latest"] else []))
    return (row["build"], row["runner"], row["url"], _checksum_cell(row), row["sysprep"],
            row["image_ref"], "yes" if row["sign"] else "no", tags, row["fingerprint"][:12])


def _checksum_cell(row: dict[str, Any]) -> str:
    if row["checksum_algo"]:
        return str(row["checksum_algo"])
    if row["verify_at_build"]:
        return "at build"
    return "NONE (insecure)" if row["insecure_skip_checksum"] else "-"


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    for row in rows:
        if row["runner"] != row["arch"]:
            notes.append(f"note: {row['build']} builds on {row['runner']}: no guest code runs "
                         "during customization")
        if row["verify_at_build"]:
            notes.append(f"note: {row['build']} has no pin; its build verifies the download "
                         f"against {row['checksum_url']} (verify_at_build: true)")
        if row["insecure_skip_checksum"]:
            notes.append(f"warning: {row['build']} is downloaded WITHOUT checksum verification "
                         "(insecure_skip_checksum: true)")
    return notes
