"""The backend-neutral pipeline: a DAG of jobs, with no backend words in it.

Emitters only translate this structure; every decision (what runs where, what
each job needs, which names things get) is made by the compiler so that all
backends produce the same pipeline. Capabilities a job needs are stated in
neutral terms (``needs_identity_token``, not "id-token: write"), and every
value a backend or build file needs is a typed field here: nothing downstream
reads a ``KVC_*`` string back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kvc.spec.diagnostics import Position


class Stage(StrEnum):
    BUILD = "build"
    CONTAINERIZE = "containerize"
    TEST = "test"
    PUBLISH = "publish"


class TestMode(StrEnum):
    """How the test stage boots an image (test.mode; docs/stages.md, "Test modes")."""

    AUTO = "auto"  # the stage picks at run time, from the runner's KVM
    KUBEVIRT = "kubevirt"
    QEMU = "qemu"


class Runtime(StrEnum):
    """Values only the CI system knows at run time (contract 1 of docs/stages.md).

    Each backend maps every member it can to its own variables in one table;
    stage scripts read the neutral name and fall back when it is unset.
    """

    RUN_ID = "KVC_RUN_ID"  # stable across re-runs of failed jobs
    REVISION = "KVC_REVISION"  # the commit being built
    SOURCE = "KVC_SOURCE"  # the repository URL
    SUMMARY_FILE = "KVC_SUMMARY_FILE"  # a Markdown file shown as the job's summary
    # A file a stage appends ``name=value`` lines to, read by later steps of the
    # same job (publish writes ``digest=``, which GitHub's provenance step reads).
    OUTPUT_FILE = "KVC_OUTPUT_FILE"
    # The identity keyless signing certifies in this run, which publish checks with
    # `cosign verify` right after signing (docs/verifying.md): the OIDC issuer and
    # the certificate's subject alternative name, exact or as a regular expression.
    SIGN_ISSUER = "KVC_SIGN_ISSUER"
    SIGN_IDENTITY = "KVC_SIGN_IDENTITY"
    SIGN_IDENTITY_REGEXP = "KVC_SIGN_IDENTITY_REGEXP"
    # "true" when this run's publish job runs (a push to the default branch), else
    # "false": containerize refuses to fall back to an OCI archive then, since
    # publish could never promote it.
    PUBLISHES = "KVC_PUBLISHES"


# What every job gets; publish adds OUTPUT_FILE, and the identity only when it signs.
BASE_RUNTIME: tuple[Runtime, ...] = (
    Runtime.RUN_ID, Runtime.REVISION, Runtime.SOURCE, Runtime.SUMMARY_FILE)
SIGN_RUNTIME: tuple[Runtime, ...] = (
    Runtime.SIGN_ISSUER, Runtime.SIGN_IDENTITY, Runtime.SIGN_IDENTITY_REGEXP)


class RegistryAccess(StrEnum):
    """What a job does with the image registry, so credentials reach only those jobs."""

    NONE = "none"
    PULL = "pull"  # optional: public images need no credentials
    PUSH = "push"


# The variables each access level receives (contract 2), in (user, password) order.
CREDENTIALS: dict[RegistryAccess, tuple[str, str]] = {
    RegistryAccess.PUSH: ("KVC_REGISTRY_USER", "KVC_REGISTRY_PASSWORD"),
    RegistryAccess.PULL: ("KVC_PULL_USER", "KVC_PULL_PASSWORD"),
}


@dataclass(frozen=True, slots=True)
class Registry:
    access: RegistryAccess
    host: str  # what `docker login` is given: docker.io when the image names no host

    @property
    def credentials(self) -> tuple[str, ...]:
        return CREDENTIALS.get(self.access, ())


NO_REGISTRY = Registry(RegistryAccess.NONE, "")


@dataclass(frozen=True, slots=True)
class Artifact:
    """Files a job keeps: a run-unique name and a directory.

    ``handoff`` files are read by a later job; the others are for people (test
    logs). ``keep_on_failure`` files are kept even when the job fails, which is
    when they matter most.
    """

    name: str
    path: str
    handoff: bool = True
    keep_on_failure: bool = False


@dataclass(frozen=True, slots=True)
class Cache:
    """A build output keyed by its fingerprint: same key, same bytes.

    ``output`` is the file whose presence proves a hit; with
    ``skip_run_on_hit`` the job's run step is skipped when it was restored.
    """

    key: str
    path: str
    output: str
    skip_run_on_hit: bool = True


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    stage: Stage
    image: str
    arch: str | None
    runner: str
    needs: tuple[str, ...]
    script: str
    # The stage contract: literal values, rendered to a backend's env syntax only
    # by the backend (kvc/backends/walk.py), together with runtime and credentials.
    inputs: tuple[tuple[str, str], ...]
    produces: tuple[Artifact, ...] = ()
    consumes: tuple[Artifact, ...] = ()
    cache: Cache | None = None
    fingerprint: str | None = None
    timeout_minutes: int = 60
    registry: Registry = NO_REGISTRY
    runtime: tuple[Runtime, ...] = BASE_RUNTIME
    needs_identity_token: bool = False
    default_branch_only: bool = False
    tools: tuple[str, ...] = ()
    test_mode: TestMode | None = None  # test jobs: the spec's test.mode
    origin: Position | None = None  # where the spec asked for this job (for errors)

    def env_dict(self) -> dict[str, str]:
        """The stage script's environment: its inputs, then the fingerprint (for its logs).

        Backends render this (escaped) at their edge, and ``kvc run`` uses it as is.
        """
        env = dict(self.inputs)
        if self.fingerprint is not None:
            env["KVC_FINGERPRINT"] = self.fingerprint
        return env


@dataclass(frozen=True, slots=True)
class Upstream:
    arch: str
    url: str
    checksum: str


@dataclass(frozen=True, slots=True)
class Target:
    """One image's container: what containerize bakes and publish tags."""

    image: str  # flavor/release_version
    slug: str
    flavor: str
    release_version: str
    repository: str  # registry/name, no tag
    arches: tuple[str, ...]
    tags: tuple[str, ...]  # every final tag, "latest" included when asked for
    context: str  # the directory holding one subdirectory per arch
    upstream: tuple[Upstream, ...]
    checks: tuple[str, ...] = ()  # every test check of the image, in spec order
    # What the plan stage compares with the published image's dev.kvc.fingerprint
    # label: a hash over the image's build fingerprints and how it is packaged.
    fingerprint: str = ""
    refresh_seconds: int = 0  # rebuild when the published image is older; 0 never
    # BuildKit attestations (an SBOM and max-mode SLSA provenance) in the index.
    attest: bool = True

    @property
    def plan_tag(self) -> str:
        """The tag the plan reads: the first one publish moves ("" when there is none)."""
        return self.tags[0] if self.tags else ""


@dataclass(frozen=True)
class Pipeline:
    source: str
    jobs: tuple[Job, ...]
    images: tuple[str, ...]
    targets: tuple[Target, ...] = ()

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
