"""GitLab CI: a parent pipeline that plans, and a child pipeline of the changed images.

``.gitlab-ci.yml`` holds two jobs (and the scheduled update job): ``kvc-plan``
runs the plan stage and concatenates, from files generated here, the child
pipeline of the images that must run; ``kvc-images`` triggers it from that
artifact (``trigger: include: artifact``) and mirrors its status
(``strategy: depend``). Each image's jobs are one file under
``.gitlab/kvc/images/``, so the plan job's script only copies files: it never
writes YAML from data. The skeleton of every job comes from
kvc/backends/walk.py; GitLab spells most of it as job keywords (``needs`` with
artifacts, ``cache``, ``artifacts``, ``id_tokens``), so most step renderers
return nothing and the script is the tool setup and the run command.

GitLab references (docs.gitlab.com; sources in the gitlabhq/gitlabhq mirror):
- hosted runner tags, untagged jobs on the small amd64 runner, privileged
  Docker-in-Docker on ``saas-linux-*`` runners, the docker+machine executor:
  doc/ci/runners/hosted_runners/linux.md (ci/runners/hosted_runners/linux/).
- Docker-in-Docker with TLS: the service, ``DOCKER_HOST=tcp://docker:2376``,
  ``DOCKER_TLS_CERTDIR=/certs``, and ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``
  set explicitly when the job image does not run Docker's entrypoint:
  doc/ci/docker/docker_in_docker.md (ci/docker/docker_in_docker/).
- dynamic child pipelines: ci/pipelines/downstream_pipelines/ ("Dynamic child
  pipelines"); ``id_tokens``, ``variables:expand``, ``rules``, ``needs:artifacts``:
  ci/yaml/; CI/CD configuration size 2 MB and depth 100 by default:
  administration/instance_limits/ ("Maximum size and depth of CI/CD
  configuration YAML files").
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from kvc.backends import setup, update, yamlout
from kvc.backends.base import Files, comment_header
from kvc.backends.walk import REBUILD, Emitter, Step
from kvc.compiler.model import ImageBuild
from kvc.ir import Artifact, Cache, Job, Registry, RegistryAccess, Runtime, Stage, TestMode
from kvc.spec.models import GitLabBackend

if TYPE_CHECKING:
    from kvc.compiler.driver import Resolved

CONFIG: Final = ".gitlab-ci.yml"
DIRECTORY: Final = ".gitlab/kvc"
CHILD_HEAD: Final = f"{DIRECTORY}/pipeline.yml"  # stages; the first part of every child
NOTHING: Final = f"{DIRECTORY}/nothing.yml"  # the child when no image runs
IMAGES: Final = f"{DIRECTORY}/images"  # one file of jobs per image slug
PLAN_JOB: Final = "kvc-plan"
TRIGGER_JOB: Final = "kvc-images"
UPDATE_JOB: Final = "kvc-update"
PLAN_DIR: Final = "kvc-plan"
CHILD: Final = f"{PLAN_DIR}/pipeline.yml"
JOB_IMAGE: Final = "ubuntu:24.04"
ENVIRONMENT: Final = "kvc-publish"
# Untagged jobs run on the small Linux x86-64 hosted runner; arm64 needs its tag
# (doc/ci/runners/hosted_runners/linux.md, "Machine types available for Linux - Arm64").
TAGS: Final[Mapping[str, tuple[str, ...]]] = {"amd64": (), "arm64": ("saas-linux-small-arm64",)}
# GitLab.com's hosted runners run each job in a container on a VM with no
# documented KVM (doc/ci/runners/hosted_runners/linux.md: docker+machine executor,
# privileged only for Docker-in-Docker). The test stage would pick KubeVirt with
# emulation on amd64, on kind in the Docker-in-Docker service: on the small
# runner's 2 vCPUs that is the slowest path, so untagged arches (the hosted
# defaults) boot the image with qemu instead (kvc/stages/test.sh, select_mode).
TEST_MODE: Final = "KVC_TEST_MODE"
# A pinned Docker-in-Docker service (the docs: "Always pin a specific version").
DIND: Final = "docker:27.5.1-dind"
DIND_VARIABLES: Final[Mapping[str, str]] = {
    "DOCKER_HOST": "tcp://docker:2376",
    "DOCKER_TLS_CERTDIR": "/certs",
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_CERT_PATH": "/certs/client",
}
# GitLab's own registry: its job token pushes and pulls when no credentials were set.
GITLAB_REGISTRY: Final = "registry.gitlab.com"
GITLAB_REGISTRY_USER: Final = "$CI_REGISTRY_USER"
GITLAB_REGISTRY_PASSWORD: Final = "$CI_REGISTRY_PASSWORD"
ARTIFACTS_EXPIRE: Final = "3 days"
# Defaults of max_yaml_size_bytes / max_yaml_depth (administration/instance_limits/)
# and of "Maximum number of DAG dependencies that a job can have" ("One job can
# only need 50 others": gitlab-org/gitlab issue 419720).
MAX_YAML_BYTES: Final = 2 * 1024 * 1024
MAX_YAML_DEPTH: Final = 100
MAX_NEEDS: Final = 50
STAGES: Final = [str(stage) for stage in Stage]
PARENT_SOURCE: Final = "KVC_PARENT_SOURCE"
# A schedule runs the update job when it sets this variable (and nothing else runs).
SCHEDULE_VARIABLE: Final = "KVC_SCHEDULE"
UPDATE_SCHEDULE: Final = f'$CI_PIPELINE_SOURCE == "schedule" && ${SCHEDULE_VARIABLE} == "update"'
UPDATE_TOKEN: Final = "KVC_UPDATE_TOKEN"

# Predefined variables (ci/variables/predefined_variables/). A retried job keeps
# its pipeline, so CI_PIPELINE_ID names the staged files of the first attempt too.
PREDEFINED_VARIABLES: Final[Mapping[Runtime, str]] = {
    Runtime.RUN_ID: "$CI_PIPELINE_ID",
    Runtime.REVISION: "$CI_COMMIT_SHA",
    Runtime.SOURCE: "$CI_PROJECT_URL",
    # Fulcio's certificate identity of a GitLab job is "https://" + the token's
    # ci_config_ref_uri, the top-level pipeline definition (which, for a child
    # pipeline, is still the parent's file), and its issuer is the instance URL:
    # sigstore/fulcio@v1.8.8:config/identity/config.yaml:211-251 (gitlab-pipeline,
    # subject-alternative-name-template), pkg/identity/gitlabcom/principal.go:197-218.
    # That file is the project's CI/CD configuration file setting, not always
    # .gitlab-ci.yml: CI_CONFIG_PATH names it
    # (gitlabhq/gitlabhq@2f369bd95866:doc/ci/variables/predefined_variables.md:45).
    Runtime.SIGN_ISSUER: "$CI_SERVER_URL",
    Runtime.SIGN_IDENTITY: "$CI_PROJECT_URL//$CI_CONFIG_PATH@refs/heads/$CI_COMMIT_REF_NAME",
}
# The job image is a plain Ubuntu: docker and buildx come from its archive.
# It has no CA bundle (docker-library/repo-info@e31f5d5b827f:
# repos/ubuntu/local/24.04.md:174-194 lists no ca-certificates) and docker.io
# only recommends it, so it is named: imagetools and logins speak TLS.
INSTALL_BUILDX: Final = """\
if ! docker buildx version >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\
    ca-certificates docker.io docker-buildx
fi
"""
INSTALL_COSIGN: Final = """\
if ! command -v curl >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl ca-certificates
fi
""" + setup.install_cosign(sudo="")
# The docker CLI kind drives in the kubevirt test mode (the daemon is the
# Docker-in-Docker service, or the runner's own).
INSTALL_DOCKER_CLI: Final = """\
if ! command -v docker >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\
    ca-certificates docker.io
fi
"""
SETUP_SCRIPTS: Final[Mapping[str, tuple[Step, ...]]] = {
    "buildx": (INSTALL_BUILDX,),
    "cosign": (INSTALL_COSIGN,),
}
# The plan job's second half: the child pipeline is the head file plus the file of
# each image named in run.txt, copied; a name is checked before it becomes a path.
# Then the global variable KVC_REBUILD lists rebuild.txt's images (see plan.sh; e.g. due for a
# refresh): their build jobs rebuild even when `cache:` restored their output.
GENERATE_CHILD: Final = f"""\
cat {CHILD_HEAD} > {CHILD}
count=0
while IFS= read -r slug || [ -n "$slug" ]; do
  case "$slug" in
    '') continue ;;
    *[!A-Za-z0-9_-]*) echo "kvc: run.txt names no image: '$slug'" >&2; exit 1 ;;
  esac
  file="{IMAGES}/$slug.yml"
  if [ ! -f "$file" ]; then
    echo "kvc: run.txt names $slug, which has no $file; recompile" >&2
    exit 1
  fi
  cat "$file" >> {CHILD}
  count=$((count + 1))
done < "$KVC_PLAN_DIR/run.txt"
if [ "$count" -eq 0 ]; then
  cat {NOTHING} >> {CHILD}
fi
rebuild=","
if [ -f "$KVC_PLAN_DIR/rebuild.txt" ]; then
  while IFS= read -r slug || [ -n "$slug" ]; do
    case "$slug" in
      '' | *[!A-Za-z0-9_-]*) continue ;;
    esac
    rebuild="$rebuild$slug,"
  done < "$KVC_PLAN_DIR/rebuild.txt"
fi
printf 'variables:\n  {REBUILD}: "%s"\n' "$rebuild" >> {CHILD}
echo "kvc: the child pipeline runs $count image(s); rebuilt without the cache: $rebuild"
"""
# Parent pipelines: merge request pipelines, and branch pipelines when no merge
# request is open (ci/yaml/workflow/, "Switch between branch pipelines and merge
# request pipelines"), plus schedules and manual runs.
WORKFLOW_RULES: Final = [
    {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
    {"if": '$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS && $CI_PIPELINE_SOURCE == "push"',
     "when": "never"},
    {"if": "$CI_COMMIT_BRANCH"},
]


class GitLab(Emitter, name="gitlab", owned=(CONFIG, DIRECTORY)):
    RUNNERS = TAGS
    RUNTIME = PREDEFINED_VARIABLES
    TOOLS = SETUP_SCRIPTS
    # No text escape: a value holding "$" or "%" is written as {value, expand: false}.
    ESCAPES = ()

    RUNNER_SETTING = "tags"
    SETTINGS = GitLabBackend
    settings: GitLabBackend

    @classmethod
    def warnings(cls, resolved: Resolved) -> list[str]:
        settings = resolved.spec.backends.gitlab if resolved.spec.backends else None
        where = str(resolved.doc.pos(("backends", "gitlab")))
        return [*hosted_test_warnings(resolved.builds,
                                      settings.tags if settings is not None else None),
                artifact_size_warning(where)]

    def files(self) -> Files:
        header = self.header()
        pipeline = self.source.pipeline
        documents: dict[str, dict[str, Any]] = {
            CONFIG: self._parent(),
            CHILD_HEAD: {"stages": STAGES},
            NOTHING: {"kvc-nothing-to-run": self._nothing()},
        }
        for target in pipeline.targets:
            documents[f"{IMAGES}/{target.slug}.yml"] = {
                job.id: self._job(job) for job in pipeline.jobs if job.image == target.image}
        files = {path: header + (self._notes() if path == CONFIG else "") + yamlout.dump(doc)
                 for path, doc in documents.items()}
        self._check_limits(files, documents)  # reported by the walk after files()
        return files

    def _check_limits(self, files: Files, documents: Mapping[str, Any]) -> None:
        """Refuse what GitLab would reject: the largest child runs every image."""
        child = len(files[CHILD_HEAD].encode()) + sum(
            len(text.encode()) for path, text in files.items() if path.startswith(IMAGES))
        sizes = {CONFIG: len(files[CONFIG].encode()), f"{CHILD} (every image)": child}
        for path, size in sizes.items():
            if size > MAX_YAML_BYTES:
                self.unsupported(None, f"{path} would be {size} bytes; GitLab rejects CI/CD "
                                 f"configuration over {MAX_YAML_BYTES} bytes (max_yaml_size_bytes)")
        for path, document in documents.items():
            if _depth(document) > MAX_YAML_DEPTH:
                self.unsupported(None, f"{path} nests deeper than GitLab's limit of "
                                 f"{MAX_YAML_DEPTH} (max_yaml_depth)")
        for job in self.source.pipeline.jobs:
            if len(job.needs) + len(self._producers(job)) > MAX_NEEDS:
                self.unsupported(job.origin, f"{job.id} needs more than {MAX_NEEDS} jobs, "
                                 "GitLab's limit for one job's needs")

    def _notes(self) -> str:
        lines = [f"Set up: CI/CD variables KVC_REGISTRY_USER / KVC_REGISTRY_PASSWORD "
                 f"(protected, masked, environment {self._environment()}); "
                 "see docs/backends/gitlab.md."]
        if self.source.update is not None:
            lines.append(f"Checksum updates: a pipeline schedule with cron "
                         f"'{self.source.update.schedule}' and variable "
                         f"{SCHEDULE_VARIABLE}=update; {UPDATE_TOKEN} is a project access token.")
        return comment_header(lines)

    # -- the parent pipeline ----------------------------------------------------------------

    def _parent(self) -> dict[str, Any]:
        not_update = [{"if": UPDATE_SCHEDULE, "when": "never"}, {"when": "on_success"}]
        # The plan reads private images' labels with the test jobs' pull access
        # (walk.Emitter.plan_registry): KVC_PULL_* variables, or the job token on
        # GitLab's registry.
        registry = self.plan_registry()
        plan_variables = {"KVC_PLAN_DIR": PLAN_DIR}
        pull: list[Step] = []
        if registry is not None:
            plan_variables["KVC_PULL_REGISTRY"] = registry.host
            pull = _credentials(registry)
        jobs: dict[str, Any] = {
            PLAN_JOB: {
                "stage": "plan",
                **self._machine("amd64"),
                "rules": not_update,
                "variables": plan_variables,
                "script": _script([*pull, self.plan_command(GENERATE_CHILD.rstrip("\n"))]),
                "artifacts": {"paths": [f"{PLAN_DIR}/"], "expire_in": ARTIFACTS_EXPIRE,
                              "when": "always"},
            },
            TRIGGER_JOB: {
                "stage": "images",
                "rules": not_update,
                "needs": [{"job": PLAN_JOB, "artifacts": True}],
                # Trigger variables reach the child: publish rules read where the parent came from.
                "variables": {PARENT_SOURCE: "$CI_PIPELINE_SOURCE"},
                "trigger": {"include": [{"artifact": CHILD, "job": PLAN_JOB}],
                            "strategy": "depend"},
            },
        }
        stages = ["plan", "images"]
        if self.source.update is not None:
            jobs[UPDATE_JOB] = self._update_job()
            stages.append("update")
        return {"workflow": {"rules": WORKFLOW_RULES}, "stages": stages, **jobs}

    def _nothing(self) -> dict[str, Any]:
        """A child pipeline needs one job: this one says that nothing changed."""
        return {"stage": str(Stage.BUILD), **self._machine("amd64"),
                "script": ["echo 'kvc: every image is current; nothing to build'"]}

    def _machine(self, arch: str) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.settings.image or JOB_IMAGE}
        tags = list(self.runners()[arch])
        if tags:
            out["tags"] = tags
        return out

    # -- image jobs ---------------------------------------------------------------------------

    def _job(self, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": str(job.stage), **self._machine(job.runner)}
        out["needs"] = [{"job": need, "artifacts": need in self._producers(job)}
                        for need in job.needs]
        # Artifacts come only from jobs in `needs`: an ancestor that produced a file this
        # job reads is named too (it already ran: the ordering is the IR's).
        out["needs"] += [{"job": producer, "artifacts": True}
                         for producer in sorted(self._producers(job) - set(job.needs))]
        if job.default_branch_only:
            out["rules"] = self._publish_rules()
            # Two pipelines never push one image at once (ci/yaml/#resource_group).
            out["resource_group"] = job.id
        # Environment-scoped variables reach jobs that name the environment; `prepare`
        # is no deployment but has them (gitlab-org/gitlab issue 351510).
        if job.registry.access is RegistryAccess.PUSH:
            out["environment"] = {"name": self._environment(),
                                  "action": "start" if job.default_branch_only else "prepare"}
        if job.needs_identity_token:
            out["id_tokens"] = {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
        out["timeout"] = f"{job.timeout_minutes} minutes"
        # kind needs Docker; the qemu test mode needs none.
        mode = self._test_mode(job)
        kind = mode is not None and mode is not TestMode.QEMU
        docker = "buildx" in job.tools or kind
        if docker:
            out["services"] = [{"name": DIND, "alias": "docker"}]
        out["variables"] = {**(DIND_VARIABLES if docker else {}), **self._variables(job, mode)}
        if job.cache is not None:
            out["cache"] = {"key": job.cache.key, "paths": [job.cache.path]}
        out["script"] = _script([*([INSTALL_DOCKER_CLI] if kind else []), *self.steps(job)])
        artifacts = self._artifacts(job.produces)
        if artifacts:
            out["artifacts"] = artifacts
        return out

    def _producers(self, job: Job) -> set[str]:
        wanted = set(job.consumes)
        return {other.id for other in self.source.pipeline.jobs
                if wanted & set(other.produces)}

    def _test_mode(self, job: Job) -> TestMode | None:
        """The test job's mode: on hosted runners, auto is qemu (see TEST_MODE)."""
        if job.test_mode is TestMode.AUTO and self.hosted(job.runner):
            return TestMode.QEMU
        return job.test_mode

    def _variables(self, job: Job, mode: TestMode | None) -> dict[str, Any]:
        """Literal values: GitLab itself replaces ``$NAME``, ``${NAME}`` and ``%NAME%``
        in a variable's value, and the runner ``$`` references again, unless the
        variable is raw (``expand: false``, which both skip): gitlabhq/gitlabhq@0a412bceb98c:
        lib/gitlab/ci/variables/collection/item.rb:10-11,40-46 (what counts as a
        reference; a raw variable has none), @7e202c4fa8d1:
        app/presenters/ci/build_runner_presenter.rb:39-43 (every job's variables are
        expanded so before the runner gets them)."""
        env = dict(self.env(job))
        if mode is not job.test_mode:
            env[TEST_MODE] = str(mode)
        return {name: {"value": value, "expand": False} if "$" in value or "%" in value
                else value for name, value in env.items()}

    def hosted(self, arch: str) -> bool:
        """No tags set for ARCH: its jobs run on GitLab.com's hosted runners."""
        return arch not in self.runner_overrides()

    def _environment(self) -> str:
        return self.settings.environment or ENVIRONMENT

    def _publish_rules(self) -> list[dict[str, Any]]:
        branch = self.settings.default_branch  # validated: a git branch name without '"' or '$'
        target = f'"{branch}"' if branch is not None else "$CI_DEFAULT_BRANCH"
        return [
            {"if": f'${PARENT_SOURCE} == "merge_request_event" || $CI_MERGE_REQUEST_IID',
             "when": "never"},
            {"if": f"$CI_COMMIT_BRANCH == {target}"},
        ]

    def publishes_condition(self) -> str:
        """_publish_rules in the shell: no merge request, and the default branch."""
        branch = self.settings.default_branch
        target = shlex.quote(branch) if branch is not None else '"$CI_DEFAULT_BRANCH"'
        return (f'[ "${{{PARENT_SOURCE}:-}}" != merge_request_event ] && '
                f'[ -z "${{CI_MERGE_REQUEST_IID:-}}" ] && [ "${{CI_COMMIT_BRANCH:-}}" = {target} ]')

    @staticmethod
    def _artifacts(produced: tuple[Artifact, ...]) -> dict[str, Any]:
        if not produced:
            return {}
        out: dict[str, Any] = {"paths": [a.path for a in produced],
                               "expire_in": ARTIFACTS_EXPIRE}
        if any(a.keep_on_failure for a in produced):
            out["when"] = "always"  # the default, on_success, loses the logs of a failure
        return out

    # -- step renderers (script lines; the rest are job keywords) ------------------------------

    def checkout(self, job: Job) -> list[Step]:
        return []  # the runner clones the repository before the script

    def fetch(self, job: Job, artifact: Artifact) -> list[Step]:
        return []  # `needs: artifacts: true` downloads them

    def restore(self, job: Job, cache: Cache) -> list[Step]:
        return []  # `cache:` restores before the script and saves after it

    def identity(self, job: Job) -> list[Step]:
        return []  # `id_tokens: SIGSTORE_ID_TOKEN`; the identity is a runtime value

    def run(self, job: Job, command: str) -> list[Step]:
        return [*_credentials(job.registry), command]

    def keep(self, job: Job, artifact: Artifact) -> list[Step]:
        return []  # `artifacts:` uploads after the script

    # -- the scheduled update job -------------------------------------------------------------

    def _update_job(self) -> dict[str, Any]:
        return {
            "stage": "update",
            **self._machine("amd64"),
            "rules": [{"if": UPDATE_SCHEDULE}],
            "timeout": "20 minutes",
            "script": _script([INSTALL_UPDATE_TOOLS,
                               update_script(self.source.spec_name, self.NAME)]),
        }


def _script(steps: list[Step]) -> str:
    """One block of shell: the runner runs it in one bash with errexit, as a list's items.

    A single string keeps multi-line steps (if ... fi) whole and is written as
    a YAML literal block.
    """
    return "".join(str(step) if str(step).endswith("\n") else f"{step}\n" for step in steps)


def _depth(node: Any) -> int:
    if isinstance(node, Mapping):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list | tuple):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0


def _credentials(registry: Registry) -> list[Step]:
    """On GitLab's registry, the job's own token stands in for unset credentials."""
    names = registry.credentials
    if not names or registry.host != GITLAB_REGISTRY:
        return []
    user, password = names
    return [f'export {user}="${{{user}:-{GITLAB_REGISTRY_USER}}}"\n'
            f'export {password}="${{{password}:-{GITLAB_REGISTRY_PASSWORD}}}"\n']


INSTALL_UPDATE_TOOLS: Final = """\
if ! command -v git >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\
    git python3 python3-venv ca-certificates
fi
"""


def update_script(spec_name: str, backend: str) -> str:
    """Push the update branch with push options that open the merge request.

    Push options (topics/git/commit/, "Push options for merge requests") need no
    API client; the push goes over HTTPS with a project access token that a
    credential helper reads from the environment, never from argv or the URL.
    """
    title = shlex.quote(f"merge_request.title={update.TITLE}")
    body = shlex.quote(f"merge_request.description={update.body(spec_name)}")
    return update.commit_then(spec_name, backend, f"""\
  git -c credential.helper= \\
    -c credential.helper='!f() {{ echo username=kvc; echo "password=${UPDATE_TOKEN}"; }}; f' \\
    push --force \\
    -o merge_request.create -o "merge_request.target=$CI_DEFAULT_BRANCH" \\
    -o {title} -o {body} -o merge_request.remove_source_branch \\
    "$CI_SERVER_URL/$CI_PROJECT_PATH.git" "HEAD:refs/heads/{update.BRANCH}"
""")


def hosted_test_warnings(builds: Iterable[ImageBuild], tags: Mapping[Any, Any] | None,
                         ) -> list[str]:
    """`FILE:LINE:COL: warning:` per build that forces KubeVirt onto a hosted runner.

    TAGS is ``backends.gitlab.tags``; an arch without tags runs on GitLab.com's
    hosted runners, where KVM is not documented: KubeVirt runs emulated on
    kind in Docker-in-Docker (amd64), or not at all (arm64).
    """
    lines: dict[str, None] = {}
    for build in builds:
        if not build.test.enabled or build.test.mode != "kubevirt" or build.arch in (tags or {}):
            continue
        origin = build.origins.get("test.mode")
        where = str(origin.pos) if origin is not None and origin.pos is not None else "kvc"
        effect = ("KubeVirt runs with software emulation on kind in Docker-in-Docker, on 2 "
                  "vCPUs by default" if build.arch == "amd64" else
                  "the test fails: KubeVirt cannot emulate arm64")
        lines[f"{where}: warning: test.mode is kubevirt, but backends.gitlab.tags.{build.arch} "
              f"is not set, so the GitLab test jobs run on GitLab.com's hosted runners, which "
              f"document no KVM: {effect}; use test.mode auto (qemu there) or tag a runner "
              "with KVM (docs/backends/gitlab.md) [gitlab-hosted-kubevirt]"] = None
    return list(lines)


def artifact_size_warning(where: str) -> str:
    """The one `FILE:LINE:COL: warning:` about GitLab's artifact size limit.

    Every build uploads its disk as an artifact, larger than a self-managed
    instance's default "Maximum artifacts size" of 100 MB per job, which an
    administrator raises for the instance, a group or a project
    (gitlabhq/gitlabhq@6c522f75d42a:doc/administration/settings/continuous_integration.md:152-182);
    GitLab.com allows 1 GB (gitlabhq/gitlabhq@6e370d70120d:doc/user/gitlab_com/_index.md,
    "GitLab CI/CD": "Artifacts maximum size (compressed)"). kvc cannot see the setting.
    """
    return (f"{where}: warning: every GitLab build job uploads its disk image as an artifact, "
            "larger than a self-managed instance's default Maximum artifacts size of 100 MB: "
            "an administrator must raise it (Admin area > Settings > CI/CD > Continuous "
            "Integration and Deployment, or per group or project in Settings > CI/CD > General "
            "pipelines); GitLab.com allows 1 GB per job, and a merge request's containerize "
            "job uploads one archive holding every arch's disk (docs/backends/gitlab.md) "
            "[gitlab-artifact-size]")


NAME: Final = GitLab.NAME
emit = GitLab.emit
