"""The one walk: a backend is tables, step renderers and capability flags.

A backend defined only here, in the test suite, compiles every example through
the real CLI without a change to kvc/; what a backend cannot express is a
compile error at the spec position. Shared behaviour of the two real backends
(runtime values, kept files, credentials) is checked here once for both.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc import stages
from kvc.backends import BACKENDS, buildfiles, yamlout
from kvc.backends.base import EmitInput, Files, comment_header
from kvc.backends.walk import Capabilities, Emitter, Step
from kvc.cli import main
from kvc.compiler import fingerprint
from kvc.compiler.driver import Resolved
from kvc.ir import Artifact, Cache, Job, Pipeline, RegistryAccess, Runtime, Stage
from kvc.spec.diagnostics import Diagnostic, SpecError
from tests.backends.ci_syntax import strings
from tests.backends.conftest import (
    BACKEND_NAMES,
    EXAMPLES,
    FIXTURE_SPECS,
    ROOT,
    SPECS,
    Emitted,
    case_id,
    cases,
    emit_input,
    emitted,
    spec_params,
)

OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")
TOY_FILE = ".toy-ci.yml"


class Toy(Emitter):
    """A whole CI dialect in one class: one root-level file, no directories."""

    NAME = "toy"
    OWNED = (TOY_FILE,)
    RUNNERS: ClassVar[Mapping[str, str]] = {"amd64": "x86-box", "arm64": "arm-box"}
    RUNTIME: ClassVar[Mapping[Runtime, str]] = {Runtime.RUN_ID: "$TOY_PIPELINE"}
    TOOLS: ClassVar[Mapping[str, tuple[Step, ...]]] = {
        "buildx": (), "cosign": ({"script": "install cosign"},)}
    ESCAPES = (("%", "%%"),)

    def files(self) -> Files:
        jobs = {job.id: {"on": self.runners()[job.runner], "after": list(job.needs),
                         "env": self.env(job), "steps": self.steps(job)}
                for job in self.source.pipeline.jobs}
        return {TOY_FILE: comment_header(self.source.header_lines(self.NAME))
                + yamlout.dump(jobs)}

    def checkout(self, job: Job) -> list[Step]:
        return ["checkout"]

    def fetch(self, job: Job, artifact: Artifact) -> list[Step]:
        return [{"fetch": artifact.name}]

    def restore(self, job: Job, cache: Cache) -> list[Step]:
        return [{"restore": cache.key}]

    def run(self, job: Job, command: str) -> list[Step]:
        return [{"script": command}]

    def keep(self, job: Job, artifact: Artifact) -> list[Step]:
        return [{"keep": artifact.name, "always": artifact.keep_on_failure}]


class Unsigned(Toy):
    NAME = "unsigned"
    CAPABILITIES = Capabilities(identity_token=False)


class Cautious(Toy):
    """A backend with its own compile warnings (as GitLab and CircleCI have)."""

    NAME = "cautious"

    @classmethod
    def warnings(cls, resolved: Resolved) -> list[str]:
        return [f"{resolved.doc.pos(())}: warning: {len(resolved.builds)} builds [cautious]"]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(BACKENDS, Toy.NAME, Toy)  # the "one registry line"
    monkeypatch.setitem(BACKENDS, Unsigned.NAME, Unsigned)
    monkeypatch.setitem(BACKENDS, Cautious.NAME, Cautious)
    yield


def test_a_registered_backend_can_be_removed_again() -> None:
    """What the toy fixture's monkeypatch undoes (it ignores the KeyError of a failed
    removal, so it would not notice), on a registry of its own."""
    registry = type(BACKENDS)({"lazy": ("kvc.backends.github", "GitHub")})
    registry[Toy.NAME] = Toy
    del registry[Toy.NAME]  # known by its class only
    del registry["lazy"]  # known by its module only, never imported
    assert Toy.NAME not in registry and "lazy" not in registry and len(registry) == 0
    with pytest.raises(KeyError) as missing:
        del registry["lazy"]
    assert missing.value.args == ("lazy",)


@pytest.mark.usefixtures("toy")
@pytest.mark.parametrize("spec", spec_params(EXAMPLES))
def test_a_backend_defined_in_the_tests_compiles_every_example(spec: Path,
                                                                tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["compile", str(spec), "--backend", "toy", "--out",
                                  str(tmp_path)])
    assert result.exit_code == 0, result.output
    jobs = yamlout_load(tmp_path / TOY_FILE)
    pipeline = emitted(spec, "github").pipeline
    assert list(jobs) == [job.id for job in pipeline.jobs]
    for job in pipeline.jobs:
        steps = jobs[job.id]["steps"]
        assert steps[0] == "checkout", job.id  # the skeleton comes from the walk
        script = next(s["script"] for s in steps if isinstance(s, dict) and "script" in s)
        assert script.startswith('export KVC_RUN_ID="$TOY_PIPELINE"\n'), job.id
        assert f"bash {job.script}" in script, job.id
    assert (tmp_path / ".kvc/docker-bake.json").is_file()  # shared files come for free
    check = runner.invoke(main, ["compile", str(spec), "--backend", "toy", "--out",
                                 str(tmp_path), "--check"])
    assert check.exit_code == 0, check.output


EXTRA_FILE = ".toy-extra.yml"


class Extra(Toy):
    """Toy plus a second root-level file; ``EMIT_EXTRA`` says whether it is written."""

    NAME = "extra"
    OWNED = (TOY_FILE, EXTRA_FILE)
    EMIT_EXTRA: ClassVar[bool] = True

    def files(self) -> Files:
        files = super().files()
        if self.EMIT_EXTRA:
            files[EXTRA_FILE] = files[TOY_FILE]
        return files


def test_root_level_files_of_a_backend_are_checked_and_cleaned_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `kvc compile`: a root-level file a backend owns and no longer writes is
    reported by --check and removed by compile, like a file in an owned directory."""
    monkeypatch.setitem(BACKENDS, Extra.NAME, Extra)
    spec = tmp_path / "kvc.yaml"
    shutil.copy(EXAMPLES[0], spec)
    compile_ = ["compile", str(spec), "--backend", Extra.NAME]
    assert CliRunner().invoke(main, compile_).exit_code == 0
    assert (tmp_path / EXTRA_FILE).is_file()
    monkeypatch.setattr(Extra, "EMIT_EXTRA", False)
    check = CliRunner().invoke(main, [*compile_, "--check"])
    assert check.exit_code == 1
    assert f"left over: {EXTRA_FILE}" in check.output
    assert (tmp_path / EXTRA_FILE).is_file()  # --check writes nothing
    assert CliRunner().invoke(main, compile_).exit_code == 0
    assert not (tmp_path / EXTRA_FILE).exists()
    assert (tmp_path / TOY_FILE).is_file()
    assert CliRunner().invoke(main, [*compile_, "--check"]).exit_code == 0


def yamlout_load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


@pytest.mark.usefixtures("toy")
def test_what_a_backend_cannot_express_is_a_compile_error_at_the_spec_position(
        tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    shutil.copy(OVERRIDES, spec)
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "unsigned"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1)
                if "sign: true" in text)
    col = spec.read_text().splitlines()[line - 1].index("sign") + 1
    assert (f"{spec}:{line}:{col}: unsigned cannot give a job an identity token, so keyless "
            "signing (publish.sign) is not possible [unsupported]") in result.output
    assert not (tmp_path / TOY_FILE).exists()  # nothing is written


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_every_tool_setup_entry_is_a_tool_some_job_needs(backend: str) -> None:
    """No no-op tool entries: each key of TOOLS is a tool the IR asks for."""
    needed = {tool for spec in SPECS for job in emitted(spec, backend).pipeline.jobs
              for tool in job.tools}
    assert set(BACKENDS[backend].TOOLS) == needed


@pytest.mark.usefixtures("toy")
def test_a_backends_own_warnings_are_printed_by_compile(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    shutil.copy(OVERRIDES, spec)
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "cautious"])
    assert result.exit_code == 0, result.output
    builds = len(emitted(OVERRIDES, "github").resolved.builds)
    assert f"{spec}:1:1: warning: {builds} builds [cautious]" in result.stderr
    assert (tmp_path / TOY_FILE).is_file()


def test_a_runner_the_backend_does_not_know_is_unsupported(tmp_path: Path) -> None:
    class AmdOnly(Toy):
        NAME = "amd-only"
        RUNNERS: ClassVar[Mapping[str, str]] = {"amd64": "x86-box"}

    out = emitted(OVERRIDES, "github")
    with pytest.raises(SpecError) as error:
        AmdOnly.emit(EmitInput(out.pipeline, "kvc.yaml", out.resolved.spec.backends))
    kinds = {d.kind for d in error.value.diagnostics}
    assert kinds == {"unsupported"}
    assert all("no arm64 runner is known for amd-only" in d.message
               for d in error.value.diagnostics)
    # Each at the spec position of a job that needs the runner.
    arm = {job.origin for job in out.pipeline.jobs if job.runner == "arm64"}
    assert None not in arm
    assert {d.pos for d in error.value.diagnostics} == arm


def test_a_tool_the_backend_cannot_set_up_is_unsupported_where_the_spec_asks() -> None:
    class NoCosign(Toy):
        NAME = "no-cosign"
        TOOLS: ClassVar[Mapping[str, tuple[Step, ...]]] = {"buildx": ()}

    out = emitted(OVERRIDES, "github")
    with pytest.raises(SpecError) as error:
        NoCosign.emit(EmitInput(out.pipeline, "kvc.yaml", out.resolved.spec.backends))
    signing = [job for job in out.pipeline.jobs if "cosign" in job.tools]
    assert signing and all(job.origin is not None for job in signing)
    assert set(error.value.diagnostics) == set(
        Diagnostic(job.origin, f"no-cosign has no way to set up cosign, which the {job.stage} "
                   "stage needs", "unsupported") for job in signing if job.origin is not None)


# -- neutral runtime values (contract 1) -------------------------------------------------


def run_commands(spec: Path, backend: str) -> Iterator[tuple[str, str]]:
    if backend == "gitlab":  # a job's script is its steps
        for job_id, job in emitted(spec, backend).child_jobs().items():
            yield job_id, job["script"]
        return
    document = emitted(spec, backend).document()
    for job_id, job in document["jobs"].items():
        for step in job["steps"]:
            if isinstance(step, dict) and "run" in step:
                run = step["run"]
                yield job_id, run if isinstance(run, str) else run["command"]


RUNTIME = {
    "github": {"KVC_RUN_ID": "$GITHUB_RUN_ID", "KVC_REVISION": "$GITHUB_SHA",
               "KVC_SOURCE": "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY",
               "KVC_SUMMARY_FILE": "$GITHUB_STEP_SUMMARY"},
    # The workspace id survives "Rerun workflow from failed"; the workflow id does not.
    "circleci": {"KVC_RUN_ID": "$CIRCLE_WORKFLOW_WORKSPACE_ID", "KVC_REVISION": "$CIRCLE_SHA1",
                 "KVC_SOURCE": "$CIRCLE_REPOSITORY_URL"},
    # A retried job stays in its pipeline: CI_PIPELINE_ID is stable across retries.
    "gitlab": {"KVC_RUN_ID": "$CI_PIPELINE_ID", "KVC_REVISION": "$CI_COMMIT_SHA",
               "KVC_SOURCE": "$CI_PROJECT_URL"},
}
# Publish jobs only: a later step reads the promoted digest (GitHub), and signing
# publish jobs the identity `cosign verify` checks (docs/verifying.md).
PUBLISH_RUNTIME = {"github": {"KVC_OUTPUT_FILE": "$GITHUB_OUTPUT"}, "circleci": {}, "gitlab": {}}
SIGN_RUNTIME = {
    "github": {"KVC_SIGN_ISSUER": "https://token.actions.githubusercontent.com",
               "KVC_SIGN_IDENTITY": "$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF"},
    "circleci": {"KVC_SIGN_ISSUER": "https://oidc.circleci.com/org/$CIRCLE_ORGANIZATION_ID",
                 "KVC_SIGN_IDENTITY_REGEXP":
                     r"^https://circleci\.com/api/v2/projects/$CIRCLE_PROJECT_ID/"
                     "pipeline-definitions/"},
    "gitlab": {"KVC_SIGN_ISSUER": "$CI_SERVER_URL",
               "KVC_SIGN_IDENTITY":
                   "$CI_PROJECT_URL//$CI_CONFIG_PATH@refs/heads/$CI_COMMIT_REF_NAME"},
}


@pytest.mark.parametrize("backend", sorted(RUNTIME))
@pytest.mark.parametrize("spec", spec_params())
def test_every_stage_run_exports_the_neutral_runtime_values(spec: Path, backend: str) -> None:
    pipeline = emitted(spec, backend).pipeline
    scripts = {job.id: job.script for job in pipeline.jobs}
    seen = set()
    for job_id, command in run_commands(spec, backend):
        if job_id not in scripts or f"bash {scripts[job_id]}" not in command:
            continue  # setup steps
        seen.add(job_id)
        exports = dict(line.removeprefix("export ").split("=", 1)
                       for line in command.splitlines() if line.startswith("export "))
        job = emitted(spec, backend).pipeline.job(job_id)
        extra = PUBLISH_RUNTIME[backend] if job.stage is Stage.PUBLISH else {}
        if job.stage is Stage.CONTAINERIZE:  # checked by running it, further down
            assert "then export KVC_PUBLISHES=true; else export KVC_PUBLISHES=false" in command
        if job.needs_identity_token:
            extra = {**extra, **SIGN_RUNTIME[backend]}
        assert exports == {k: f'"{v}"' for k, v in {**RUNTIME[backend], **extra}.items()}, job_id
    assert seen == set(scripts)


@pytest.mark.parametrize("backend", sorted(RUNTIME))
@pytest.mark.parametrize("spec", spec_params())
def test_runtime_values_never_sit_in_the_literal_environment(spec: Path, backend: str) -> None:
    """CircleCI's `environment:` is literal: "$CIRCLE_SHA1" there would stay that string."""
    out = emitted(spec, backend)
    jobs = out.child_jobs().values() if backend == "gitlab" else out.document()["jobs"].values()
    for job in jobs:
        env = job.get("env") or job.get("variables") or job.get("environment") or {}
        assert not {r.value for r in Runtime} & set(env)
    assert "CIRCLE_WORKFLOW_ID" not in out.text


# -- kept files ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", spec_params())
def test_github_uploads_overwrite_so_rerunning_failed_jobs_can_go_green(spec: Path) -> None:
    out = emitted(spec, "github")
    kept = {a.name: a for job in out.pipeline.jobs for a in job.produces}
    uploads = [(job_id, step) for job_id, job in out.document()["jobs"].items()
               for step in job["steps"] if "upload-artifact" in step.get("uses", "")]
    assert {step["with"]["name"] for _, step in uploads} == set(kept)
    for job_id, step in uploads:
        artifact = kept[step["with"]["name"]]
        assert step["with"]["overwrite"] is True, job_id
        assert step.get("if") == ("always()" if artifact.keep_on_failure else None), job_id


@pytest.mark.parametrize("spec", spec_params())
def test_circleci_keeps_test_logs_even_when_the_test_fails(spec: Path) -> None:
    out = emitted(spec, "circleci")
    for job in out.pipeline.jobs:
        steps = out.document()["jobs"][job.id]["steps"]
        stored = [s["store_artifacts"] for s in steps if "store_artifacts" in s]
        expected = [a for a in job.produces if not a.handoff]
        assert [s["path"] for s in stored] == [a.path for a in expected], job.id
        for step, artifact in zip(stored, expected, strict=True):
            assert step.get("when") == ("always" if artifact.keep_on_failure else None)


def test_test_logs_are_kept_on_failure_and_handed_to_nobody() -> None:
    for spec in SPECS:
        for job in emitted(spec, "github").pipeline.jobs:
            for artifact in job.produces:
                assert artifact.keep_on_failure == (job.stage is Stage.TEST), job.id
                assert artifact.handoff == (job.stage is not Stage.TEST), job.id


def retention(spec: Path) -> set[int]:
    return {step["with"]["retention-days"] for job in emitted(spec, "github").document()
            ["jobs"].values() for step in job["steps"]
            if "upload-artifact" in step.get("uses", "")}


def test_artifacts_outlive_a_publish_approval_when_an_environment_gates_publish() -> None:
    assert retention(OVERRIDES) == {31}  # environment: production; approval waits <= 30 days
    assert retention(EXAMPLES[0]) == {3}


def test_artifact_retention_is_a_setting(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(OVERRIDES.read_text().replace(
        "    environment: production\n",
        "    environment: production\n    artifact_retention_days: 60\n"))
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "github"])
    assert result.exit_code == 0, result.output
    assert "retention-days: 60" in (tmp_path / ".github/workflows/images.yml").read_text()
    assert "retention-days: 31" not in (tmp_path / ".github/workflows/images.yml").read_text()


# -- credentials (contract 2) ---------------------------------------------------------------


@pytest.mark.parametrize("spec", spec_params())
def test_only_containerize_and_publish_push_tests_may_pull(spec: Path) -> None:
    access = {Stage.BUILD: RegistryAccess.NONE, Stage.CONTAINERIZE: RegistryAccess.PUSH,
              Stage.TEST: RegistryAccess.PULL, Stage.PUBLISH: RegistryAccess.PUSH}
    for job in emitted(spec, "github").pipeline.jobs:
        assert job.registry.access is access[job.stage], job.id


# -- typed IR: no KVC_* string is read back --------------------------------------------------


def _without_inputs(pipeline: Pipeline) -> Pipeline:
    return replace(pipeline, jobs=tuple(replace(j, inputs=()) for j in pipeline.jobs))


@pytest.mark.parametrize("spec", spec_params())
def test_the_bake_file_comes_from_typed_fields_not_from_env_strings(spec: Path) -> None:
    pipeline = emitted(spec, "github").pipeline
    header = "h"
    assert buildfiles.bake(_without_inputs(pipeline), header) == buildfiles.bake(pipeline, header)
    document = json.loads(buildfiles.bake(pipeline, header))
    for target in pipeline.targets:
        assert document["target"][target.slug]["tags"] == [
            f"{target.repository}:{tag}" for tag in target.tags]


ENV_KEYS = frozenset({"env", "environment", "variables"})


def _without_env(node: Any) -> Any:
    """A parsed CI file minus every environment block (where inputs are rendered)."""
    if isinstance(node, dict):
        return {key: _without_env(value) for key, value in node.items()
                if not (key in ENV_KEYS and isinstance(value, dict))}
    if isinstance(node, list):
        return [_without_env(item) for item in node]
    return node


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_no_backend_reads_a_jobs_inputs_back(spec: Path, backend: str) -> None:
    """Inputs reach a backend's files only through env(job): without them, every file is
    the same apart from its environment blocks. A backend deciding anything (a service,
    a step, a mode) from a KVC_* value it was handed fails here."""
    source = emit_input(spec)
    files = BACKENDS[backend].emit(source)
    blind = BACKENDS[backend].emit(replace(source, pipeline=_without_inputs(source.pipeline)))
    assert list(blind) == list(files)
    for path, text in files.items():
        assert _without_env(yamlout_load_text(blind[path])) == _without_env(
            yamlout_load_text(text)), path


def yamlout_load_text(text: str) -> Any:
    return YAML(typ="safe").load(text)


def test_plan_reports_the_typed_fingerprint() -> None:
    result = CliRunner().invoke(main, ["plan", str(EXAMPLES[0]), "--json"])
    assert result.exit_code == 0, result.output
    pipeline = emitted(EXAMPLES[0], "github").pipeline
    build_fingerprints = {j.fingerprint for j in pipeline.jobs if j.stage is Stage.BUILD}
    assert {row["fingerprint"] for row in json.loads(result.output)} == build_fingerprints


# -- one table of stage scripts --------------------------------------------------------------


def test_every_packaged_file_is_in_the_table() -> None:
    """Scripts and the Containerfile alike: a file the table misses would be neither
    written to .kvc/ nor hashed into any fingerprint."""
    packaged = {p.name for p in (ROOT / "kvc/stages").iterdir()
                if p.is_file() and p.suffix != ".py"}
    assert packaged == set(stages.SCRIPTS)
    files = buildfiles.emit(emit_input(EXAMPLES[0]))
    assert {stages.path(name) for name in stages.SCRIPTS} <= set(files)


def test_the_packaging_fingerprint_covers_the_containerfile() -> None:
    assert fingerprint._packaging() == b"".join(
        (ROOT / "kvc/stages" / n).read_bytes() for n in ("Containerfile", "lib.sh",
                                                         "containerize.sh"))


def test_every_file_the_build_stage_sources_is_hashed_into_the_fingerprint() -> None:
    used = set(stages.used_by(Stage.BUILD))
    pending, seen = ["build.sh"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        text = (ROOT / "kvc/stages" / name).read_text()
        for sourced in _sourced(text):
            if sourced not in seen:
                pending.append(sourced)
    assert seen <= used
    assert fingerprint._build_scripts() == b"".join(
        (ROOT / "kvc/stages" / n).read_bytes() for n in stages.used_by(Stage.BUILD))


def _sourced(text: str) -> set[str]:
    return set(re.findall(r'^\s*(?:\.|source) "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/([\w.-]+)"',
                          text, re.MULTILINE))


def test_the_sourced_file_pattern_sees_lib_sh() -> None:
    assert _sourced((ROOT / "kvc/stages/build.sh").read_text()) >= {"lib.sh"}


# -- no repeated skeleton ---------------------------------------------------------------------


MIN_REPEAT = 6  # lines


def repeated_blocks(files: Mapping[str, str], size: int = MIN_REPEAT) -> list[str]:
    """Runs of ``size`` code lines (stripped; blank lines, comments and imports left out)
    that occur twice, in two files or twice in one without overlapping."""
    first: dict[tuple[str, ...], tuple[str, int, int]] = {}
    found = []
    for name, text in sorted(files.items()):
        imports = {line for node in ast.walk(ast.parse(text))
                   if isinstance(node, ast.Import | ast.ImportFrom)
                   for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
        code = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
                if number not in imports and line.strip() and not line.strip().startswith("#")]
        for i in range(len(code) - size + 1):
            key = tuple(line for _, line in code[i : i + size])
            seen = first.setdefault(key, (name, i, code[i][0]))
            if seen[0] != name or i - seen[1] >= size:
                found.append(f"{seen[0]}:{seen[2]} and {name}:{code[i][0]}")
    return found


def test_no_repeated_skeleton_between_backends() -> None:
    backends = {p.name: p.read_text() for p in sorted((ROOT / "kvc/backends").glob("*.py"))}
    assert repeated_blocks(backends) == []


def test_a_repeated_block_is_found() -> None:
    block = "".join(f"x{i} = step({i})\n" for i in range(MIN_REPEAT))
    files = {"a.py": f"import os\n{block}", "b.py": f"import os\n\n# a comment\n{block}"}
    assert repeated_blocks(files) == ["a.py:2 and b.py:4"]
    assert repeated_blocks({"a.py": block + block}) == [f"a.py:1 and a.py:{MIN_REPEAT + 1}"]
    assert repeated_blocks({"a.py": block, "b.py": block[: block.rindex("x")]}) == []


def test_case_ids_are_unique() -> None:
    assert len({case_id(s) for s in SPECS}) == len(SPECS)


# -- forced and refresh-due images rebuild without the build cache (plan.sh's rebuild.txt) --


def _build_jobs(out: Emitted) -> list[Job]:
    return [j for j in out.pipeline.jobs if j.cache is not None and j.cache.skip_run_on_hit]


def _run_build_command(command: str, root: Path, output: str, rebuild: str | None,
                       restored: bool) -> str:
    """The emitted run command in ROOT, with a stage script that says it ran."""
    script = root / ".kvc/stages/build.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("echo STAGE-RAN\n")
    (root / output).parent.mkdir(parents=True, exist_ok=True)
    (root / output).unlink(missing_ok=True)
    if restored:
        (root / output).write_text("old disk")
    env = {"PATH": os.environ["PATH"], **({"KVC_REBUILD": rebuild} if rebuild is not None else {})}
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=root, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize(("spec", "backend"),
                         [c for c in cases() if c.values[1] != "github"])
def test_a_forced_or_refreshed_image_is_rebuilt_over_a_restored_cache(
        spec: Path, backend: str, tmp_path: Path) -> None:
    """CircleCI and GitLab skip the stage when the cache restored its output, unless the
    plan listed the image in KVC_REBUILD (pipeline parameter kvc-rebuild / a variable of
    the child pipeline)."""
    out = emitted(spec, backend)
    walk = BACKENDS[backend](emit_input(spec))
    for job in _build_jobs(out):
        assert job.cache is not None
        command = walk.command(job)
        slug = walk.slug(job.image)
        output = job.cache.output
        assert "STAGE-RAN" not in _run_build_command(command, tmp_path, output, None, True)
        assert "STAGE-RAN" not in _run_build_command(command, tmp_path, output, ",x-1,", True)
        assert "STAGE-RAN" in _run_build_command(command, tmp_path, output, f",{slug},", True)
        assert "STAGE-RAN" in _run_build_command(command, tmp_path, output, None, False)
        assert f'[[ "${{KVC_REBUILD:-}}" != *,{slug},* ]]' in "".join(out.files.values())



class Bare(Toy):
    """A CI system with no runtime value kvc can map (no run id, no commit variable)."""

    NAME = "bare"
    RUNTIME: ClassVar[Mapping[Runtime, str]] = {}


def test_without_runtime_values_a_job_runs_its_stage_script_alone(tmp_path: Path) -> None:
    """Nothing to export: the run command is the stage call, or for a build the cache
    check around it (a trailing newline is the backend's to choose)."""
    walk = Bare(emit_input(next(s for s in EXAMPLES if s.parent.name == "minimal")))
    builds = [j for j in walk.source.pipeline.jobs
              if j.cache is not None and j.cache.skip_run_on_hit]
    assert builds
    for job in walk.source.pipeline.jobs:
        command = walk.command(job)
        if job in builds:
            assert job.cache is not None
            assert "STAGE-RAN" in _run_build_command(command, tmp_path, job.cache.output,
                                                     None, False), job.id
        else:
            assert command.rstrip("\n") == f"bash {job.script}", job.id

# -- KVC_PUBLISHES: containerize knows whether this run's publish job runs --------

PUBLISHING_RUNS = {
    "github": [({"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}, True),
               ({"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/heads/main"},
                True),
               ({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge"}, False),
               ({"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main-x"}, False)],
    "circleci": [({"CIRCLE_BRANCH": "main"}, True), ({"CIRCLE_BRANCH": "pull/7"}, False),
                 ({}, False)],
    "gitlab": [({"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}, True),
               ({"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
                 "KVC_PARENT_SOURCE": "merge_request_event"}, False),
               ({"CI_MERGE_REQUEST_IID": "3", "CI_DEFAULT_BRANCH": "main"}, False),
               ({"CI_COMMIT_BRANCH": "dev", "CI_DEFAULT_BRANCH": "main"}, False)],
}


@pytest.mark.parametrize("backend", sorted(PUBLISHING_RUNS))
def test_containerize_knows_whether_the_run_publishes(backend: str) -> None:
    """Exactly the runs whose publish job runs get KVC_PUBLISHES=true (the same rule
    as the publish job's filter), so containerize can refuse the archive fallback."""
    spec = next(s for s in EXAMPLES if s.parent.name == "minimal")
    walk = BACKENDS[backend](emit_input(spec))
    containerize = [j for j in walk.source.pipeline.jobs if j.stage is Stage.CONTAINERIZE]
    assert containerize
    for job in containerize:
        command = walk.command(job)
        (line,) = [x for x in command.splitlines() if "KVC_PUBLISHES=" in x]
        for env, publishes in PUBLISHING_RUNS[backend]:
            result = subprocess.run(["bash", "-euc", f'{line}\necho "$KVC_PUBLISHES"'],
                                    env={"PATH": os.environ["PATH"], **env},
                                    capture_output=True, text=True, check=True)
            assert result.stdout.strip() == ("true" if publishes else "false"), (env, command)
    others = [j for j in walk.source.pipeline.jobs if j.stage is not Stage.CONTAINERIZE]
    assert not [j for j in others if "KVC_PUBLISHES" in walk.command(j)]


# -- the plan job's shell comes from the walk ------------------------------------------------


def plan_script(out: Emitted) -> str:
    """The shell of the plan job (the one that runs plan.sh) in a backend's files."""
    scripts = []
    for text in out.files.values():
        for where, value in strings(yamlout_load_text(text)):
            if f"bash {stages.PLAN_SCRIPT}" in value:
                scripts.append((where, value))
    assert len({w for w, _ in scripts}) == 1, scripts
    return scripts[0][1]


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_the_plan_job_exports_only_what_the_plan_stage_reads(spec: Path, backend: str) -> None:
    """Every backend's plan job runs the walk's plan_command: no runtime value the plan
    stage never reads (run id, revision, signing identity) is exported there."""
    script = plan_script(emitted(spec, backend))
    read = set(re.findall(r"\bKVC_\w+", stages.read("plan.sh") + stages.read("lib.sh")))
    exported = set(re.findall(r"^\s*export (KVC_\w+)=", script, re.MULTILINE))
    assert exported <= read, exported - read
    walk = BACKENDS[backend](emit_input(spec))
    assert walk.plan_command("").rstrip("\n") in script


def test_the_test_vm_name_is_a_dns_label() -> None:
    """Lower case, no underscores, at most 63 characters, never ending in a hyphen."""
    assert buildfiles.vm_name("Debian_12") == "kvc-test-debian-12"
    cut = buildfiles.vm_name("a" * 53 + "_b")  # the cut leaves "...a-" at 63
    assert cut == "kvc-test-" + "a" * 53
    assert buildfiles.vm_name("x" * 80) == ("kvc-test-" + "x" * 80)[:63]
