"""CircleCI: config 2.1 with machine executors per arch and workspaces.

Each IR job becomes one explicitly named job (so ``requires`` can name exactly
the jobs of one image); the build steps, identical for every build job, are a
reusable command parameterised by cache key and path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kvc.backends import update, yamlout
from kvc.backends.base import EmitInput, Files, comment_header
from kvc.ir import Job, Stage
from kvc.spec.models import CircleCIBackend

NAME: Final = "circleci"
CONFIG: Final = ".circleci/config.yml"
OWNED_DIRS: Final = (".circleci",)

MACHINE_IMAGE: Final = "ubuntu-2404:current"
RESOURCE_CLASS: Final[Mapping[str, str]] = {"amd64": "medium", "arm64": "arm.medium"}
DEFAULT_CONTEXT: Final = ("kvc-publish",)
DEFAULT_BRANCH: Final = "main"
# Customization can be silent for long stretches (package updates under emulation).
NO_OUTPUT_TIMEOUT: Final[Mapping[Stage, str]] = {
    Stage.BUILD: "60m", Stage.CONTAINERIZE: "30m", Stage.TEST: "30m", Stage.PUBLISH: "20m",
}
# Machine images lack cosign: a pinned release, verified against its published sha256.
COSIGN_VERSION: Final = "v3.0.6"
COSIGN_SHA256: Final = "c956e5dfcac53d52bcf058360d579472f0c1d2d9b69f55209e256fe7783f4c74"
INSTALL_COSIGN: Final = f"""\
curl -fsSL --retry 3 -o /tmp/cosign \\
  https://github.com/sigstore/cosign/releases/download/{COSIGN_VERSION}/cosign-linux-amd64
echo "{COSIGN_SHA256}  /tmp/cosign" | sha256sum -c -
sudo install -m 0755 /tmp/cosign /usr/local/bin/cosign
"""
# Keyless signing: a CircleCI OIDC token with the audience Sigstore expects,
# handed to cosign through its SIGSTORE_ID_TOKEN variable.
SIGSTORE_TOKEN: Final = """\
token="$(circleci run oidc get --claims '{"aud": "sigstore"}')"
echo "export SIGSTORE_ID_TOKEN='$token'" >> "$BASH_ENV"
"""
# Tools a job declares in the IR -> setup steps (the machine image has docker + buildx).
TOOL_STEPS: Final[Mapping[str, tuple[dict[str, Any], ...]]] = {
    "cosign": ({"run": {"name": "Install cosign", "command": INSTALL_COSIGN}},),
    "buildx": (),
    "kind": (),
    "libguestfs": (),
}
BUILD_COMMAND: Final = "kvc-build"
UPDATE_JOB: Final = "kvc-update"
SCHEDULED: Final = {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}
# The cache holds the finished qcow2 for this fingerprint: restore it instead of rebuilding.
BUILD_SCRIPT: Final = """\
if [ -f "$KVC_OUTPUT" ]; then
  echo "kvc: $KVC_OUTPUT restored from cache (fingerprint $KVC_FINGERPRINT); not rebuilding"
else
  bash .kvc/stages/build.sh
fi
"""


def emit(source: EmitInput) -> Files:
    settings = (source.backends.circleci if source.backends else None) or CircleCIBackend()
    header = comment_header(source.header_lines(NAME))
    if source.update is not None:
        header += comment_header([
            f"Checksum updates: create a scheduled pipeline named '{UPDATE_JOB}' with cron "
            f"'{source.update.schedule}'",
            "(Project Settings > Triggers); its context needs GH_TOKEN to open pull requests.",
        ])
    return {CONFIG: header + yamlout.dump(_config(source, settings))}


def _config(source: EmitInput, settings: CircleCIBackend) -> dict[str, Any]:
    pipeline = source.pipeline
    jobs = {job.id: _job(job) for job in pipeline.jobs}
    workflows: dict[str, Any] = {"kvc": {"jobs": [_workflow_entry(job, settings)
                                                  for job in pipeline.jobs]}}
    if source.update is not None:
        jobs[UPDATE_JOB] = _update_job(source)
        workflows["kvc"] = {"when": {"not": SCHEDULED}, **workflows["kvc"]}
        workflows[UPDATE_JOB] = {
            "when": {"and": [SCHEDULED, {"equal": [UPDATE_JOB, "<< pipeline.schedule.name >>"]}]},
            "jobs": [{UPDATE_JOB: {"context": _contexts(settings)}}],
        }
    return {
        "version": 2.1,
        "executors": _executors(settings),
        "commands": {BUILD_COMMAND: _build_command()},
        "jobs": jobs,
        "workflows": workflows,
    }


def _update_job(source: EmitInput) -> dict[str, Any]:
    return {
        "executor": "amd64",
        "steps": ["checkout", {"run": {
            "name": "Pin upstream checksums, recompile, open or update the pull request",
            "command": update.script(source.spec_name, NAME)}}],
    }


def _contexts(settings: CircleCIBackend) -> list[str]:
    return list(settings.context if settings.context is not None else DEFAULT_CONTEXT)


def _executors(settings: CircleCIBackend) -> dict[str, Any]:
    classes: dict[str, str] = dict(RESOURCE_CLASS)
    classes.update((settings.resource_class or {}).items())
    image = settings.machine_image or MACHINE_IMAGE
    return {arch: {"machine": {"image": image}, "resource_class": resource}
            for arch, resource in classes.items()}


def _build_command() -> dict[str, Any]:
    return {
        "description": "Build one image build, or restore it from the cache by fingerprint",
        "parameters": {
            "cache-key": {"type": "string"},
            "path": {"type": "string"},
        },
        "steps": [
            "checkout",
            {"restore_cache": {"keys": ["<< parameters.cache-key >>"]}},
            {"run": {"name": "Run the build stage", "no_output_timeout":
                     NO_OUTPUT_TIMEOUT[Stage.BUILD], "command": BUILD_SCRIPT}},
            {"save_cache": {"key": "<< parameters.cache-key >>",
                            "paths": ["<< parameters.path >>"]}},
            {"persist_to_workspace": {"root": ".", "paths": ["<< parameters.path >>"]}},
        ],
    }


def _job(job: Job) -> dict[str, Any]:
    return {
        "executor": job.runner,
        "environment": {name: literal(value) for name, value in job.env},
        "steps": _steps(job),
    }


def literal(value: str) -> str:
    """CircleCI substitutes ``<< >>`` parameters anywhere in config; ``\\<<`` escapes it."""
    return value.replace("<<", "\\<<")


def _steps(job: Job) -> list[Any]:
    if job.stage is Stage.BUILD and job.cache is not None:
        return [{BUILD_COMMAND: {"cache-key": job.cache.key, "path": job.cache.path}}]
    steps: list[Any] = ["checkout"]
    if job.consumes:
        steps.append({"attach_workspace": {"at": "."}})
    steps += [step for tool in job.tools for step in TOOL_STEPS[tool]]
    if job.needs_identity_token:
        steps.append({"run": {"name": "Get a Sigstore identity token",
                              "command": SIGSTORE_TOKEN}})
    steps.append({"run": {"name": f"Run the {job.stage} stage",
                          "no_output_timeout": NO_OUTPUT_TIMEOUT[job.stage],
                          "command": f"bash {job.script}"}})
    for artifact in job.produces:
        if job.stage is Stage.TEST:
            steps.append({"store_artifacts": {"path": artifact.path,
                                              "destination": artifact.name}})
        else:
            steps.append({"persist_to_workspace": {"root": ".", "paths": [artifact.path]}})
    return steps


def _workflow_entry(job: Job, settings: CircleCIBackend) -> Any:
    entry: dict[str, Any] = {}
    if job.needs:
        entry["requires"] = list(job.needs)
    if job.secrets or job.needs_identity_token:
        entry["context"] = _contexts(settings)
    if job.default_branch_only:
        entry["filters"] = {"branches": {"only": [settings.default_branch or DEFAULT_BRANCH]}}
    return {job.id: entry} if entry else job.id
