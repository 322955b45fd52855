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


def gitlab_graph(document: dict[str, Any]) -> Graph:
    """The child pipeline's jobs; ``needs`` entries that only fetch artifacts are not edges.

    GitLab hands a job only the artifacts of jobs it names in ``needs``, so a job
    that reads an ancestor's files names that ancestor too, with ``artifacts:
    true``. Such an entry adds no ordering: ``gitlab_fetch_edges_are_ancestors``
    checks that it points at an ancestor, and the reader leaves it out.
    """
    jobs = {name: job for name, job in document.items()
            if isinstance(job, dict) and "script" in job}
    direct = {(need["job"], name) for name, job in jobs.items() for need in job["needs"]}
    fetches = {(need["job"], name) for name, job in jobs.items() for need in job["needs"]
               if need["artifacts"]}
    edges = {(a, b) for a, b in direct
             if (a, b) not in fetches or not _through_another(a, b, direct)}
    return set(jobs), edges


def _through_another(a: str, b: str, edges: set[tuple[str, str]]) -> bool:
    """Whether b reaches a through some other of its needs (a is then implied)."""
    parents: dict[str, set[str]] = {}
    for x, y in edges:
        parents.setdefault(y, set()).add(x)
    stack = [p for p in parents.get(b, set()) if p != a]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if node == a:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(parents.get(node, set()))
    return False


READERS = {"github": github_graph, "circleci": circleci_graph, "gitlab": gitlab_graph}
# GitHub's workflow starts with the plan job, which every image's first jobs need;
# CircleCI plans in its setup configuration and GitLab in the parent pipeline,
# before the image jobs exist.
PLANNED_IN_GRAPH = {"github": True, "circleci": False, "gitlab": False}


def planned(backend: str, jobs: set[str], edges: set[tuple[str, str]],
            firsts: set[str]) -> Graph:
    """The IR's graph as the backend emits it: with the plan job where it is one."""
    if not PLANNED_IN_GRAPH[backend]:
        return jobs, edges
    return jobs | {"plan"}, edges | {("plan", job) for job in firsts}


def document_of(spec: Path, backend: str) -> Any:
    out = emitted(spec, backend)
    return out.child() if backend == "gitlab" else out.document()


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_emitted_graph_is_the_ir(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    firsts = {job.id for job in out.pipeline.jobs if not job.needs}
    expected = planned(backend, {job.id for job in out.pipeline.jobs}, out.pipeline.edges(),
                       firsts)
    assert READERS[backend](document_of(spec, backend)) == expected


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_every_dependency_is_a_defined_job(spec: Path, backend: str) -> None:
    jobs, edges = READERS[backend](document_of(spec, backend))
    assert {need for need, _ in edges} <= jobs


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_no_edge_crosses_images(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    image_of = {job.id: job.image for job in out.pipeline.jobs}
    _, edges = READERS[backend](document_of(spec, backend))
    crossing = sorted((a, b) for a, b in edges if a != "plan" and image_of[a] != image_of[b])
    assert not crossing


def test_readers_see_a_changed_graph() -> None:
    """The readers are not vacuous: dropping or adding an edge is noticed."""
    gh = {"jobs": {"a": {}, "b": {"needs": ["a"]}, "c": {"needs": "b"}}}
    assert github_graph(gh) == ({"a", "b", "c"}, {("a", "b"), ("b", "c")})
    cc = {"jobs": {"a": {}, "b": {}},
          "workflows": {"kvc-x": {"jobs": ["a", {"b": {"requires": ["a"]}}]}}}
    assert circleci_graph(cc) == ({"a", "b"}, {("a", "b")})


@pytest.mark.parametrize(("spec", "backend"), cases("gitlab"))
def test_gitlab_fetches_artifacts_exactly_from_their_producers(spec: Path, backend: str) -> None:
    """``artifacts: true`` on the jobs whose files this job reads, and on no other."""
    out = emitted(spec, backend)
    child = out.child()
    for job in out.pipeline.jobs:
        wanted = {other.id for other in out.pipeline.jobs
                  if set(job.consumes) & set(other.produces)}
        fetched = {need["job"] for need in child[job.id]["needs"] if need["artifacts"]}
        assert fetched == wanted, job.id


def test_gitlab_reader_keeps_edges_and_drops_only_implied_fetches() -> None:
    child = {"a": {"script": [], "needs": []},
             "b": {"script": [], "needs": [{"job": "a", "artifacts": True}]},
             "c": {"script": [], "needs": [{"job": "b", "artifacts": False},
                                            {"job": "a", "artifacts": True}]}}
    assert gitlab_graph(child) == ({"a", "b", "c"}, {("a", "b"), ("b", "c")})
    child["c"]["needs"] = [{"job": "a", "artifacts": True}]
    assert gitlab_graph(child) == ({"a", "b", "c"}, {("a", "b"), ("a", "c")})
