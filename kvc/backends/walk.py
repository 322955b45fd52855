"""The one walk over the IR that every backend shares.

A backend is tables (runners, runtime values, tools, literal escapes),
capability flags and a handful of step renderers; this module owns the
skeleton every job follows (checkout -> fetch inputs -> tools -> cache -> run
-> keep outputs), the rendering of a job's environment, the run command, the
runner-map merge, the default-branch fallback and the report of what a
backend cannot express. Like a SQL generator's dispatch, adding a feature to
the skeleton is written once here, and a backend only says how it spells it.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from kvc import stages
from kvc.backends.base import EmitInput, Files, comment_header
from kvc.ir import NO_REGISTRY, Artifact, Cache, Job, Registry, RegistryAccess, Runtime
from kvc.spec.diagnostics import Collector, Position

if TYPE_CHECKING:
    from kvc.compiler.driver import Resolved

Step = Any  # one entry of a backend's step list (a mapping, or a bare name)
UNSUPPORTED = "unsupported"
LIMIT = "limit"
DEFAULT_BRANCH = "main"
# The job that runs the plan stage (contract 7) before any image's jobs.
PLAN_JOB = "plan"
# The variable a backend without a cache-hit output sets, on build jobs, to the plan's
# rebuild list (",slug,slug,": plan.sh's rebuild.txt, the forced and refresh-due images).
REBUILD = "KVC_REBUILD"


@dataclass(frozen=True, slots=True)
class Limit:
    """A documented platform limit on a file kvc writes: beyond it the CI rejects the file."""

    what: str  # "workflow file size"
    paths: str  # glob of the files it applies to
    max_bytes: int
    source: str  # where the platform documents it


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a CI system can express; the walk reports the rest as compile errors."""

    identity_token: bool = True  # an OIDC token for keyless signing
    cache_hit_output: bool = False  # a later step can be skipped on a cache hit


class Emitter:
    """One backend: subclasses fill the tables and render single steps."""

    NAME: ClassVar[str]
    # Directories and root-level files kvc owns for this backend (checked and cleaned up).
    OWNED: ClassVar[tuple[str, ...]]
    # Arch -> how the CI names a machine: a label, a resource class, a list of tags.
    RUNNERS: ClassVar[Mapping[str, Any]]
    # Neutral runtime value -> a shell expression of the backend's own variables.
    RUNTIME: ClassVar[Mapping[Runtime, str]]
    # IR tool -> the setup steps it takes (an empty tuple: the runner already has it).
    TOOLS: ClassVar[Mapping[str, tuple[Step, ...]]]
    # (text, replacement) pairs that keep a value literal where the CI expands syntax.
    ESCAPES: ClassVar[tuple[tuple[str, str], ...]] = ()
    CAPABILITIES: ClassVar[Capabilities] = Capabilities()
    # The field of the backend's settings block that overrides RUNNERS per arch.
    RUNNER_SETTING: ClassVar[str] = ""
    # Documented limits on the files this backend writes; the walk refuses to exceed them.
    LIMITS: ClassVar[tuple[Limit, ...]] = ()
    # The model of the spec's ``backends.<NAME>`` block (kvc/spec/models.py), if any.
    SETTINGS: ClassVar[type[Any] | None] = None

    def __init_subclass__(cls, *, name: str = "", owned: tuple[str, ...] = (),
                          **kwargs: Any) -> None:
        """``class X(Emitter, name=..., owned=...)``: what the registry and compile need."""
        super().__init_subclass__(**kwargs)
        if name:
            cls.NAME, cls.OWNED = name, owned

    def __init__(self, source: EmitInput) -> None:
        self.source = source
        self.errors = Collector()
        self.settings = self.load_settings(source)

    def load_settings(self, source: EmitInput) -> Any:
        """The backend's block of the spec's ``backends:``, defaults filled in."""
        model = self.SETTINGS
        if model is None:
            return None
        return settings_of(source, lambda b: getattr(b, self.NAME), model())

    def header(self) -> str:
        """The comment every file of this backend starts with."""
        return comment_header(self.source.header_lines(self.NAME))

    @classmethod
    def emit(cls, source: EmitInput) -> Files:
        """The backend's files, or every `[unsupported]` error found on the way."""
        emitter = cls(source)
        for job in source.pipeline.jobs:
            emitter.check(job)
        emitter.errors.raise_if_any()
        files = emitter.files()
        emitter.enforce_limits(files)
        emitter.errors.raise_if_any()
        return files

    @classmethod
    def warnings(cls, resolved: Resolved) -> list[str]:
        """``FILE:LINE:COL: warning: ... [kind]`` lines ``compile`` prints for this backend:
        what it can write but will likely fail at run time (none by default)."""
        return []

    def enforce_limits(self, files: Files) -> None:
        """Refuse to write a file the platform would reject, naming the limit and the file."""
        for path, text in files.items():
            for limit in self.LIMITS:
                size = len(text.encode())
                if fnmatch.fnmatchcase(path, limit.paths) and size > limit.max_bytes:
                    self.errors.add(
                        Position(self.source.pipeline.source, 1, 1),
                        f"{path} would be {size:,} bytes, over {self.NAME}'s {limit.what} "
                        f"limit of {limit.max_bytes:,} bytes ({limit.source}); "
                        "split the spec into several", LIMIT)

    # -- what each backend provides -------------------------------------------------

    def files(self) -> Files:
        raise NotImplementedError

    def checkout(self, job: Job) -> list[Step]:
        raise NotImplementedError

    def fetch(self, job: Job, artifact: Artifact) -> list[Step]:
        raise NotImplementedError

    def restore(self, job: Job, cache: Cache) -> list[Step]:
        raise NotImplementedError

    def run(self, job: Job, command: str) -> list[Step]:
        raise NotImplementedError

    def save(self, job: Job, cache: Cache) -> list[Step]:
        return []  # most caches save themselves at the end of the job

    def keep(self, job: Job, artifact: Artifact) -> list[Step]:
        raise NotImplementedError

    def identity(self, job: Job) -> list[Step]:
        return []  # steps that make an OIDC token available, where it takes any

    # -- the skeleton -----------------------------------------------------------------

    def steps(self, job: Job) -> list[Step]:
        steps = self.checkout(job)
        for artifact in job.consumes:
            steps += self.fetch(job, artifact)
        for tool in job.tools:
            steps += list(self.TOOLS[tool])
        if job.cache is not None:
            steps += self.restore(job, job.cache)
        if job.needs_identity_token:
            steps += self.identity(job)
        steps += self.run(job, self.command(job))
        if job.cache is not None:
            steps += self.save(job, job.cache)
        for artifact in job.produces:
            steps += self.keep(job, artifact)
        return steps

    def check(self, job: Job) -> None:
        """Report, at the spec position, what this backend cannot express for ``job``."""
        if job.runner not in self.runners():
            self.unsupported(job.origin, f"no {job.runner} runner is known for {self.NAME}; "
                             f"set backends.{self.NAME} to name one")
        if job.needs_identity_token and not self.CAPABILITIES.identity_token:
            self.unsupported(job.origin, f"{self.NAME} cannot give a job an identity token, "
                             "so keyless signing (publish.sign) is not possible")
        for tool in job.tools:
            if tool not in self.TOOLS:
                self.unsupported(job.origin, f"{self.NAME} has no way to set up {tool}, "
                                 f"which the {job.stage} stage needs")

    def unsupported(self, pos: Position | None, message: str) -> None:
        self.errors.add(pos or Position(self.source.pipeline.source, 1, 1), message, UNSUPPORTED)

    # -- the plan stage ---------------------------------------------------------------

    def slug(self, image: str) -> str:
        """The slug the plan writes to run.txt for ``image``."""
        return self._slugs[image]

    @cached_property
    def _slugs(self) -> dict[str, str]:
        return {t.image: t.slug for t in self.source.pipeline.targets}

    def plan_registry(self, slugs: list[str] | None = None) -> Registry | None:
        """Pull access for the plan job: it reads each published image's label, which a
        private image (a new ghcr.io package is one) hides from an anonymous reader, so
        every push would run everything. The plan gets the pull credentials the test jobs
        get, for the one registry every image it plans lives in (plan.sh sends them only
        to KVC_PULL_REGISTRY); with images on several registries it reads anonymously."""
        hosts = {job.registry.host for job in self.source.pipeline.jobs
                 if job.registry != NO_REGISTRY
                 and (slugs is None or self.slug(job.image) in slugs)}
        if len(hosts) != 1:
            return None
        return Registry(RegistryAccess.PULL, hosts.pop())

    def runtime_line(self, value: Runtime) -> str:
        """The shell line that exports a runtime value ("" where the backend has none)."""
        if value is Runtime.PUBLISHES:
            condition = self.publishes_condition()
            return ("" if condition is None else
                    f"if {condition}; then export {value}=true; else export {value}=false; fi")
        return f'export {value}="{self.RUNTIME[value]}"' if value in self.RUNTIME else ""

    def publishes_condition(self) -> str | None:
        """A shell condition true exactly in runs whose publish job runs."""
        return None

    def gated(self, job: Job) -> bool:
        """An image's first jobs wait for the plan; the rest follow through ``needs``."""
        return not job.needs

    def plan_command(self, then: str) -> str:
        """The plan job's shell: the summary file, then plan.sh, then how the backend
        hands the decisions on (every backend has one)."""
        lines = [f'export {value}="{self.RUNTIME[value]}"'
                 for value in (Runtime.SUMMARY_FILE,) if value in self.RUNTIME]
        return "\n".join([*lines, f"bash {stages.PLAN_SCRIPT}", then]) + "\n"

    # -- shared rendering ---------------------------------------------------------------

    def literal(self, value: str) -> str:
        for text, replacement in self.ESCAPES:
            value = value.replace(text, replacement)
        return value

    def env(self, job: Job) -> dict[str, str]:
        """The job's literal inputs in the backend's env syntax (values stay byte-exact)."""
        return {name: self.literal(value) for name, value in job.env_dict().items()}

    def command(self, job: Job) -> str:
        """The run step's shell: runtime values, then the stage script (unless cached)."""
        lines = [line for value in job.runtime if (line := self.runtime_line(value))]
        run = f"bash {shlex.quote(job.script)}"
        cache = job.cache
        if cache is not None and cache.skip_run_on_hit and not self.CAPABILITIES.cache_hit_output:
            output = shlex.quote(cache.output)
            # KVC_REBUILD (",slug,slug,", from the plan's rebuild.txt): a forced or
            # refresh-due image is rebuilt even when its fingerprint's output was restored.
            rebuild = f'[[ "${{{REBUILD}:-}}" != *,{self.slug(job.image)},* ]]'
            run = (f"if [ -f {output} ] && {rebuild}; then\n"
                   f'  echo "kvc: {cache.output} restored from the cache; not rebuilding"\n'
                   f"else\n  {run}\nfi")
        return "\n".join([*lines, run]) + ("\n" if lines or "\n" in run else "")

    def runners(self) -> dict[str, Any]:
        """The backend's runner per arch, with the spec's overrides on top."""
        return {**self.RUNNERS, **self.runner_overrides()}

    def runner_overrides(self) -> Mapping[str, Any]:
        chosen = getattr(self.settings, self.RUNNER_SETTING) if self.RUNNER_SETTING else None
        return {str(arch): name for arch, name in (chosen or {}).items()}

    @property
    def branch(self) -> str:
        """The branch publish runs from: the settings' ``default_branch``, else main.
        (GitLab, whose CI knows the project's default branch, reads its setting itself.)"""
        return getattr(self.settings, "default_branch", None) or DEFAULT_BRANCH


T = TypeVar("T")


def settings_of(source: EmitInput, pick: Callable[[Any], T | None], default: T) -> T:
    """A backend's settings block from the spec, or its defaults."""
    value = pick(source.backends) if source.backends is not None else None
    return value if value is not None else default
