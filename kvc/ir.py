"""The backend-neutral pipeline: a DAG of jobs, with no backend words in it.

Emitters only translate this structure; every decision (what runs where, what
each job needs, which names things get) is made by the compiler so that all
backends produce the same pipeline. Capabilities a job needs are stated in
neutral terms (``needs_identity_token``, not "id-token: write").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    BUILD = "build"
    CONTAINERIZE = "containerize"
    TEST = "test"
    PUBLISH = "publish"


@dataclass(frozen=True, slots=True)
class Artifact:
    """Files moved between jobs: a run-unique name and a directory."""

    name: str
    path: str


@dataclass(frozen=True, slots=True)
class Cache:
    """A build output keyed by its fingerprint: same key, same bytes."""

    key: str
    path: str
    output: str


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    stage: Stage
    image: str
    arch: str | None
    runner: str
    needs: tuple[str, ...]
    script: str
    env: tuple[tuple[str, str], ...]
    produces: tuple[Artifact, ...] = ()
    consumes: tuple[Artifact, ...] = ()
    cache: Cache | None = None
    timeout_minutes: int = 60
    secrets: tuple[str, ...] = ()
    needs_identity_token: bool = False
    default_branch_only: bool = False
    tools: tuple[str, ...] = ()

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class Pipeline:
    source: str
    jobs: tuple[Job, ...]
    images: tuple[str, ...]

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise KeyError(job_id)

    def find(self, image: str, stage: Stage, arch: str | None = None) -> Job | None:
        """The job of ``stage`` for ``image`` (and ``arch``, for per-arch stages)."""
        for job in self.jobs:
            if job.image == image and job.stage is stage and job.arch in {arch, None}:
                return job
        return None

    def edges(self) -> set[tuple[str, str]]:
        return {(need, job.id) for job in self.jobs for need in job.needs}
