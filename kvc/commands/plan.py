"""``kvc plan``: what will be built where, from what, tagged how."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from kvc import stages
from kvc.backends import buildfiles
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.compiler.model import ImageBuild
from kvc.errors import FatalError
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


CHANGED_COLUMNS = ("IMAGE", "DECISION", "REASON", "FINGERPRINT")


def run_changed(spec: Path, as_json: bool, force: str) -> int:
    """What the CI's plan job would decide now: the same plan.sh on the same data.

    The script and its input are written to a scratch directory exactly as
    ``kvc compile`` writes them, so a local answer and the CI's cannot drift.
    """
    pipeline = build_pipeline(load(spec))
    rows = decide(pipeline, force)
    if as_json:
        click.echo(json.dumps([{k: row[k] for k in ("image", "run", "reason", "fingerprint")}
                               for row in rows], indent=2))
    else:
        cells = [CHANGED_COLUMNS, *((r["image"], "run" if r["run"] else "skip", r["reason"],
                                     r["fingerprint"]) for r in rows)]
        widths = [max(len(line[i]) for line in cells) for i in range(len(CHANGED_COLUMNS))]
        for line in cells:
            click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def decide(pipeline: Pipeline, force: str = "") -> list[dict[str, Any]]:
    """Run plan.sh over ``pipeline``'s images; its decisions, in plan.json's shape."""
    with tempfile.TemporaryDirectory(prefix="kvc-plan-") as tmp:
        root = Path(tmp)
        script_dir = root / stages.DIR
        script_dir.mkdir(parents=True)
        for name in ("lib.sh", "plan.sh"):
            (script_dir / name).write_text(stages.read(name), encoding="utf-8")
        (root / stages.PLAN_DATA).write_text(buildfiles.plan_data(pipeline, "kvc plan"),
                                             encoding="utf-8")
        out = root / "out"
        env = {**os.environ, "KVC_FORCE": force, "KVC_PLAN_DIR": str(out)}
        env.pop("KVC_SUMMARY_FILE", None)
        env.pop("KVC_PLAN_DATA", None)
        result = subprocess.run(["bash", str(root / stages.PLAN_SCRIPT)], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, check=False)
        for line in result.stderr.splitlines():
            if "warning:" in line:  # fail-open reasons: the user must see them
                click.echo(line, err=True)
        if result.returncode != 0:
            raise FatalError(f"the plan stage failed:\n{result.stderr.strip()}")
        rows: list[dict[str, Any]] = json.loads((out / "plan.json").read_text(encoding="utf-8"))
        return rows
