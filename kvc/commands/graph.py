"""``kvc graph``: the job DAG as Mermaid (renders on GitHub) or Graphviz dot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Job, Pipeline

# Runner arch -> (fill, stroke): the colour says which machine a job needs.
COLOURS = {"amd64": ("#dbeafe", "#1e40af"), "arm64": ("#dcfce7", "#166534")}


def _label(job: Job) -> str:
    return f"{job.stage} {job.arch}" if job.arch else str(job.stage)


def _groups(pipeline: Pipeline) -> dict[str, list[Job]]:
    groups: dict[str, list[Job]] = {}
    for job in pipeline.jobs:
        groups.setdefault(job.image, []).append(job)
    return groups


def mermaid(pipeline: Pipeline) -> str:
    return "\n".join(_mermaid(pipeline)) + "\n"


def _mermaid(pipeline: Pipeline) -> Iterator[str]:
    def node(job_id: str) -> str:
        return job_id.replace("-", "_")

    yield "flowchart LR"
    for index, (image, jobs) in enumerate(_groups(pipeline).items()):
        yield f'  subgraph image{index}["{image}"]'
        for job in jobs:
            yield f'    {node(job.id)}["{_label(job)}"]:::{job.runner}'
        yield "  end"
    for job in pipeline.jobs:
        for need in job.needs:
            yield f"  {node(need)} --> {node(job.id)}"
    for arch, (fill, stroke) in COLOURS.items():
        yield f"  classDef {arch} fill:{fill},stroke:{stroke},color:#111"


def dot(pipeline: Pipeline) -> str:
    return "\n".join(_dot(pipeline)) + "\n"


def _dot(pipeline: Pipeline) -> Iterator[str]:
    yield "digraph kvc {"
    yield "  rankdir=LR;"
    yield '  node [shape=box, style="rounded,filled"];'
    for image, jobs in _groups(pipeline).items():
        yield f'  subgraph "cluster_{image}" {{'
        yield f'    label="{image}";'
        for job in jobs:
            fill, stroke = COLOURS[job.runner]
            yield f'    "{job.id}" [label="{_label(job)}", fillcolor="{fill}", color="{stroke}"];'
        yield "  }"
    for job in pipeline.jobs:
        for need in job.needs:
            yield f'  "{need}" -> "{job.id}";'
    yield "}"


def run(spec: Path, fmt: str) -> int:
    pipeline = build_pipeline(load(spec))
    click.echo(mermaid(pipeline) if fmt == "mermaid" else dot(pipeline), nl=False)
    return 0
