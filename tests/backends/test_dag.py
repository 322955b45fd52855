"""Round trip: the job graph read back from the emitted YAML is exactly the IR's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.backends.conftest import cases, emitted

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
    # The image pipeline is the ``kvc`` workflow; others (the scheduled update) are not the IR.
    names: list[str] = []
    edges: set[tuple[str, str]] = set()
    for entry in document["workflows"]["kvc"]["jobs"]:
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


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_emitted_graph_is_the_ir(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    jobs, edges = READERS[backend](out.document())
    assert jobs == {job.id for job in out.pipeline.jobs}
    assert edges == out.pipeline.edges()


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
    crossing = sorted((a, b) for a, b in edges if image_of[a] != image_of[b])
    assert not crossing


def test_readers_see_a_changed_graph() -> None:
    """The readers are not vacuous: dropping or adding an edge is noticed."""
    gh = {"jobs": {"a": {}, "b": {"needs": ["a"]}, "c": {"needs": "b"}}}
    assert github_graph(gh) == ({"a", "b", "c"}, {("a", "b"), ("b", "c")})
    cc = {"jobs": {"a": {}, "b": {}},
          "workflows": {"kvc": {"jobs": ["a", {"b": {"requires": ["a"]}}]}}}
    assert circleci_graph(cc) == ({"a", "b"}, {("a", "b")})
