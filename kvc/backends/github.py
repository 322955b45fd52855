"""GitHub Actions: one workflow, one job per IR job, artifacts between them.

Per-image jobs are separate jobs, not a matrix: ``needs:`` cannot wait for a
single matrix leg, and a matrix would make every image wait for the slowest.
The skeleton of every job comes from kvc/backends/walk.py; this module holds
GitHub's tables and its spelling of each step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kvc.backends import update, yamlout
from kvc.backends.actions import ACTIONS
from kvc.backends.base import Files
from kvc.backends.walk import Capabilities, Emitter, Step
from kvc.ir import Artifact, Cache, Job, RegistryAccess, Runtime
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
# does: prefer a GitHub App token, then a PAT secret, then GITHUB_TOKEN (docs/backends/github.md).
UPDATE_APP_ID: Final = "KVC_UPDATE_APP_CLIENT_ID"
UPDATE_APP_KEY: Final = "KVC_UPDATE_APP_PRIVATE_KEY"
UPDATE_PAT: Final = "KVC_UPDATE_TOKEN"
UPDATE_TOKEN: Final = (f"${{{{ steps.app.outputs.token || secrets.{UPDATE_PAT} "
                       "|| github.token }}")


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
}
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

    RUNNER_SETTING = "runs_on"
    SETTINGS = GitHubBackend
    settings: GitHubBackend


    def files(self) -> Files:
        name = self.settings.workflow or DEFAULT_WORKFLOW
        header = self.header()
        files = {f".github/workflows/{name}.yml": header + yamlout.dump(self._workflow(name))}
        if self.source.update is not None:
            files[f".github/workflows/{name}-update.yml"] = header + yamlout.dump(
                self._update_workflow(name))
        return files

    def _workflow(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "on": {
                "push": {"branches": [self.default_branch(self.settings.default_branch)]},
                "pull_request": {},
                "workflow_dispatch": {},
            },
            "permissions": {"contents": "read"},
            "concurrency": CONCURRENCY,
            "jobs": {job.id: self._job(job) for job in self.source.pipeline.jobs},
        }

    def _job(self, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {"name": _title(job)}
        if job.needs:
            out["needs"] = list(job.needs)
        if job.default_branch_only:
            out["if"] = PUBLISH_IF.format(branch=self.default_branch(self.settings.default_branch))
            if self.settings.environment:
                out["environment"] = self.settings.environment
        permissions = _permissions(job)
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
        return [_uses("cache", {"path": cache.path, "key": cache.key},
                      id="cache", name="Restore the build output for this fingerprint")]

    def run(self, job: Job, command: str) -> list[Step]:
        step: dict[str, Any] = {"name": f"Run the {job.stage} stage"}
        if job.cache is not None and job.cache.skip_run_on_hit:
            step["if"] = "steps.cache.outputs.cache-hit != 'true'"
        credentials = _credentials(job)
        if credentials:
            step["env"] = credentials
        step["run"] = command
        return [step]

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
            }, name="Get a GitHub App token, so the pull request runs CI", id="app",
                  **{"if": f"vars.{UPDATE_APP_ID} != ''"}),
            _uses("create-pull-request", {
                "token": UPDATE_TOKEN,
                "branch": update.BRANCH, "title": update.TITLE,
                "commit-message": update.TITLE, "body": update.body(self.source.spec_name),
                "delete-branch": True,
            }, name="Open or update the pull request"),
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
                "permissions": {"contents": "write", "pull-requests": "write"},
                "timeout-minutes": 20,
                "steps": steps,
            }},
        }


def _title(job: Job) -> str:
    return f"{job.stage} {job.image}" + (f" {job.arch}" if job.arch else "")


def _permissions(job: Job) -> dict[str, str]:
    """Only what the job uses, on top of the workflow's ``contents: read``."""
    permissions: dict[str, str] = {}
    if job.registry.host == GHCR and job.registry.access in GHCR_PERMISSION:
        permissions["packages"] = GHCR_PERMISSION[job.registry.access]
    if job.needs_identity_token:
        permissions["id-token"] = "write"
    return {"contents": "read", **permissions} if permissions else {}


def _credentials(job: Job) -> dict[str, str]:
    """Registry credentials for the run step only, never for the whole job."""
    names = job.registry.credentials
    if not names:
        return {}
    if job.registry.host == GHCR:
        user, password = names
        return {user: GHCR_USER, password: GHCR_PASSWORD}
    return {name: f"${{{{ secrets.{name} }}}}" for name in names}


NAME: Final = GitHub.NAME
emit = GitHub.emit
