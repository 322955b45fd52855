"""The CircleCI config: executors, workspaces, caches, contexts and branch filters.

Expected defaults are written out here (not read from kvc.backends.circleci).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.backends import circleci
from kvc.backends.base import EmitInput
from kvc.cli import main
from kvc.compiler.graph import build_pipeline
from kvc.ir import RegistryAccess, Stage
from kvc.spec.models import Backends, CircleCIBackend
from tests.backends.ci_syntax import circleci_env
from tests.backends.conftest import (
    EXAMPLES,
    FIXTURE_SPECS,
    Emitted,
    cases,
    emitted,
    image_workflow_jobs,
    parse_yaml,
)
from tests.conftest import resolve_text

CIRCLECI = cases("circleci")
DEFAULT_RESOURCE_CLASS = {"amd64": "medium", "arm64": "arm.medium"}
DEFAULT_IMAGE = "ubuntu-2404:current"
OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")
MINIMAL = next(s for s in EXAMPLES if s.parent.name == "minimal")
SECRET_NAMES = {"KVC_REGISTRY_USER", "KVC_REGISTRY_PASSWORD"}


def settings(out: Emitted) -> CircleCIBackend:
    backends = out.resolved.spec.backends
    return (backends.circleci if backends else None) or CircleCIBackend()


def workflow_entries(out: Emitted) -> dict[str, dict[str, Any]]:
    """The ``kvc`` workflow's entries by job name, bare names as empty settings."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in image_workflow_jobs(out.document()):
        if isinstance(entry, str):
            entries[entry] = {}
        else:
            ((name, entry_settings),) = entry.items()
            entries[name] = entry_settings
    return entries


def expanded_steps(document: dict[str, Any], job_id: str) -> list[Any]:
    """A job's steps with reusable commands inlined and their parameters substituted."""
    steps: list[Any] = []
    for step in document["jobs"][job_id]["steps"]:
        name = step if isinstance(step, str) else next(iter(step))
        command = document.get("commands", {}).get(name)
        if command is None:
            steps.append(step)
            continue
        arguments = {} if isinstance(step, str) else step[name]
        assert set(arguments) == set(command.get("parameters", {})), job_id
        steps += substitute(command["steps"], arguments)
    return steps


def substitute(value: Any, arguments: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, arguments) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, arguments) for v in value]
    if isinstance(value, str):
        for name, argument in arguments.items():
            value = value.replace(f"<< parameters.{name} >>", argument)
        assert "<< parameters." not in value, value
    return value


def step_args(steps: list[Any], kind: str) -> list[Any]:
    return [s[kind] for s in steps if isinstance(s, dict) and kind in s]


# -- executors ----------------------------------------------------------------


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_each_job_runs_on_the_executor_of_its_arch(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    document = out.document()
    classes = dict(DEFAULT_RESOURCE_CLASS)
    classes.update((settings(out).resource_class or {}).items())
    image = settings(out).machine_image or DEFAULT_IMAGE
    for job in out.pipeline.jobs:
        executor = document["executors"][document["jobs"][job.id]["executor"]]
        assert executor == {"machine": {"image": image},
                            "resource_class": classes[job.runner]}, job.id


def test_arm64_jobs_get_the_arm_resource_class_by_default() -> None:
    out = emitted(MINIMAL, "circleci")
    document = out.document()
    arm = [j for j in out.pipeline.jobs if j.arch == "arm64"]
    assert {j.stage for j in arm} == {Stage.BUILD, Stage.TEST}
    for job in arm:
        executor = document["executors"][document["jobs"][job.id]["executor"]]
        assert executor["resource_class"] == "arm.medium", job.id
        assert executor["machine"]["image"] == "ubuntu-2404:current", job.id


def test_backend_overrides_are_honoured() -> None:
    out = emitted(OVERRIDES, "circleci")
    document = out.document()
    assert document["executors"]["amd64"] == {
        "machine": {"image": "ubuntu-2204:2024.05.1"}, "resource_class": "large"}
    assert document["executors"]["arm64"] == {
        "machine": {"image": "ubuntu-2204:2024.05.1"}, "resource_class": "arm.xlarge"}
    for job in out.pipeline.jobs:
        entry = workflow_entries(out)[job.id]
        if job.stage is Stage.PUBLISH:
            assert entry["context"] == ["registry-creds", "signing"]
            assert entry["filters"] == {"branches": {"only": ["release"]}}
    # a build that runs no guest code runs on amd64 whatever its arch
    arm_coreos = document["jobs"]["build-fedora-coreos-41-20241215-3-0-arm64"]
    assert arm_coreos["executor"] == "amd64"
    assert arm_coreos["environment"]["KVC_ARCH"] == "arm64"


# -- env, cache, workspaces ---------------------------------------------------


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_job_environment_is_the_irs_without_secrets(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        # a copy: document() is parsed once per session and shared (the pop below
        # must not reach the next test, or this test run twice, that reads it)
        environment = dict(out.document()["jobs"][job.id]["environment"])
        expected = {**job.env_dict(), **({"KVC_FINGERPRINT": job.fingerprint}
                                          if job.fingerprint else {})}
        if job.cache is not None:  # the plan's rebuild list, a pipeline parameter
            rebuild = environment.pop("KVC_REBUILD")
            assert rebuild == "<< pipeline.parameters.kvc-rebuild >>", job.id
        assert circleci_env(environment) == expected, job.id  # \<< read as CircleCI does
        assert not SECRET_NAMES & set(environment), job.id
    assert not any(name in out.text for name in SECRET_NAMES), "secrets come from contexts"


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_each_job_runs_its_stage_script(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        runs = step_args(expanded_steps(out.document(), job.id), "run")
        stage_runs = [r for r in runs if f"bash {job.script}" in r["command"]]
        assert len(stage_runs) == 1, job.id
        setup = [r["name"] for r in runs if r not in stage_runs]
        signing = ["Install cosign", "Get a Sigstore identity token"]
        assert setup == (signing if job.needs_identity_token else []), job.id
        if job.needs_identity_token:
            assert "sha256sum -c" in runs[0]["command"]


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_builds_are_cached_by_fingerprint(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        steps = expanded_steps(out.document(), job.id)
        restores, saves = step_args(steps, "restore_cache"), step_args(steps, "save_cache")
        if job.cache is None:
            assert not restores and not saves, job.id
            continue
        assert restores == [{"keys": [job.cache.key]}], job.id
        assert saves == [{"key": job.cache.key, "paths": [job.cache.path]}], job.id
        assert job.fingerprint and job.fingerprint in job.cache.key
        (run,) = step_args(steps, "run")
        # a restored output is not rebuilt: the command checks for the IR's output first
        assert run["command"].index(f"[ -f {job.cache.output} ]") < run["command"].index(
            f"bash {job.script}")
        assert job.cache.output.startswith(job.cache.path + "/")
        assert job.cache.output == job.env_dict()["KVC_OUTPUT"]


def persisted(out: Emitted) -> dict[str, list[str]]:
    """Workspace path -> the jobs persisting it."""
    found: dict[str, list[str]] = {}
    for job in out.pipeline.jobs:
        for persist in step_args(expanded_steps(out.document(), job.id), "persist_to_workspace"):
            assert persist["root"] == ".", job.id
            for path in persist["paths"]:
                found.setdefault(path, []).append(job.id)
    return found


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_workspace_paths_are_unique_in_the_workflow(spec: Path, backend: str) -> None:
    paths = persisted(emitted(spec, backend))
    assert paths
    assert {p: jobs for p, jobs in paths.items() if len(jobs) > 1} == {}
    ordered = sorted(paths)
    nested = [(a, b) for a in ordered for b in ordered if a != b and b.startswith(a + "/")]
    assert not nested, "one layer inside another also collides"


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_each_build_output_is_persisted_and_attached_by_its_containerize_job(
        spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    paths = persisted(out)
    attaching = {job.id for job in out.pipeline.jobs
                 if step_args(expanded_steps(out.document(), job.id), "attach_workspace")}
    assert attaching == {job.id for job in out.pipeline.jobs if job.consumes}
    for job in out.pipeline.jobs:
        if job.stage is not Stage.BUILD:
            continue
        (artifact,) = job.produces
        assert paths[artifact.path] == [job.id]
        (containerize,) = [j for j in out.pipeline.jobs if artifact in j.consumes]
        assert containerize.stage is Stage.CONTAINERIZE and containerize.image == job.image
        attach = step_args(expanded_steps(out.document(), containerize.id), "attach_workspace")
        assert attach == [{"at": "."}]


# -- contexts and publish gating ---------------------------------------------


def contexts(out: Emitted) -> list[str]:
    configured = settings(out).context
    return list(configured) if configured is not None else ["kvc-publish"]


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_push_context_reaches_only_jobs_that_push_or_sign(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    entries = workflow_entries(out)
    pull = settings(out).pull_context
    for job in out.pipeline.jobs:
        pushes = job.registry.access is RegistryAccess.PUSH or job.needs_identity_token
        expected = contexts(out) if pushes else None
        if job.registry.access is RegistryAccess.PULL and pull:
            expected = list(pull)
        assert entries[job.id].get("context") == expected, job.id
        if job.stage is Stage.TEST:
            assert not set(contexts(out)) & set(entries[job.id].get("context", [])), job.id


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_publish_has_branch_filter_and_context(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    entries = workflow_entries(out)
    branch = settings(out).default_branch or "main"
    filtered = {name for name, entry in entries.items() if "filters" in entry}
    publish = [j for j in out.pipeline.jobs if j.stage is Stage.PUBLISH]
    assert publish
    assert filtered == {j.id for j in publish}
    for job in publish:
        entry = entries[job.id]
        assert entry["filters"] == {"branches": {"only": [branch]}}  # a list, never a string
        assert entry["context"] == contexts(out)


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_jobs_are_defined_once_and_used_once(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    raw = image_workflow_jobs(out.document())
    used = Counter(e if isinstance(e, str) else next(iter(e)) for e in raw)
    assert set(used) == {job.id for job in out.pipeline.jobs}
    assert set(used) <= set(out.document()["jobs"])
    assert max(used.values()) == 1


def _continuation(tmp_path: Path, spec: Path, run: str, env: dict[str, str],
                  rebuild: str = "") -> tuple[str, Any]:
    """The setup job's plan step in bash, plan.sh replaced by one writing RUN to run.txt
    (and REBUILD to rebuild.txt)."""
    out = emitted(spec, "circleci")
    setup = parse_yaml(out.files[circleci.CONFIG])
    job = setup["jobs"]["plan"]
    (command,) = [s["run"]["command"] for s in job["steps"] if isinstance(s, dict) and "run" in s]
    (cont,) = [s["continuation/continue"] for s in job["steps"]
               if isinstance(s, dict) and "continuation/continue" in s]
    (tmp_path / ".kvc/stages").mkdir(parents=True)
    (tmp_path / ".kvc/stages/plan.sh").write_text(
        f'mkdir -p "$KVC_PLAN_DIR"; printf %s "{run}" > "$KVC_PLAN_DIR/run.txt"\n'
        f'printf %s "{rebuild}" > "$KVC_PLAN_DIR/rebuild.txt"\n')
    (tmp_path / ".circleci").mkdir()
    (tmp_path / circleci.CONTINUATION).write_text(out.files[circleci.CONTINUATION])
    values = {k: ("" if "<<" in str(v) else str(v)) for k, v in job["environment"].items()}
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, check=True,
                   env={**os.environ, **values, **env})
    config = (tmp_path / cont["configuration_path"]).read_text()
    return config, json.loads((tmp_path / cont["parameters"]).read_text())


def test_an_unchanged_push_continues_with_an_empty_configuration(tmp_path: Path) -> None:
    """CircleCI fails a continued pipeline whose every workflow is filtered out."""
    config, parameters = _continuation(tmp_path, MINIMAL, "", {})
    assert config.strip() == circleci.EMPTY_CONFIGURATION
    assert parameters == {}  # the empty configuration declares none


@pytest.mark.parametrize(("run", "env"), [
    ("minimal-1\n", {}),                              # an image runs
    ("", {"KVC_FORCE": "typo"}),                       # the trigger passed `force`
])
def test_a_selected_or_forced_run_continues_with_the_image_workflows(
        tmp_path: Path, run: str, env: dict[str, str]) -> None:
    config, parameters = _continuation(tmp_path, MINIMAL, run, env)
    assert config == (tmp_path / circleci.CONTINUATION).read_text()
    assert parameters == {"kvc-run": ",minimal-1," if run else ",,", "kvc-rebuild": ",,"}


def test_forced_and_refreshed_images_reach_their_builds_as_kvc_rebuild(tmp_path: Path) -> None:
    """The plan's rebuild.txt becomes the pipeline parameter kvc-rebuild, which every
    cached build job reads as KVC_REBUILD (its run command then ignores a cache hit)."""
    config, parameters = _continuation(tmp_path, MINIMAL, "minimal-1\n", {},
                                       rebuild="minimal-1\n")
    assert parameters == {"kvc-run": ",minimal-1,", "kvc-rebuild": ",minimal-1,"}
    document = YAML(typ="safe").load(config)
    assert document["parameters"]["kvc-rebuild"] == {"type": "string", "default": ""}
    out = emitted(MINIMAL, "circleci")
    builds = [j for j in out.pipeline.jobs if j.cache is not None]
    assert builds
    for job in builds:
        environment = document["jobs"][job.id]["environment"]
        assert environment["KVC_REBUILD"] == "<< pipeline.parameters.kvc-rebuild >>"


def test_a_scheduled_update_continues_with_the_update_workflow(tmp_path: Path) -> None:
    spec = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    config, _ = _continuation(tmp_path, spec, "", {"KVC_TRIGGER": "scheduled_pipeline"})
    assert circleci.UPDATE_JOB in YAML(typ="safe").load(config)["workflows"]


def minutes(duration: str) -> float:
    """CircleCI's duration strings ("20m", "1.25h", "5s") in minutes."""
    unit = {"s": 1 / 60, "m": 1, "h": 60}[duration[-1]]
    return float(duration[:-1]) * unit


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_no_step_is_cut_off_before_its_stage_deadline(spec: Path, backend: str) -> None:
    """A test stage's single wait may last its whole test.timeout without output
    (kind's control plane, a slow boot): CircleCI's no_output_timeout must not end it
    first. multi-distro's arm64 test has a 40m timeout."""
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        (run,) = [r for r in step_args(expanded_steps(out.document(), job.id), "run")
                  if f"bash {job.script}" in r["command"]]
        limit = minutes(run["no_output_timeout"])
        assert limit >= 20, job.id
        if job.stage is Stage.TEST:
            timeout = job.env_dict()["KVC_TIMEOUT"]
            assert timeout.endswith("m"), timeout  # the specs here write minutes
            assert limit >= int(timeout[:-1]) + 10, (job.id, timeout, limit)


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_the_plan_gets_the_pull_context_and_never_the_push_context(
        spec: Path, backend: str) -> None:
    """With a pull context, the setup workflow's plan job reads private images' labels
    with it (only for the images' registry); without one it reads anonymously."""
    out = emitted(spec, backend)
    setup = parse_yaml(out.files[".circleci/config.yml"])
    (entry,) = setup["workflows"]["plan"]["jobs"]
    environment = setup["jobs"]["plan"]["environment"]
    pull = settings(out).pull_context
    if pull:
        assert entry == {"plan": {"context": pull}}
        assert environment["KVC_PULL_REGISTRY"] == out.resolved.spec.registry.split("/")[0]
    else:
        assert entry == "plan"
        assert "KVC_PULL_REGISTRY" not in environment
    assert not {"KVC_REGISTRY_USER", "KVC_REGISTRY_PASSWORD"} & set(environment)


def test_the_overrides_fixture_sets_a_pull_context() -> None:
    """So the branch with a pull context above is exercised."""
    assert settings(emitted(OVERRIDES, "circleci")).pull_context


@pytest.mark.parametrize(("timeout", "warns"), [("15m", False), ("35m", False), ("36m", True)])
def test_a_test_job_that_can_outlast_the_free_plan_hour_is_warned_about(
        tmp_path: Path, timeout: str, warns: bool) -> None:
    """CircleCI's Free plan ends a job at 1 hour: a test job whose bring-up budget
    plus test.timeout passes it would be cut off before it fails and keeps logs."""
    text = MINIMAL.read_text(encoding="utf-8")
    assert "defaults:" not in text
    spec = tmp_path / "kvc.yaml"
    spec.write_text(text + f"defaults:\n  test:\n    timeout: {timeout}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "circleci",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "[job-runtime]" in line]
    assert bool(lines) is warns, result.output
    if warns:
        (line,) = lines
        row = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "timeout:" in t)
        assert line.startswith(f"{spec}:{row}:"), line
        assert "61m" in line and "Free plan" in line



def test_each_release_over_the_free_plan_hour_gets_its_own_warning_line() -> None:
    """The first release's default timeout is within the hour, the second's is not: the
    second is still warned about, at its own test.timeout, in exactly these words."""
    text = MINIMAL.read_text(encoding="utf-8")
    second = ('      - release_version: "13"\n'
              "        release_name: trixie\n"
              f"        url: {_minimal_value(text, 'url')}\n"
              f"        checksum_url: {_minimal_value(text, 'checksum_url')}\n"
              "        verify_at_build: true\n"
              "        test:\n"
              "          timeout: 40m\n")
    spec = text + second
    row = spec.splitlines().index("          timeout: 40m") + 1
    warnings = circleci.CircleCI.warnings(resolve_text(spec))
    assert [w for w in warnings if "[job-runtime]" in w] == [
        f"kvc.yaml:{row}:11: warning: a CircleCI test job may take 65m (the cluster's 25m "
        "bring-up budget plus test.timeout 40m), longer than the Free plan's 60-minute job "
        "limit, which would end it without its logs: lower test.timeout, or run on a paid "
        "plan (docs/backends/circleci.md) [job-runtime]"]


def _minimal_value(text: str, key: str) -> str:
    """The raw value of ``key:`` in the minimal example (quoted as written)."""
    (line,) = [t for t in text.splitlines() if t.strip().startswith(f"{key}:")]
    return line.split(":", 1)[1].strip()

def _update_workflow_contexts(extra: str) -> Any:
    spec = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    text = spec.read_text(encoding="utf-8")
    assert "    context: [kvc-publish]\n" in text and "update_context" not in text
    resolved = resolve_text(text.replace("    context: [kvc-publish]\n",
                                         "    context: [kvc-publish]\n" + extra))
    source = EmitInput(build_pipeline(resolved), "kvc.yaml", resolved.spec.backends or Backends(),
                       update=resolved.spec.update)
    text = circleci.emit(source)[circleci.CONTINUATION]
    (entry,) = YAML(typ="safe").load(text)["workflows"][circleci.UPDATE_JOB]["jobs"]
    contexts = entry[circleci.UPDATE_JOB]["context"]
    # the header tells the user which context needs the token
    assert f"# (Project Settings > Triggers); its context ({', '.join(contexts)}) needs" in text
    return contexts


def test_the_update_workflow_runs_in_its_own_context() -> None:
    assert _update_workflow_contexts("") == ["kvc-update"]
    assert _update_workflow_contexts("    update_context: [bot-token, gpg]\n") == [
        "bot-token", "gpg"]


@pytest.mark.parametrize(("spec", "backend"), CIRCLECI)
def test_jobs_know_they_publish_only_on_the_default_branch(spec: Path, backend: str) -> None:
    """The PUBLISHES runtime value compares CIRCLE_BRANCH with the configured branch."""
    out = emitted(spec, backend)
    branch = settings(out).default_branch or "main"
    found = re.findall(r'\[ "\$\{CIRCLE_BRANCH:-\}" = (\S+) \]', out.text)
    assert found, "no job exports the publish condition"
    assert set(found) == {branch}


def test_some_circleci_case_publishes_from_another_branch() -> None:
    assert any(settings(emitted(spec, backend)).default_branch not in (None, "main")
               for spec, backend in (p.values for p in CIRCLECI))
