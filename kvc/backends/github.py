"""GitHub Actions: one workflow, one job per IR job, artifacts between them.

Per-image jobs are separate jobs, not a matrix: ``needs:`` cannot wait for a
single matrix leg, and a matrix would make every image wait for the slowest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kvc.backends import update, yamlout
from kvc.backends.actions import ACTIONS
from kvc.backends.base import EmitInput, Files, comment_header
from kvc.ir import Artifact, Job, Pipeline, Stage
from kvc.spec.models import GitHubBackend

NAME: Final = "github"
OWNED_DIRS: Final = (".github/workflows",)

RUNS_ON: Final[Mapping[str, str]] = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}
DEFAULT_WORKFLOW: Final = "kvc"
DEFAULT_BRANCH: Final = "main"
# Publishing happens only from the default branch (push or manual run), never a PR.
PUBLISH_IF: Final = "github.event_name != 'pull_request' && github.ref == 'refs/heads/{branch}'"
# Runs of one ref queue instead of racing to push the same tags; PR runs are superseded.
CONCURRENCY: Final = {
    "group": "${{ github.workflow }}-${{ github.ref }}",
    "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
}
# Tools a job declares in the IR -> setup steps on a hosted runner.
TOOL_STEPS: Final[Mapping[str, tuple[str, ...]]] = {
    "buildx": ("setup-buildx",),
    "cosign": ("cosign-installer",),
    "kind": (),
    "libguestfs": (),
}
ARTIFACT_RETENTION_DAYS: Final = 3


def emit(source: EmitInput) -> Files:
    settings = (source.backends.github if source.backends else None) or GitHubBackend()
    name = settings.workflow or DEFAULT_WORKFLOW
    header = comment_header(source.header_lines(NAME))
    workflow = _workflow(source.pipeline, settings, name)
    files = {f".github/workflows/{name}.yml": header + yamlout.dump(workflow)}
    if source.update is not None:
        files[f".github/workflows/{name}-update.yml"] = header + yamlout.dump(
            _update_workflow(source, settings, name))
    return files


def _update_workflow(source: EmitInput, settings: GitHubBackend, name: str) -> dict[str, Any]:
    assert source.update is not None
    install, lock, compile_ = update.commands(source.spec_name, NAME)
    steps = [
        _uses("checkout", {"persist-credentials": False}),
        _uses("setup-python", {"python-version": "3.11"}),
        {"name": "Install kvc", "run": install},
        # A failed lookup keeps its old pin; the others still reach the pull request.
        {"name": "Pin upstream checksums", "id": "lock", "continue-on-error": True, "run": lock},
        {"name": "Recompile", "run": compile_},
        _uses("create-pull-request", {
            "branch": update.BRANCH, "title": update.TITLE,
            "commit-message": update.TITLE, "body": update.body(source.spec_name),
            "delete-branch": True,
        }, name="Open or update the pull request"),
        {"name": "Fail when a checksum could not be pinned",
         "if": "steps.lock.outcome == 'failure'",
         "run": "echo 'kvc lock reported failures; see the Pin step' >&2; exit 1"},
    ]
    return {
        "name": f"{name}-update",
        "on": {"schedule": [{"cron": source.update.schedule}], "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": f"{name}-update", "cancel-in-progress": False},
        "jobs": {"lock": {
            "name": "kvc lock and recompile",
            "runs-on": (settings.runs_on or {}).get("amd64", RUNS_ON["amd64"]),
            "permissions": {"contents": "write", "pull-requests": "write"},
            "timeout-minutes": 20,
            "steps": steps,
        }},
    }


def _workflow(pipeline: Pipeline, settings: GitHubBackend, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "on": {
            "push": {"branches": [settings.default_branch or DEFAULT_BRANCH]},
            "pull_request": {},
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": CONCURRENCY,
        "jobs": {job.id: _job(job, settings) for job in pipeline.jobs},
    }


def _job(job: Job, settings: GitHubBackend) -> dict[str, Any]:
    runs_on: dict[str, str] = dict(RUNS_ON)
    runs_on.update((settings.runs_on or {}).items())
    out: dict[str, Any] = {"name": _title(job)}
    if job.needs:
        out["needs"] = list(job.needs)
    if job.default_branch_only:
        out["if"] = PUBLISH_IF.format(branch=settings.default_branch or DEFAULT_BRANCH)
        if settings.environment:
            out["environment"] = settings.environment
        out["permissions"] = _publish_permissions(job)
    out["runs-on"] = runs_on[job.runner]
    out["timeout-minutes"] = job.timeout_minutes
    out["env"] = {name: literal(value) for name, value in job.env}
    out["steps"] = _steps(job)
    return out


def literal(value: str) -> str:
    """GitHub evaluates ``${{ }}`` even in env values: spell a literal one as an expression."""
    return value.replace("${{", "${{ '${{' }}")


def _title(job: Job) -> str:
    return f"{job.stage} {job.image}" + (f" {job.arch}" if job.arch else "")


def _publish_permissions(job: Job) -> dict[str, str]:
    permissions = {"contents": "read", "packages": "write"}
    if job.needs_identity_token:
        permissions["id-token"] = "write"
    return permissions


def _uses(key: str, with_: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    action = ACTIONS[key]
    step: dict[str, Any] = {**extra, "uses": yamlout.Commented(action.uses(), action.comment())}
    if with_:
        step["with"] = dict(with_)
    return step


def _steps(job: Job) -> list[dict[str, Any]]:
    steps = [_uses("checkout", {"persist-credentials": False})]
    steps += [_download(artifact) for artifact in job.consumes]
    steps += [_uses(tool) for name in job.tools for tool in TOOL_STEPS[name]]
    if job.cache is not None:
        steps.append(_uses("cache", {"path": job.cache.path, "key": job.cache.key},
                           id="cache", name="Restore the build output for this fingerprint"))
    steps.append(_run(job))
    steps += [_upload(job, artifact) for artifact in job.produces]
    return steps


def _run(job: Job) -> dict[str, Any]:
    step: dict[str, Any] = {"name": f"Run the {job.stage} stage"}
    if job.cache is not None:
        step["if"] = "steps.cache.outputs.cache-hit != 'true'"
    if job.secrets:
        step["env"] = {name: f"${{{{ secrets.{name} }}}}" for name in job.secrets}
    step["run"] = f"bash {job.script}"
    return step


def _download(artifact: Artifact) -> dict[str, Any]:
    return _uses("download-artifact", {"name": artifact.name, "path": artifact.path},
                 name=f"Fetch {artifact.name}")


def _upload(job: Job, artifact: Artifact) -> dict[str, Any]:
    with_: dict[str, Any] = {
        "name": artifact.name,
        "path": artifact.path,
        "if-no-files-found": "error",
        "retention-days": ARTIFACT_RETENTION_DAYS,
        "compression-level": 0,
    }
    extra: dict[str, Any] = {"name": f"Keep {artifact.name}"}
    if job.stage is Stage.TEST:
        extra["if"] = "always()"
        with_["if-no-files-found"] = "warn"
    return _uses("upload-artifact", with_, **extra)

