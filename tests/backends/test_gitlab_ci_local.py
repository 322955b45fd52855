"""The emitted GitLab pipelines, run by an independent executor: gitlab-ci-local.

gitlab-ci-local (npm) reads .gitlab-ci.yml as GitLab does (it validates it
against GitLab's schema first) and runs jobs in `needs` order; with
``--shell-isolation`` each job runs in its own copy of the project and gets
only the artifacts of the jobs it names in `needs`, so a missing
``artifacts: true`` fails the next stage. There is no Docker daemon here, so
the test removes ``image``/``services``/``tags`` (runner choices) and runs the
shell executor; the stage scripts are replaced by a recording stub, and a fake
``docker`` answers the buildx check. It does not run trigger jobs, so the
parent's plan job runs first and the child file it wrote is run next, as
GitLab would.

Needs ``gitlab-ci-local`` on PATH or in ``$KVC_GITLAB_CI_LOCAL`` (4.52.2 runs on
Node 20; later releases need Node 22) and rsync.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from kvc.backends import gitlab
from tests.backends.conftest import EXAMPLES
from tests.gate import INSTALL_HINT, require, unavailable

# scripts/install-integration-deps.sh installs it here (npm, pinned version).
LOCAL_INSTALL = Path(__file__).resolve().parents[2] / ".tools/node_modules/.bin/gitlab-ci-local"
EXECUTOR = (os.environ.get("KVC_GITLAB_CI_LOCAL") or shutil.which("gitlab-ci-local")
            or (str(LOCAL_INSTALL) if LOCAL_INSTALL.exists() else None))
pytestmark = pytest.mark.integration

STUB = """\
#!/usr/bin/env bash
set -euo pipefail
stage="$(basename "$0" .sh)"
printf '%s %s %s\\n' "$stage" "$CI_JOB_NAME" "${KVC_RUN_ID:-}" >> "$KVC_REHEARSAL_LOG"
case "$stage" in
  plan)
    mkdir -p "$KVC_PLAN_DIR"
    printf '%s\\n' ${KVC_REHEARSAL_RUN:-} > "$KVC_PLAN_DIR/run.txt" ;;
  build)
    mkdir -p "$(dirname "$KVC_OUTPUT")"
    echo "disk $KVC_ARCH" > "$KVC_OUTPUT"
    for name in "${!KVC_@}"; do printf '%s=%s\\0' "$name" "${!name}"; done \\
      > "$KVC_REHEARSAL_ENV/$CI_JOB_NAME" ;;
  containerize)
    for arch in ${KVC_ARCHES//,/ }; do
      test -f "artifacts/build/$KVC_IMAGE_SLUG/$arch/disk.qcow2"
    done
    mkdir -p "$KVC_STAGED_DIR"
    echo "$KVC_IMAGE@sha256:$CI_JOB_NAME" > "$KVC_STAGED_DIR/ref" ;;
  test)
    test -f "$KVC_STAGED_DIR/ref"
    mkdir -p "$KVC_LOG_DIR" ;;
  publish)
    echo "promote $(cat "$KVC_STAGED_DIR/ref")" >> "$KVC_REHEARSAL_LOG" ;;
esac
"""
# Shell syntax that must reach the script as typed. gitlab-ci-local 4.52.2 rejects
# the `{value, expand: false}` form GitLab documents for values holding "$"
# ("invalid variables hash"), so "$" is covered by test_emitted_injection.py and
# the schema check instead of here.
HOSTILE = "echo `id` ; touch pwned && 'single' \"double\" * {braces}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if EXECUTOR is None:  # skipped, or failed under KVC_REQUIRE_INTEGRATION=1
        unavailable(f"gitlab-ci-local is not installed ({INSTALL_HINT})")
    require("rsync")
    root = tmp_path_factory.mktemp("gitlab-ci-local")
    multi = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    yaml = YAML()
    spec = yaml.load(multi.read_text(encoding="utf-8"))
    first = next(iter(spec["flavors"].values()))
    # '{{' and '}}' are literal braces in a spec value.
    literal = HOSTILE.replace("{", "{{").replace("}", "}}")
    first.setdefault("sysprep", {})["post_commands"] = [literal]
    with (root / "kvc.yaml").open("w", encoding="utf-8") as out:
        yaml.dump(spec, out)
    compiled = subprocess.run(
        [sys.executable, "-m", "kvc", "compile", "kvc.yaml", "--backend", "gitlab"],
        cwd=root, check=False, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    for script in ("plan", "build", "containerize", "test", "publish"):
        (root / f".kvc/stages/{script}.sh").write_text(STUB, encoding="utf-8")
    for path in [root / gitlab.CONFIG, *(root / gitlab.DIRECTORY).rglob("*.yml")]:
        document = yaml.load(path.read_text(encoding="utf-8"))
        for job in document.values():
            if isinstance(job, dict):
                for runner_choice in ("image", "services", "tags"):
                    job.pop(runner_choice, None)
        with path.open("w", encoding="utf-8") as out:
            yaml.dump(document, out)
    fake = root.parent / f"{root.name}-bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (fake / "docker").chmod(0o755)
    git = ["git", "-c", "user.name=kvc", "-c", "user.email=kvc@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "compiled"], cwd=root, check=True)
    return root


def pipeline(root: Path, *args: str, run: str = "") -> tuple[list[str], str]:
    """Run gitlab-ci-local; the stub's log lines and the executor's output."""
    log = root / "log.txt"
    log.unlink(missing_ok=True)
    envdir = root.parent / f"{root.name}-env"
    envdir.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{root.parent / (root.name + '-bin')}:{os.environ['PATH']}"}
    assert EXECUTOR is not None
    command = [EXECUTOR, "--shell-executor-no-image", "--shell-isolation",
               "--variable", f"KVC_REHEARSAL_LOG={log}",
               "--variable", f"KVC_REHEARSAL_ENV={envdir}",
               "--variable", f"KVC_REHEARSAL_RUN={run}", *args]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                            check=False, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return lines, output


def plan_then_child(root: Path, run: str, *child_args: str) -> list[str]:
    planned, _ = pipeline(root, gitlab.PLAN_JOB, run=run)
    assert [line.split()[:2] for line in planned] == [["plan", gitlab.PLAN_JOB]]
    lines, _ = pipeline(root, "--file", gitlab.CHILD, *child_args)
    return lines


def test_the_planned_images_run_in_dag_order_and_publish_what_they_staged(
        project: Path) -> None:
    lines = plan_then_child(project, "debian-12 fedora-44")
    jobs = [line.split()[1] for line in lines if not line.startswith("promote")]
    assert {job.rsplit("-", 1)[0] if job.startswith(("build", "test")) else job
            for job in jobs} == {
        f"{stage}-{slug}" for stage in ("build", "containerize", "test", "publish")
        for slug in ("debian-12", "fedora-44")}
    for slug in ("debian-12", "fedora-44"):
        order = [i for i, job in enumerate(jobs) if slug in job]
        stages = [jobs[i].split("-")[0] for i in order]
        assert stages == sorted(stages, key=["build", "containerize", "test", "publish"].index)
        assert any(line.endswith(f"@sha256:containerize-{slug}") for line in lines)
    run_ids = {line.split()[2] for line in lines if not line.startswith("promote")}
    assert len(run_ids) == 1 and run_ids != {""}


def test_values_reach_the_stage_as_typed(project: Path) -> None:
    plan_then_child(project, "ubuntu-24-04")  # the first flavor carries the value
    envdir = project.parent / f"{project.name}-env"
    recorded = dict(item.split("=", 1) for item in
                    (envdir / "build-ubuntu-24-04-amd64").read_text().split("\0") if item)
    assert recorded["KVC_POST_COMMAND_1"] == HOSTILE


def test_a_merge_request_pipeline_never_publishes(project: Path) -> None:
    lines = plan_then_child(project, "debian-12", "--variable",
                            f"{gitlab.PARENT_SOURCE}=merge_request_event")
    assert any(line.startswith("test ") for line in lines)
    assert not any(line.startswith(("publish", "promote")) for line in lines)


def test_an_empty_plan_runs_one_short_job(project: Path) -> None:
    lines, output = pipeline(project, gitlab.PLAN_JOB, run="")
    lines, output = pipeline(project, "--file", gitlab.CHILD)
    assert lines == []
    assert "kvc-nothing-to-run" in output and "every image is current" in output
