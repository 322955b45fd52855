"""Checks on the job graph: the invariants every emitter relies on."""

from __future__ import annotations

from collections.abc import Iterator

from kvc.ir import Pipeline


class GraphError(Exception):
    """An IR invariant is broken: a kvc bug, never a user error."""


def check(pipeline: Pipeline) -> None:
    problems = [*_duplicate_ids(pipeline), *_missing_needs(pipeline),
                *_cross_image(pipeline), *_cycles(pipeline), *_artifact_names(pipeline)]
    if problems:
        raise GraphError("; ".join(problems))


def _duplicate_ids(pipeline: Pipeline) -> Iterator[str]:
    seen: set[str] = set()
    for job in pipeline.jobs:
        if job.id in seen:
            yield f"duplicate job id '{job.id}'"
        seen.add(job.id)


def _missing_needs(pipeline: Pipeline) -> Iterator[str]:
    ids = {job.id for job in pipeline.jobs}
    for job in pipeline.jobs:
        for need in job.needs:
            if need not in ids:
                yield f"job '{job.id}' needs unknown job '{need}'"


def _cross_image(pipeline: Pipeline) -> Iterator[str]:
    image_of = {job.id: job.image for job in pipeline.jobs}
    for job in pipeline.jobs:
        for need in job.needs:
            if need in image_of and image_of[need] != job.image:
                yield f"job '{job.id}' of {job.image} needs '{need}' of {image_of[need]}"


def _artifact_names(pipeline: Pipeline) -> Iterator[str]:
    seen: set[str] = set()
    for job in pipeline.jobs:
        for artifact in job.produces:
            if artifact.name in seen:
                yield f"artifact name '{artifact.name}' is produced twice"
            seen.add(artifact.name)


def _cycles(pipeline: Pipeline) -> Iterator[str]:
    needs = {job.id: job.needs for job in pipeline.jobs}
    state: dict[str, int] = {}
    for start in needs:
        cycle = _visit(start, needs, state, [])
        if cycle:
            yield "cycle: " + " -> ".join(f'"{node}"' for node in cycle)
            return


def _visit(node: str, needs: dict[str, tuple[str, ...]], state: dict[str, int],
           stack: list[str]) -> list[str] | None:
    if state.get(node) == 2 or node not in needs:
        return None
    if state.get(node) == 1:
        return [*stack[stack.index(node):], node]
    state[node] = 1
    stack.append(node)
    for need in needs[node]:
        cycle = _visit(need, needs, state, stack)
        if cycle:
            return cycle
    stack.pop()
    state[node] = 2
    return None
