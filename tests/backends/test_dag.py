"""Round trip: the job graph read back from the emitted YAML is exactly the IR's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.backends.conftest import cases, emitted, image_workflow_jobs

Graph = tuple[set[str], set[tuple[str, str]]]


def github_graph(document: dict[str, Any]) -> Graph:
    jobs = document["jobs"]
    edges: set[tuple[str, str]] = set()
    for job_id, job in jobs.items():
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            edges.add((need, job_id))
    return set(jobs), edges


def circleci_graph(document: dict[str, Any]) -> Graph:
    # The image pipeline is the per-image workflows; the scheduled update is not the IR.
    names: list[str] = []
    edges: set[tuple[str, str]] = set()
    for entry in image_workflow_jobs(document):
        if isinstance(entry, str):
            name, settings = entry, {}
        else:
            ((job, settings),) = entry.items()
            name = settings.get("name", job)
            assert job in document["jobs"], f"workflow entry {job} has no job definition"
        names.append(name)
        edges |= {(need, name) for need in settings.get("requires", [])}
    assert len(names) == len(set(names)), f"duplicate workflow job names: {names}"
    return set(names), edges


READERS = {"github": github_graph, "circleci": circleci_graph}
# GitHub's workflow starts with the plan job, which every image's first jobs need;
# CircleCI plans in its setup configuration, before the image workflows exist.
PLANNED_IN_GRAPH = {"github": True, "circleci": False}


def planned(backend: str, jobs: set[str], edges: set[tuple[str, str]],
            firsts: set[str]) -> Graph:
    """The IR's graph as the backend emits it: with the plan job where it is one."""
    if not PLANNED_IN_GRAPH[backend]:
        return jobs, edges
    return jobs | {"plan"}, edges | {("plan", job) for job in firsts}


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_emitted_graph_is_the_ir(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    firsts = {job.id for job in out.pipeline.jobs if not job.needs}
    expected = planned(backend, {job.id for job in out.pipeline.jobs}, out.pipeline.edges(),
                       firsts)
    assert READERS[backend](out.document()) == expected


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_every_dependency_is_a_defined_job(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    jobs, edges = READERS[backend](out.document())
    assert {need for need, _ in edges} <= jobs


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_no_edge_crosses_images(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    image_of = {job.id: job.image for job in out.pipeline.jobs}
    _, edges = READERS[backend](out.document())
    crossing = sorted((a, b) for a, b in edges if a != "plan" and image_of[a] != image_of[b])
    assert not crossing


def test_readers_see_a_changed_graph() -> None:
    """The readers are not vacuous: dropping or adding an edge is noticed."""
    gh = {"jobs": {"a": {}, "b": {"needs": ["a"]}, "c": {"needs": "b"}}}
    assert github_graph(gh) == ({"a", "b", "c"}, {("a", "b"), ("b", "c")})
    cc = {"jobs": {"a": {}, "b": {}},
          "workflows": {"kvc-x": {"jobs": ["a", {"b": {"requires": ["a"]}}]}}}
    assert circleci_graph(cc) == ({"a", "b"}, {("a", "b")})
