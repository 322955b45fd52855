"""GitHub Actions: one workflow, one job per IR job, artifacts between them.

Per-image jobs are separate jobs, not a matrix: ``needs:`` cannot wait for a
single matrix leg, and a matrix would make every image wait for the slowest.
The skeleton of every job comes from kvc/backends/walk.py; this module holds
GitHub's tables and its spelling of each step.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, Final

from kvc import stages
from kvc.backends import update, yamlout
from kvc.backends.actions import ACTIONS
from kvc.backends.base import Files
from kvc.backends.walk import PLAN_JOB, Capabilities, Emitter, Limit, Step
from kvc.ir import Artifact, Cache, Job, Registry, RegistryAccess, Runtime, Stage
from kvc.spec.models import GitHubBackend

DEFAULT_WORKFLOW: Final = "kvc"
# Publishing happens only from the default branch (push or manual run), never a PR.
PUBLISH_IF: Final = "github.event_name != 'pull_request' && github.ref == 'refs/heads/{branch}'"
# Runs of one ref queue instead of racing to push the same tags; PR runs are superseded.
CONCURRENCY: Final = {
    "group": "${{ github.workflow }}-${{ github.ref }}",
    "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
}
# Artifacts outlive the run only as long as a re-run or a publish approval may need
# them. An environment's wait timer is at most 43,200 minutes (30 days: GitHub REST
# API, "Create or update an environment", wait_timer), and a job waiting for required
# reviewers fails after 30 days; so with an environment, keep them 31 days.
ARTIFACT_RETENTION_DAYS: Final = 3
ARTIFACT_RETENTION_WITH_APPROVAL: Final = 31
# ghcr.io accepts the run's own token: no user secret to create, no PAT to rotate.
GHCR: Final = "ghcr.io"
GHCR_USER: Final = "${{ github.actor }}"
# A pull request from a fork gets a read-only token: hand it no credentials, so the
# containerize stage exports an archive instead of failing to push.
GHCR_PASSWORD: Final = ("${{ !github.event.pull_request.head.repo.fork "
                        "&& secrets.GITHUB_TOKEN || '' }}")
GHCR_PERMISSION: Final[Mapping[RegistryAccess, str]] = {
    RegistryAccess.PUSH: "write", RegistryAccess.PULL: "read",
}
# The update pull request must trigger CI, which a PR opened with GITHUB_TOKEN never
# does, and its commit always changes .github/workflows/kvc.yml (the pins are literals
# there), which GitHub refuses from any token without the `workflows` permission
# (peter-evans/create-pull-request@v8.1.1:README.md:97), a permission GITHUB_TOKEN
# cannot be given. So: a GitHub App token, else a PAT secret; without either the job
# fails with what to configure (docs/backends/github.md).
UPDATE_APP_ID: Final = "KVC_UPDATE_APP_CLIENT_ID"
UPDATE_APP_KEY: Final = "KVC_UPDATE_APP_PRIVATE_KEY"
UPDATE_PAT: Final = "KVC_UPDATE_TOKEN"
UPDATE_TOKEN: Final = f"${{{{ steps.app.outputs.token || secrets.{UPDATE_PAT} }}}}"
# It also says (output `open`) whether create-pull-request may run: given an empty
# token that action throws, changes or not
# (peter-evans/create-pull-request@v8.1.1:src/main.ts:44-45), so a run with nothing
# to update and no token skips it and stays green.
NEEDS_UPDATE_TOKEN: Final = f"""\
if [ "$KVC_HAS_TOKEN" = true ]; then
  echo "open=true" >> "$GITHUB_OUTPUT"
elif [ -n "$(git status --porcelain)" ]; then
  echo "::error::kvc: the update changes .github/workflows, which needs a GitHub App \
(vars.{UPDATE_APP_ID} + secrets.{UPDATE_APP_KEY}) or a token in secrets.{UPDATE_PAT} \
with Workflows write; GITHUB_TOKEN cannot push it (docs/backends/github.md)"
  exit 1
fi
"""


# GitHub does not start runs of a workflow file over 500 KB ("Actions limits",
# https://docs.github.com/en/actions/reference/limits: "Workflow file size: 500 KB
# per file"). Read as 500,000 bytes, the stricter reading. kvc emits no matrix, so
# the 256-jobs-per-matrix limit on the same page never applies.
WORKFLOW_FILE_LIMIT: Final = Limit(
    "workflow file size", ".github/workflows/*", 500_000,
    "docs.github.com/en/actions/reference/limits: 500 KB per workflow file")
# Images are packed into workflows of at most this much, leaving room for the
# header, triggers and plan job of each.
SHARD_BUDGET: Final = 450_000
# The plan job's output: ",slug,slug," (commas on both ends, so a slug never
# matches part of another). contains() compares case-insensitively (GitHub Docs,
# "Evaluate expressions in workflows and actions": contains), so slugs differing
# only in case are refused. Only an image's first jobs carry the gate: "If a job
# fails or is skipped, all jobs that need it are skipped unless the jobs use a
# conditional expression that causes the job to continue" (GitHub Docs, "Workflow
# syntax", jobs.<job_id>.needs; quoted in github/docs#28762), and the publish
# job's `if:` has no status function, so it gets the implicit success().
PLAN_OUTPUT: Final = "images"
PLAN_GATE: Final = "contains(needs.plan.outputs.images, ',{slug},')"
# The images plan.sh lists in rebuild.txt (forced, refresh-due, half-published,
# unread registry): their builds skip the fingerprint cache, which would restore
# the disk the refresh is meant to replace.
# A skipped actions/cache step has no post step, so nothing is saved either (the key
# exists already, and caches are immutable).
REBUILD_OUTPUT: Final = "rebuild"
NO_CACHE_GATE: Final = "!contains(needs.plan.outputs.rebuild, ',{slug},')"
PLAN_WRITE_OUTPUT: Final = ('echo "images=,$(paste -sd, "$KVC_PLAN_DIR/run.txt")," '
                            '>> "$GITHUB_OUTPUT"\n'
                            'echo "rebuild=,$(paste -sd, "$KVC_PLAN_DIR/rebuild.txt")," '
                            '>> "$GITHUB_OUTPUT"')
FORCE_INPUT: Final = {
    "description": "Images to rebuild whatever the registry says: all, or comma-separated "
                   "flavor/release ids or slugs",
    "type": "string", "required": False, "default": "",
}


def _uses(key: str, with_: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    action = ACTIONS[key]
    step: dict[str, Any] = {**extra, "uses": yamlout.Commented(action.uses(), action.comment())}
    if with_:
        step["with"] = dict(with_)
    return step


# Default variables of every job (GitHub docs, "Variables reference"): GITHUB_RUN_ID
# stays the same when failed jobs are re-run (only GITHUB_RUN_ATTEMPT changes).
DEFAULT_VARIABLES: Final[Mapping[Runtime, str]] = {
    Runtime.RUN_ID: "$GITHUB_RUN_ID",
    Runtime.REVISION: "$GITHUB_SHA",
    Runtime.SOURCE: "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY",
    Runtime.SUMMARY_FILE: "$GITHUB_STEP_SUMMARY",
    Runtime.OUTPUT_FILE: "$GITHUB_OUTPUT",
    # Keyless signing in a workflow run: Fulcio accepts this issuer
    # (sigstore/fulcio@v1.8.8:config/identity/config.yaml:114-120) and puts
    # https://github.com/ + the token's job_workflow_ref in the certificate's SAN
    # (pkg/identity/github/principal.go:167,198). For a workflow that is not a reusable
    # one, as kvc's is, job_workflow_ref equals workflow_ref, which GitHub exposes as
    # GITHUB_WORKFLOW_REF ("owner/repo/.github/workflows/kvc.yml@refs/heads/main").
    Runtime.SIGN_ISSUER: "https://token.actions.githubusercontent.com",
    Runtime.SIGN_IDENTITY: "$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF",
}
# The run step's id when a later step reads its outputs (KVC_OUTPUT_FILE lines).
RUN_STEP_ID: Final = "stage"
# GitHub artifact attestations for the published digest (backends.github.attest_provenance):
# the action needs an OIDC token and the attestations API (actions/attest@v4.1.0
# README.md:64-76; attest-build-provenance v4 wraps it, its README.md:39-44), and
# pushes the attestation to the registry with the credentials publish.sh logged in
# with (src/attest.ts:44-58). No storage record: those need `artifact-metadata: write`,
# exist only for organisations, and would only be a warning without it (attest.ts:64-102).
PROVENANCE_PERMISSIONS: Final[Mapping[str, str]] = {"attestations": "write", "id-token": "write"}
RUNS_ON: Final[Mapping[str, str]] = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}
SETUP_ACTIONS: Final[Mapping[str, tuple[Step, ...]]] = {
    "buildx": (_uses("setup-buildx"),),
    "cosign": (_uses("cosign-installer"),),
}


class GitHub(Emitter, name="github", owned=(".github/workflows",)):
    RUNNERS = RUNS_ON
    RUNTIME = DEFAULT_VARIABLES
    TOOLS = SETUP_ACTIONS
    # GitHub evaluates ``${{ }}`` even in env values: spell a literal one as an expression.
    ESCAPES = (("${{", "${{ '${{' }}"),)
    CAPABILITIES = Capabilities(cache_hit_output=True)
    LIMITS = (WORKFLOW_FILE_LIMIT,)

    RUNNER_SETTING = "runs_on"
    SETTINGS = GitHubBackend
    settings: GitHubBackend

    def files(self) -> Files:
        name = self.settings.workflow or DEFAULT_WORKFLOW
        header = self.header()
        self._refuse_case_collisions()
        files = {f".github/workflows/{file}.yml": header + text
                 for file, text in self._workflows(name).items()}
        if self.source.update is not None:
            files[f".github/workflows/{name}-update.yml"] = header + yamlout.dump(
                self._update_workflow(name))
        return files

    def _workflows(self, name: str) -> dict[str, str]:
        """One workflow, or, past GitHub's file size limit, several of whole images each.

        Each part has its own plan job over its own images, so every part stays
        change-scoped and its values stay literal in its jobs' env. A job's text
        does not depend on the document around it (the last key, ``jobs``, is
        written at the same indent in every part), so parts reuse the whole
        dump's job blocks instead of emitting everything twice.
        """
        jobs = {job.id: self._job(job) for job in self.source.pipeline.jobs}
        whole = yamlout.dump(self._workflow(name, jobs, None))
        if len(whole.encode()) <= SHARD_BUDGET:
            return {name: whole}
        blocks = _job_blocks(whole, list(jobs))
        parts = self._pack(blocks)
        return {f"{name}-{i}": yamlout.dump(self._workflow(
                    f"{name} ({i}/{len(parts)})", {}, self._images_of(part)))
                + "".join(blocks[job_id] for job_id in part)
                for i, part in enumerate(parts, start=1)}

    def _pack(self, blocks: dict[str, str]) -> list[list[str]]:
        """Whole images, in spec order, into parts of at most SHARD_BUDGET bytes of jobs."""
        by_image: dict[str, list[str]] = {}
        for job in self.source.pipeline.jobs:
            by_image.setdefault(job.image, []).append(job.id)
        parts: list[list[str]] = [[]]
        size = 0
        for ids in by_image.values():
            cost = sum(len(blocks[job_id].encode()) for job_id in ids)
            if parts[-1] and size + cost > SHARD_BUDGET:
                parts.append([])
                size = 0
            parts[-1] += ids
            size += cost
        return parts

    def _images_of(self, job_ids: list[str]) -> list[str]:
        wanted = set(job_ids)
        images = dict.fromkeys(j.image for j in self.source.pipeline.jobs if j.id in wanted)
        return [self.slug(image) for image in images]

    def _workflow(self, name: str, jobs: dict[str, Any],
                  slugs: list[str] | None) -> dict[str, Any]:
        return {
            "name": name,
            "on": {
                "push": {"branches": [_filter_literal(self.branch)]},
                "pull_request": {},
                "workflow_dispatch": {"inputs": {"force": FORCE_INPUT}},
            },
            "permissions": {"contents": "read"},
            "concurrency": CONCURRENCY,
            "jobs": {PLAN_JOB: self._plan_job(slugs), **jobs},
        }

    def _plan_job(self, slugs: list[str] | None) -> dict[str, Any]:
        """Decides which images run; its summary is the table of decisions and reasons."""
        env = {"KVC_PLAN_DIR": stages.PLAN_DIR, "KVC_FORCE": "${{ inputs.force }}"}
        if slugs is not None:
            env["KVC_PLAN_IMAGES"] = ",".join(slugs)
        step: dict[str, Any] = {"name": "Decide which images run", "id": "plan",
                                "run": self.plan_command(PLAN_WRITE_OUTPUT)}
        job: dict[str, Any] = {
            "name": "plan",
            "runs-on": self.runners()["amd64"],
            "timeout-minutes": 15,
            "outputs": {name: f"${{{{ steps.plan.outputs.{name} }}}}"
                        for name in (PLAN_OUTPUT, REBUILD_OUTPUT)},
        }
        # The test jobs' pull access, for reading a private image's label: on ghcr.io
        # the run's token with packages: read (nothing more), elsewhere the pull secrets.
        registry = self.plan_registry(slugs)
        if registry is not None:
            step["env"] = {**_credentials(registry), "KVC_PULL_REGISTRY": registry.host}
            permissions = _permissions(registry)
            if permissions:  # `permissions: {}` would take away contents: read too
                job["permissions"] = permissions
        return {**job, "env": env, "steps": [*self.checkout_plan(), step]}

    def publishes_condition(self) -> str:
        """PUBLISH_IF in the shell, from the default variables GITHUB_EVENT_NAME and
        GITHUB_REF (GitHub docs, "Variables reference")."""
        branch = shlex.quote(f"refs/heads/{self.branch}")
        return f'[ "$GITHUB_EVENT_NAME" != pull_request ] && [ "$GITHUB_REF" = {branch} ]'

    def checkout_plan(self) -> list[Step]:
        return [_uses("checkout", {"persist-credentials": False})]

    def _refuse_case_collisions(self) -> None:
        seen: dict[str, str] = {}
        for target in self.source.pipeline.targets:
            other = seen.setdefault(target.slug.lower(), target.image)
            if other != target.image:
                self.unsupported(None, f"{other} and {target.image} differ only in letter case; "
                                 "GitHub's plan gate (contains) cannot tell them apart")

    def _job(self, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {"name": _title(job)}
        if self.gated(job):
            out["needs"] = [PLAN_JOB]
            out["if"] = PLAN_GATE.format(slug=self.slug(job.image))
        if job.needs:
            out["needs"] = list(job.needs)
        if job.default_branch_only:
            # A single quote inside an expression string is written twice (GitHub docs,
            # "Evaluate expressions in workflows and actions": Literals).
            out["if"] = PUBLISH_IF.format(branch=self.branch.replace("'", "''"))
            if self.settings.environment:
                out["environment"] = self.settings.environment
        permissions = _permissions(job, provenance=self._attests_provenance(job))
        if permissions:
            out["permissions"] = permissions
        out["runs-on"] = self.runners()[job.runner]
        out["timeout-minutes"] = job.timeout_minutes
        out["env"] = self.env(job)
        out["steps"] = self.steps(job)
        return out

    # -- step renderers -----------------------------------------------------------------

    def checkout(self, job: Job) -> list[Step]:
        return [_uses("checkout", {"persist-credentials": False})]

    def fetch(self, job: Job, artifact: Artifact) -> list[Step]:
        return [_uses("download-artifact", {"name": artifact.name, "path": artifact.path},
                      name=f"Fetch {artifact.name}")]

    def restore(self, job: Job, cache: Cache) -> list[Step]:
        # A gated job needs the plan, whose rebuild list it reads.
        gate = {"if": NO_CACHE_GATE.format(slug=self.slug(job.image))} if self.gated(job) else {}
        return [_uses("cache", {"path": cache.path, "key": cache.key}, id="cache",
                      name="Restore the build output for this fingerprint", **gate)]

    def run(self, job: Job, command: str) -> list[Step]:
        step: dict[str, Any] = {"name": f"Run the {job.stage} stage"}
        provenance = self._attests_provenance(job)
        if provenance:
            step["id"] = RUN_STEP_ID
        if job.cache is not None and job.cache.skip_run_on_hit:
            step["if"] = "steps.cache.outputs.cache-hit != 'true'"
        credentials = _credentials(job)
        if credentials:
            step["env"] = credentials
        step["run"] = command
        return [step, *([self._provenance(job)] if provenance else [])]

    def _attests_provenance(self, job: Job) -> bool:
        return bool(self.settings.attest_provenance) and job.stage is Stage.PUBLISH

    def _provenance(self, job: Job) -> Step:
        """Attest the digest publish promoted (its ``digest=`` output line)."""
        return _uses("attest-build-provenance", {
            "subject-name": _subject_name(self._repository(job), job.registry.host),
            "subject-digest": f"${{{{ steps.{RUN_STEP_ID}.outputs.digest }}}}",
            "push-to-registry": True,
            "create-storage-record": False,
        }, name="Record GitHub build provenance for the published digest")

    def _repository(self, job: Job) -> str:
        for target in self.source.pipeline.targets:
            if target.image == job.image:
                return target.repository
        raise KeyError(job.image)  # every publish job has its target (compiler/graph.py)

    def keep(self, job: Job, artifact: Artifact) -> list[Step]:
        with_: dict[str, Any] = {
            "name": artifact.name,
            "path": artifact.path,
            "if-no-files-found": "error" if artifact.handoff else "warn",
            "retention-days": self._retention_days(),
            "compression-level": 0,
            # "Re-run failed jobs" keeps the run id, so the re-run uploads under the same
            # name: replace the first attempt's artifact instead of failing with a 409
            # (actions/upload-artifact@v7.0.0:action.yml:37-42, README.md:421-446).
            "overwrite": True,
        }
        extra: dict[str, Any] = {"name": f"Keep {artifact.name}"}
        if artifact.keep_on_failure:
            extra["if"] = "always()"
        return [_uses("upload-artifact", with_, **extra)]

    def _retention_days(self) -> int:
        if self.settings.artifact_retention_days is not None:
            return self.settings.artifact_retention_days
        return ARTIFACT_RETENTION_WITH_APPROVAL if self.settings.environment \
            else ARTIFACT_RETENTION_DAYS

    # -- the scheduled update workflow ------------------------------------------------------

    def _update_workflow(self, name: str) -> dict[str, Any]:
        assert self.source.update is not None
        install, lock, compile_ = update.commands(self.source.spec_name, self.NAME)
        steps = [
            _uses("checkout", {"persist-credentials": False}),
            _uses("setup-python", {"python-version": "3.11"}),
            {"name": "Install kvc", "run": install},
            # A failed lookup keeps its old pin; the others still reach the pull request.
            {"name": "Pin upstream checksums", "id": "lock", "continue-on-error": True,
             "run": lock},
            {"name": "Recompile", "run": compile_},
            _uses("create-github-app-token", {
                "client-id": f"${{{{ vars.{UPDATE_APP_ID} }}}}",
                "private-key": f"${{{{ secrets.{UPDATE_APP_KEY} }}}}",
                "permission-contents": "write", "permission-pull-requests": "write",
                # actions/create-github-app-token@v3.1.1:action.yml:140
                "permission-workflows": "write",
            }, name="Get a GitHub App token, so the pull request runs CI", id="app",
                  **{"if": f"vars.{UPDATE_APP_ID} != ''"}),
            # Only whether there is a token reaches the shell, never the token.
            {"name": "Require an App or PAT token", "id": "token", "env": {"KVC_HAS_TOKEN": (
                f"${{{{ (steps.app.outputs.token || secrets.{UPDATE_PAT}) != '' }}}}")},
             "run": NEEDS_UPDATE_TOKEN},
            _uses("create-pull-request", {
                "token": UPDATE_TOKEN,
                "branch": update.BRANCH, "title": update.TITLE,
                "commit-message": update.TITLE, "body": update.body(self.source.spec_name),
                "delete-branch": True,
            }, name="Open or update the pull request",
                  **{"if": "steps.token.outputs.open == 'true'"}),
            {"name": "Fail when a checksum could not be pinned",
             "if": "steps.lock.outcome == 'failure'",
             "run": "echo 'kvc lock reported failures; see the Pin step' >&2; exit 1"},
        ]
        return {
            "name": f"{name}-update",
            "on": {"schedule": [{"cron": self.source.update.schedule}], "workflow_dispatch": {}},
            "permissions": {"contents": "read"},
            "concurrency": {"group": f"{name}-update", "cancel-in-progress": False},
            "jobs": {"lock": {
                "name": "kvc lock and recompile",
                "runs-on": self.runners()["amd64"],
                # The App or PAT token pushes and opens the pull request, never GITHUB_TOKEN.
                "permissions": {"contents": "read"},
                "timeout-minutes": 20,
                "steps": steps,
            }},
        }


def _job_blocks(text: str, job_ids: list[str]) -> dict[str, str]:
    """Each job's lines in a dumped workflow (jobs are its last key, at indent 2)."""
    starts: list[int] = []
    pos = text.index("\njobs:\n")
    for job_id in job_ids:
        pos = text.index(f"\n  {job_id}:\n", pos) + 1
        starts.append(pos)
    ends = [*starts[1:], len(text)]
    return {job_id: text[a:b] for job_id, a, b in zip(job_ids, starts, ends, strict=True)}


def _title(job: Job) -> str:
    return f"{job.stage} {job.image}" + (f" {job.arch}" if job.arch else "")


def _permissions(job: Job | Registry, *, provenance: bool = False) -> dict[str, str]:
    """Only what the job uses, on top of the workflow's ``contents: read``."""
    permissions: dict[str, str] = {}
    registry = job if isinstance(job, Registry) else job.registry
    if registry.host == GHCR and registry.access in GHCR_PERMISSION:
        permissions["packages"] = GHCR_PERMISSION[registry.access]
    if isinstance(job, Job) and job.needs_identity_token:
        permissions["id-token"] = "write"
    if provenance:
        permissions.update(PROVENANCE_PERMISSIONS)
    return {"contents": "read", **permissions} if permissions else {}


def _filter_literal(branch: str) -> str:
    """The branch as a filter pattern matching only itself. Of the filter's special
    characters (GitHub docs, "Workflow syntax": Filter pattern cheat sheet: * ** ? + []
    and a leading !, each escaped with a backslash), a branch name can hold only '+' and
    a leading '!' (git refuses the others, structure._is_branch_name)."""
    escaped = branch.replace("+", "\\+")
    return "\\" + escaped if escaped.startswith("!") else escaped


def _subject_name(repository: str, host: str) -> str:
    """The fully-qualified image name push-to-registry needs, Docker Hub as docker.io
    (actions/attest@v4.1.0 README.md:317-344)."""
    return repository if repository.startswith(f"{host}/") else f"{host}/{repository}"


def _credentials(job: Job | Registry) -> dict[str, str]:
    """Registry credentials for the run step only, never for the whole job."""
    registry = job if isinstance(job, Registry) else job.registry
    names = registry.credentials
    if not names:
        return {}
    if registry.host == GHCR:
        user, password = names
        return {user: GHCR_USER, password: GHCR_PASSWORD}
    return {name: f"${{{{ secrets.{name} }}}}" for name in names}


NAME: Final = GitHub.NAME
emit = GitHub.emit
