"""CircleCI: config 2.1 with machine executors per arch and workspaces.

Each IR job becomes one explicitly named job (so ``requires`` can name exactly
the jobs of one image). The skeleton of every job comes from
kvc/backends/walk.py; this module holds CircleCI's tables and its spelling of
each step.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from kvc import stages
from kvc.backends import setup, update, yamlout
from kvc.backends.base import Files, comment_header
from kvc.backends.walk import PLAN_JOB, REBUILD, Emitter, Limit, Step
from kvc.compiler import pull_access
from kvc.compiler.graph import TEST_UP_MINUTES
from kvc.ir import Artifact, Cache, Job, RegistryAccess, Runtime, Stage
from kvc.spec.models import CircleCIBackend

if TYPE_CHECKING:
    from kvc.compiler.driver import Resolved

# Dynamic configuration (circleci/circleci-docs@9734a14:
# docs/guides/modules/orchestrate/pages/dynamic-config.adoc): config.yml is a
# setup configuration (`setup: true`) with the one workflow it may run
# (dynamic-config.adoc:53-55), which plans, then continues the pipeline with
# kvc.yml, passing the images that run as one pipeline parameter. Every image
# has its own workflow there, whose `when` matches its slug in that parameter
# (`matches` takes a Java regex that must match the whole value:
# docs/reference/modules/ROOT/pages/configuration-reference.adoc:3887-3905),
# so a skipped image starts no job. The project needs "Enable dynamic config
# using setup workflows" (dynamic-config.adoc:28; on by default for projects
# created after 2023-12-01).
CONFIG: Final = ".circleci/config.yml"
CONTINUATION: Final = ".circleci/kvc.yml"
# The continuation orb's `continue` command posts the configuration to the
# pipeline/continue API; pinned to the version CircleCI's own docs use
# (circleci/circleci-docs@9734a14:docs/guides/modules/orchestrate/pages/
# using-dynamic-configuration.adoc:41). Its `parameters` takes a JSON object or
# the path of a file holding one (the orb's registry page, circleci/continuation).
CONTINUATION_ORB: Final = "circleci/continuation@1.1.0"
RUN_PARAMETER: Final = "kvc-run"
# The images plan.sh lists in rebuild.txt (forced, refresh-due, half-published,
# unread registry): their build jobs get it as KVC_REBUILD and rebuild even when
# restore_cache found their fingerprint's output.
REBUILD_PARAMETER: Final = "kvc-rebuild"
FORCE_PARAMETER: Final = "force"
PARAMETERS_FILE: Final = f"{stages.PLAN_DIR}/parameters.json"
# run.txt -> {"kvc-run": ",slug,slug,", "kvc-rebuild": ...}: slugs are [A-Za-z0-9_-],
# JSON-safe as they are.
WRITE_PARAMETERS: Final = (f'printf \'{{"{RUN_PARAMETER}": ",%s,", '
                           f'"{REBUILD_PARAMETER}": ",%s,"}}\\n\' '
                           '"$(paste -sd, "$KVC_PLAN_DIR/run.txt")" '
                           '"$(paste -sd, "$KVC_PLAN_DIR/rebuild.txt")" '
                           f'> "{PARAMETERS_FILE}"')
# The configuration the setup job continues with. When the plan selects no image,
# kvc.yml would have every workflow filtered out, which fails the pipeline ("All
# Workflows have been filtered from this Pipeline"; CircleCI-Public/continuation-orb#6).
# It then continues with the empty configuration the orb's own `finish` command posts
# to advance a pipeline without running anything
# (CircleCI-Public/continuation-orb@084f189:src/scripts/finish.sh:17-21), so an
# unchanged push runs the plan job and nothing else.
CONTINUE_FILE: Final = f"{stages.PLAN_DIR}/continue.yml"
EMPTY_CONFIGURATION: Final = "{version: 2, jobs: {}, workflows: {version: 2}}"
# "A compiled config YAML must be at most 8MB" (CircleCI support, "Maximum Size of
# a CircleCI Configuration File", support.circleci.com/hc/en-us/articles/360045043634);
# read as 8,000,000 bytes, the stricter reading.
CONFIG_LIMIT: Final = Limit(
    "compiled config size", ".circleci/*", 8_000_000,
    "support.circleci.com/hc/en-us/articles/360045043634: at most 8MB")
MACHINE_IMAGE: Final = "ubuntu-2404:current"
DEFAULT_CONTEXT: Final = ("kvc-publish",)
# The update job's token may push to the repository: it never shares a context with
# the registry credentials, so neither reaches the other's jobs.
DEFAULT_UPDATE_CONTEXT: Final = ("kvc-update",)
# How long a run step may print nothing before CircleCI ends it (default 10m:
# circleci/circleci-docs@9734a14:docs/reference/modules/ROOT/pages/
# configuration-reference.adoc:1658-1661). Customization can be silent for long
# stretches (package updates under emulation). The test stage's single waits
# (kind's control plane, kubectl) may each take up to the spec's test.timeout, so
# a test job's limit is its whole job budget (test.timeout + 40m), never less than
# the table's; its poll loops also log a line every minute (kvc_poll_until).
NO_OUTPUT_TIMEOUT: Final[Mapping[Stage, int]] = {
    Stage.BUILD: 60, Stage.CONTAINERIZE: 30, Stage.TEST: 30, Stage.PUBLISH: 20,
}
# Machine images lack cosign: a pinned release, verified against its published sha256.
INSTALL_COSIGN: Final = setup.install_cosign(sudo="sudo ")
# Keyless signing: a CircleCI OIDC token with the audience Sigstore expects,
# handed to cosign through its SIGSTORE_ID_TOKEN variable. Only `aud` is customised;
# without --root-issuer its issuer stays the org's, which publish verifies against
# (circleci/circleci-docs@9734a1410c:docs/guides/modules/permissions-authentication/
# pages/oidc-tokens-with-custom-claims.adoc:11-32).
SIGSTORE_TOKEN: Final = """\
token="$(circleci run oidc get --claims '{"aud": "sigstore"}')"
echo "export SIGSTORE_ID_TOKEN='$token'" >> "$BASH_ENV"
"""
UPDATE_JOB: Final = "kvc-update"


def no_output_minutes(job: Job) -> int:
    """The run step's no_output_timeout in minutes (see NO_OUTPUT_TIMEOUT)."""
    minutes = NO_OUTPUT_TIMEOUT[job.stage]
    if job.stage is Stage.TEST:
        minutes = max(minutes, job.timeout_minutes)
    return minutes
SCHEDULED: Final = {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}


# Built-in variables (https://circleci.com/docs/variables/). The run id is the
# workspace id: "Rerun workflow from failed" makes a new CIRCLE_WORKFLOW_ID but
# reuses the workspace, so the staged files and their id stay together. Job
# `environment:` values are literal (a built-in variable cannot define another;
# same page), so the walk exports these in the run command.
BUILT_IN_VARIABLES: Final[Mapping[Runtime, str]] = {
    Runtime.RUN_ID: "$CIRCLE_WORKFLOW_WORKSPACE_ID",
    Runtime.REVISION: "$CIRCLE_SHA1",
    Runtime.SOURCE: "$CIRCLE_REPOSITORY_URL",
    # Keyless signing with a CircleCI OIDC token: the issuer is the org's
    # (sigstore/fulcio@v1.8.8:config/identity/config.yaml:139-142) and the certificate
    # SAN names the project's pipeline definition (config.yaml:297-315), whose id no
    # built-in variable gives: match it by the project (CIRCLE_ORGANIZATION_ID and
    # CIRCLE_PROJECT_ID are built-in, https://circleci.com/docs/guides/toolkit/how-to-find-ids).
    Runtime.SIGN_ISSUER: "https://oidc.circleci.com/org/$CIRCLE_ORGANIZATION_ID",
    Runtime.SIGN_IDENTITY_REGEXP:
        "^https://circleci\\.com/api/v2/projects/$CIRCLE_PROJECT_ID/pipeline-definitions/",
}
RESOURCE_CLASS: Final[Mapping[str, str]] = {"amd64": "medium", "arm64": "arm.medium"}
SETUP_STEPS: Final[Mapping[str, tuple[Step, ...]]] = {
    "buildx": (),  # the machine image ships docker with buildx
    "cosign": ({"run": {"name": "Install cosign", "command": INSTALL_COSIGN}},),
}


class CircleCI(Emitter, name="circleci", owned=(".circleci",)):
    RUNNERS = RESOURCE_CLASS
    RUNTIME = BUILT_IN_VARIABLES
    TOOLS = SETUP_STEPS
    # CircleCI substitutes ``<< >>`` parameters anywhere in config; ``\\<<`` escapes it.
    ESCAPES = (("<<", "\\<<"),)

    RUNNER_SETTING = "resource_class"
    LIMITS = (CONFIG_LIMIT,)  # both files: the setup config and the continuation
    SETTINGS = CircleCIBackend
    settings: CircleCIBackend

    @classmethod
    def warnings(cls, resolved: Resolved) -> list[str]:
        return pull_access.circleci_warnings(resolved) + runtime_warnings(resolved)

    def files(self) -> Files:
        header = self.header()
        if self.source.update is not None:
            header += comment_header([
                f"Checksum updates: create a scheduled pipeline named '{UPDATE_JOB}' with cron "
                f"'{self.source.update.schedule}'",
                f"(Project Settings > Triggers); its context ({', '.join(self._update_contexts())})"
                " needs GH_TOKEN to push the branch and open pull requests.",
            ])
        return {CONFIG: header + yamlout.dump(self._setup()),
                CONTINUATION: header + yamlout.dump(self._config())}

    def _parameters(self) -> dict[str, Any]:
        # `force` is declared in both files: a parameter passed at trigger time that a
        # configuration does not declare fails the pipeline with "Unexpected
        # argument(s)" (docs/guides/modules/orchestrate/pages/pipeline-variables.adoc:119),
        # and the same name in both files is allowed (dynamic-config.adoc:58). It is
        # never passed to `continue`, which would conflict (dynamic-config.adoc:60-65).
        return {FORCE_PARAMETER: {"type": "string", "default": ""},
                RUN_PARAMETER: {"type": "string", "default": ""},
                REBUILD_PARAMETER: {"type": "string", "default": ""}}

    def _setup(self) -> dict[str, Any]:
        """The setup configuration: plan, then continue with only the images that run."""
        environment = {"KVC_PLAN_DIR": stages.PLAN_DIR,
                       "KVC_FORCE": f"<< pipeline.parameters.{FORCE_PARAMETER} >>"}
        # A forced run continues into kvc.yml even when it selects nothing (a typo):
        # the trigger passed `force`, which only kvc.yml declares.
        continues = '[ -s "$KVC_PLAN_DIR/run.txt" ] || [ -n "$KVC_FORCE" ]'
        if self.source.update is not None:  # the scheduled update runs with no image
            environment["KVC_TRIGGER"] = "<< pipeline.trigger_source >>"
            continues += ' || [ "$KVC_TRIGGER" = scheduled_pipeline ]'
        choose = (f"if {continues}; then\n  {WRITE_PARAMETERS}\n  cp {CONTINUATION} "
                  f"{CONTINUE_FILE}\nelse\n  echo '{{}}' > {PARAMETERS_FILE}\n"
                  f"  echo '{EMPTY_CONFIGURATION}' > {CONTINUE_FILE}\nfi")
        plan = {
            "executor": "amd64",
            "environment": environment,
            "steps": [
                "checkout",
                {"run": {"name": "Decide which images run",
                         "command": self.plan_command(choose)}},
                {"store_artifacts": {"path": stages.PLAN_DIR, "destination": "plan"}},
                {"continuation/continue": {"configuration_path": CONTINUE_FILE,
                                           "parameters": PARAMETERS_FILE}},
            ],
        }
        return {
            "version": 2.1,
            "setup": True,
            "orbs": {"continuation": CONTINUATION_ORB},
            "parameters": {FORCE_PARAMETER: self._parameters()[FORCE_PARAMETER]},
            "executors": self._executors(),
            "jobs": {PLAN_JOB: plan},
            "workflows": {PLAN_JOB: {"jobs": [self._plan_entry(environment)]}},
        }

    def _plan_entry(self, environment: dict[str, str]) -> Any:
        """The plan reads private images' labels with the test jobs' pull context, if any
        (walk.Emitter.plan_registry): never the push context."""
        registry = self.plan_registry()
        if registry is None or not self.settings.pull_context:
            return PLAN_JOB
        environment["KVC_PULL_REGISTRY"] = registry.host
        return {PLAN_JOB: {"context": list(self.settings.pull_context)}}

    def publishes_condition(self) -> str:
        """The publish job's branch filter in the shell (CIRCLE_BRANCH is a built-in
        variable, unset in tag pipelines)."""
        branch = shlex.quote(self.branch)
        return f'[ "${{CIRCLE_BRANCH:-}}" = {branch} ]'

    def _gate(self, slug: str) -> dict[str, Any]:
        return {"matches": {"pattern": f"^.*,{slug},.*$",
                            "value": f"<< pipeline.parameters.{RUN_PARAMETER} >>"}}

    def _config(self) -> dict[str, Any]:
        pipeline = self.source.pipeline
        jobs = {job.id: self._job(job) for job in pipeline.jobs}
        workflows: dict[str, Any] = {}
        for target in pipeline.targets:
            when = self._gate(target.slug)
            if self.source.update is not None:
                when = {"and": [{"not": SCHEDULED}, when]}
            workflows[f"kvc-{target.slug}"] = {
                "when": when,
                "jobs": [self._workflow_entry(job) for job in pipeline.jobs
                         if job.image == target.image]}
        if self.source.update is not None:
            jobs[UPDATE_JOB] = self._update_job()
            workflows[UPDATE_JOB] = {
                "when": {"and": [SCHEDULED,
                                 {"equal": [UPDATE_JOB, "<< pipeline.schedule.name >>"]}]},
                "jobs": [{UPDATE_JOB: {"context": self._update_contexts()}}],
            }
        return {
            "version": 2.1,
            "parameters": self._parameters(),
            "executors": self._executors(),
            "jobs": jobs,
            "workflows": workflows,
        }

    def _update_job(self) -> dict[str, Any]:
        return {
            "executor": "amd64",
            "steps": ["checkout", {"run": {
                "name": "Pin upstream checksums, recompile, open or update the pull request",
                "command": update.script(self.source.spec_name, self.NAME)}}],
        }

    def _push_contexts(self) -> list[str]:
        context = self.settings.context
        return list(context if context is not None else DEFAULT_CONTEXT)

    def _update_contexts(self) -> list[str]:
        context = self.settings.update_context
        return list(context if context is not None else DEFAULT_UPDATE_CONTEXT)

    def _contexts(self, job: Job) -> list[str]:
        """Push credentials only where images are pushed; tests get the pull context."""
        if job.registry.access is RegistryAccess.PUSH or job.needs_identity_token:
            return self._push_contexts()
        if job.registry.access is RegistryAccess.PULL:
            return list(self.settings.pull_context or ())
        return []

    def _executors(self) -> dict[str, Any]:
        image = self.settings.machine_image or MACHINE_IMAGE
        return {arch: {"machine": {"image": image}, "resource_class": resource}
                for arch, resource in self.runners().items()}

    def _job(self, job: Job) -> dict[str, Any]:
        environment = self.env(job)
        if job.cache is not None and job.cache.skip_run_on_hit:
            environment[REBUILD] = f"<< pipeline.parameters.{REBUILD_PARAMETER} >>"
        return {"executor": job.runner, "environment": environment, "steps": self.steps(job)}

    def _workflow_entry(self, job: Job) -> Any:
        entry: dict[str, Any] = {}
        if job.needs:
            entry["requires"] = list(job.needs)
        contexts = self._contexts(job)
        if contexts:
            entry["context"] = contexts
        if job.default_branch_only:
            entry["filters"] = {"branches": {"only": [
                self.branch]}}
        return {job.id: entry} if entry else job.id

    # -- step renderers -----------------------------------------------------------------

    def checkout(self, job: Job) -> list[Step]:
        return ["checkout"]

    def fetch(self, job: Job, artifact: Artifact) -> list[Step]:
        # One workspace holds every handed-off file: attach it once.
        return [{"attach_workspace": {"at": "."}}] if artifact == job.consumes[0] else []

    def restore(self, job: Job, cache: Cache) -> list[Step]:
        return [{"restore_cache": {"keys": [cache.key]}}]

    def identity(self, job: Job) -> list[Step]:
        return [{"run": {"name": "Get a Sigstore identity token", "command": SIGSTORE_TOKEN}}]

    def run(self, job: Job, command: str) -> list[Step]:
        return [{"run": {"name": f"Run the {job.stage} stage",
                         "no_output_timeout": f"{no_output_minutes(job)}m",
                         "command": command}}]

    def save(self, job: Job, cache: Cache) -> list[Step]:
        return [{"save_cache": {"key": cache.key, "paths": [cache.path]}}]

    def keep(self, job: Job, artifact: Artifact) -> list[Step]:
        if artifact.handoff:
            return [{"persist_to_workspace": {"root": ".", "paths": [artifact.path]}}]
        step: dict[str, Any] = {"path": artifact.path, "destination": artifact.name}
        if artifact.keep_on_failure:
            step["when"] = "always"  # the default, on_success, loses the logs of a failure
        return [{"store_artifacts": step}]


NAME: Final = CircleCI.NAME
emit = CircleCI.emit


# CircleCI ends a job at its plan's maximum runtime: 1 hour on the Free plan
# (circleci/circleci-docs@9734a14:docs/reference/modules/ROOT/pages/
# configuration-reference.adoc:303-307). A test stage may use its bring-up
# budget and all of test.timeout before it gives up and collects its logs.
FREE_PLAN_MINUTES: Final = 60


def runtime_warnings(resolved: Resolved) -> list[str]:
    """One warning per test.timeout whose test job can outlast the Free plan's hour."""
    lines: dict[str, None] = {}
    for build in resolved.builds:
        budget = build.test.timeout_minutes + TEST_UP_MINUTES
        if not build.test.enabled or budget <= FREE_PLAN_MINUTES:
            continue
        origin = build.origins.get("test.timeout")
        where = str(origin.pos) if origin is not None and origin.pos is not None else "kvc"
        lines[f"{where}: warning: a CircleCI test job may take {budget}m (the cluster's "
              f"{TEST_UP_MINUTES}m bring-up budget plus test.timeout "
              f"{build.test.timeout_minutes}m), longer than the Free plan's "
              f"{FREE_PLAN_MINUTES}-minute job limit, which would end it without its logs: "
              "lower test.timeout, or run on a paid plan (docs/backends/circleci.md) "
              "[job-runtime]"] = None
    return list(lines)
