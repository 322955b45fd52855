"""GitLab: what the emitted pipelines promise, read back from the files.

The plan job's script is run for real (bash, a stub plan.sh writing run.txt)
in a compiled tree, and the child pipeline it writes is checked against the
image files and GitLab's schema.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.backends import gitlab
from kvc.backends.base import EmitInput
from kvc.cli import main
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import RegistryAccess, Stage
from kvc.spec.diagnostics import SpecError
from kvc.spec.models import Backends
from tests.backends.conftest import EXAMPLES, FIXTURE_SPECS, SPECS, emitted, spec_params
from tests.conftest import per_module, resolve_text
from tests.gate import require

OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")
MINIMAL = next(s for s in EXAMPLES if s.parent.name == "minimal")


# A reference GitLab replaces in a variable's value: $NAME, ${NAME} or %NAME%
# (gitlabhq/gitlabhq@0a412bceb98c:lib/gitlab/ci/variables/collection/item.rb:10).
GITLAB_REFERENCE = re.compile(r"\$|%[A-Za-z_][A-Za-z0-9_]*%")


def literal(value: Any) -> str:
    """A variable as the job sees it: ``expand: false`` keeps "$" and "%" as typed."""
    if isinstance(value, dict):
        assert value["expand"] is False
        return str(value["value"])
    assert not GITLAB_REFERENCE.search(str(value)), f"{value!r} would be expanded by GitLab"
    return str(value)


@pytest.mark.parametrize("spec", spec_params())
def test_every_value_arrives_as_written(spec: Path) -> None:
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    for job in out.pipeline.jobs:
        variables = {k: literal(v) for k, v in jobs[job.id]["variables"].items()
                     if k not in gitlab.DIND_VARIABLES}
        # The test mode fits the runner (test_tests_on_hosted_runners_boot_with_qemu...).
        expected = job.env_dict()
        if "KVC_TEST_MODE" in expected:
            expected["KVC_TEST_MODE"] = variables["KVC_TEST_MODE"]
        assert variables == expected, job.id


@pytest.mark.parametrize("spec", spec_params())
def test_publish_runs_only_on_the_default_branch_and_never_for_merge_requests(
        spec: Path) -> None:
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    branch = '"release"' if spec == OVERRIDES else "$CI_DEFAULT_BRANCH"
    for job in out.pipeline.jobs:
        rules = jobs[job.id].get("rules")
        if job.stage is not Stage.PUBLISH:
            assert rules is None, job.id
            continue
        never, only = rules
        assert never["when"] == "never"
        assert "merge_request_event" in never["if"] and "$CI_MERGE_REQUEST_IID" in never["if"]
        assert only == {"if": f"$CI_COMMIT_BRANCH == {branch}"}


@pytest.mark.parametrize("spec", spec_params())
def test_the_child_knows_whether_its_parent_is_a_merge_request_pipeline(spec: Path) -> None:
    trigger = emitted(spec, "gitlab").document()[gitlab.TRIGGER_JOB]
    assert trigger["variables"] == {gitlab.PARENT_SOURCE: "$CI_PIPELINE_SOURCE"}
    assert trigger["trigger"] == {
        "include": [{"artifact": gitlab.CHILD, "job": gitlab.PLAN_JOB}], "strategy": "depend"}


@pytest.mark.parametrize("spec", spec_params())
def test_signing_gets_a_sigstore_token_and_the_identity_to_verify(spec: Path) -> None:
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    for job in out.pipeline.jobs:
        emitted_job = jobs[job.id]
        if job.needs_identity_token:
            assert emitted_job["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
            script = emitted_job["script"]
            assert 'KVC_SIGN_ISSUER="$CI_SERVER_URL"' in script
            # ci_config_ref_uri names the project's CI/CD configuration file, whatever
            # its path: the identity follows CI_CONFIG_PATH.
            (line,) = [ln for ln in script.splitlines() if "KVC_SIGN_IDENTITY=" in ln]
            identity = subprocess.run(
                ["bash", "-c", f'{line}; printf %s "$KVC_SIGN_IDENTITY"'],
                env={"CI_PROJECT_URL": "https://gitlab.example.com/group/images",
                     "CI_CONFIG_PATH": "ci/images.yml", "CI_COMMIT_REF_NAME": "main",
                     "PATH": os.environ["PATH"]},
                capture_output=True, text=True, check=True).stdout
            assert identity == "https://gitlab.example.com/group/images//ci/images.yml@refs/heads/main"
        else:
            assert "id_tokens" not in emitted_job, job.id
    assert any(j.needs_identity_token for j in emitted(OVERRIDES, "gitlab").pipeline.jobs)


@pytest.mark.parametrize("spec", spec_params())
def test_only_push_jobs_run_in_the_credentials_environment(spec: Path) -> None:
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    name = "registry-push" if spec == OVERRIDES else gitlab.ENVIRONMENT
    for job in out.pipeline.jobs:
        environment = jobs[job.id].get("environment")
        if job.registry.access is RegistryAccess.PUSH:
            action = "start" if job.stage is Stage.PUBLISH else "prepare"
            assert environment == {"name": name, "action": action}, job.id
        else:
            assert environment is None, job.id


def test_runners_by_tags() -> None:
    for spec, expected in ((MINIMAL, {"amd64": None, "arm64": ["saas-linux-small-arm64"]}),
                           (OVERRIDES, {"amd64": ["kvm", "x86-64"],
                                        "arm64": ["kvm", "aarch64"]})):
        out = emitted(spec, "gitlab")
        jobs = out.child_jobs()
        for job in out.pipeline.jobs:
            assert jobs[job.id].get("tags") == expected[job.runner], job.id
            assert jobs[job.id]["image"] == ("debian:12" if spec == OVERRIDES else "ubuntu:24.04")


@pytest.mark.parametrize("spec", spec_params())
def test_docker_jobs_get_docker_in_docker_over_tls(spec: Path) -> None:
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    for job in out.pipeline.jobs:
        emitted_job = jobs[job.id]
        kind = job.stage is Stage.TEST and emitted_job["variables"]["KVC_TEST_MODE"] != "qemu"
        if "buildx" in job.tools or kind:
            assert emitted_job["services"] == [{"name": gitlab.DIND, "alias": "docker"}]
            variables = emitted_job["variables"]
            assert {k: variables[k] for k in gitlab.DIND_VARIABLES} == dict(
                gitlab.DIND_VARIABLES)
        else:
            assert "services" not in emitted_job, job.id


@pytest.mark.parametrize("spec", spec_params())
def test_tests_on_hosted_runners_boot_with_qemu_and_tagged_ones_may_run_kind(spec: Path) -> None:
    """GitLab.com's hosted runners document no KVM; a tagged runner is the user's."""
    out = emitted(spec, "gitlab")
    jobs = out.child_jobs()
    backends = out.resolved.spec.backends
    tags = (backends.gitlab.tags if backends and backends.gitlab else None) or {}
    tests = [j for j in out.pipeline.jobs if j.stage is Stage.TEST]
    for job in tests:
        emitted_job, asked = jobs[job.id], job.env_dict()["KVC_TEST_MODE"]
        mode = emitted_job["variables"]["KVC_TEST_MODE"]
        if job.runner in tags or asked != "auto":
            assert mode == asked, job.id
        else:
            assert mode == "qemu", job.id
        kind = mode != "qemu"
        assert ("services" in emitted_job) is kind, job.id
        assert (gitlab.INSTALL_DOCKER_CLI in emitted_job["script"]) is kind, job.id


def test_hosted_defaults_and_a_forced_kubevirt_mode_warn(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    text = MINIMAL.read_text(encoding="utf-8")
    assert "backends:" not in text and "defaults:" not in text
    text += "defaults:\n  test:\n    mode: kubevirt\n"
    spec.write_text(text, encoding="utf-8")
    runner = CliRunner()
    compiled = runner.invoke(main, ["compile", str(spec), "--backend", "gitlab"])
    assert compiled.exit_code == 0, compiled.output
    assert compiled.output.count("[gitlab-hosted-kubevirt]") == 2  # amd64 and arm64
    assert "[gitlab-hosted-kubevirt]" not in runner.invoke(
        main, ["compile", str(spec), "--backend", "github"]).output
    # validate warns once the spec says it runs on GitLab; tagged arches are the user's.
    assert "[gitlab-hosted-kubevirt]" not in runner.invoke(main, ["validate", str(spec)]).output
    spec.write_text(text + "backends:\n  gitlab:\n    tags:\n      arm64: [kvm]\n",
                    encoding="utf-8")
    validated = runner.invoke(main, ["validate", str(spec)])
    assert validated.exit_code == 0, validated.output
    (warning,) = [line for line in validated.output.splitlines() if "gitlab-hosted" in line]
    assert warning.startswith(f"{spec}:") and "tags.amd64 is not set" in warning
    jobs = YAML(typ="safe").load((tmp_path / gitlab.IMAGES / "debian-12.yml").read_text())
    assert jobs["test-debian-12-amd64"]["variables"]["KVC_TEST_MODE"] == "kubevirt"


def _hosted_warnings(extra: str, tags: dict[str, list[str]] | None) -> list[str]:
    text = MINIMAL.read_text(encoding="utf-8")
    assert "defaults:" not in text
    return gitlab.hosted_test_warnings(resolve_text(text + extra).builds, tags)


def test_hosted_kubevirt_warnings_say_what_happens_per_arch() -> None:
    kubevirt = "defaults:\n  test:\n    mode: kubevirt\n"
    amd64, arm64 = _hosted_warnings(kubevirt, None)
    assert "tags.amd64 is not set" in amd64
    assert amd64.endswith("document no KVM: KubeVirt runs with software emulation on kind in "
                          "Docker-in-Docker, on 2 vCPUs by default; use test.mode auto (qemu "
                          "there) or tag a runner with KVM (docs/backends/gitlab.md) "
                          "[gitlab-hosted-kubevirt]")
    assert "tags.arm64 is not set" in arm64
    assert "document no KVM: the test fails: KubeVirt cannot emulate arm64;" in arm64
    # a tagged arch is the user's runner; the next build still warns
    (only,) = _hosted_warnings(kubevirt, {"amd64": ["kvm"]})
    assert only == arm64
    # only a test that runs, in kubevirt mode, warns
    assert _hosted_warnings("", None) == []
    assert _hosted_warnings("defaults:\n  test:\n    enabled: false\n    mode: kubevirt\n",
                            None) == []


def test_a_default_branch_no_rule_can_compare_is_refused_where_it_is_written(
        tmp_path: Path) -> None:
    """Refused by validate as well as compile, at the value, writing nothing."""
    spec = tmp_path / "kvc.yaml"
    text = MINIMAL.read_text(encoding="utf-8")
    line = text.count("\n") + 3
    for branch in ('rel"ease', "rel$ease"):  # single-quoted: as written
        spec.write_text(text + f"backends:\n  gitlab:\n    default_branch: '{branch}'\n",
                        encoding="utf-8")
        expected = (f"{spec}:{line}:21: backends.gitlab.default_branch '{branch}' cannot be "
                    "compared in a GitLab rule (no '\"' or '$') [value]")
        for args in (["validate", str(spec)], ["compile", str(spec), "--backend", "gitlab"]):
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 1, result.output
            assert expected in result.output, result.output
        assert not (tmp_path / gitlab.CONFIG).exists()
    spec.write_text(MINIMAL.read_text(encoding="utf-8")
                    + "backends:\n  gitlab:\n    default_branch: XRelease\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["compile", str(spec), "--backend", "gitlab"]).exit_code == 0


def test_the_update_job_runs_only_from_its_schedule_and_pushes_with_merge_request_options(
) -> None:
    multi = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    document = emitted(multi, "gitlab").document()
    assert gitlab.UPDATE_JOB not in emitted(MINIMAL, "gitlab").document()  # not asked for
    job = document[gitlab.UPDATE_JOB]
    assert job["rules"] == [{"if": gitlab.UPDATE_SCHEDULE}]
    script = job["script"]
    assert "-o merge_request.create" in script
    assert '"password=$KVC_UPDATE_TOKEN"' in script  # from the environment, not argv
    for name in (gitlab.PLAN_JOB, gitlab.TRIGGER_JOB):
        assert document[name]["rules"][0] == {"if": gitlab.UPDATE_SCHEDULE, "when": "never"}


def test_a_pipeline_over_the_size_limit_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(MINIMAL.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(gitlab, "MAX_YAML_BYTES", 4000)
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "gitlab"])
    assert result.exit_code == 1, result.output
    assert "kvc-plan/pipeline.yml (every image) would be" in result.output
    assert "max_yaml_size_bytes" in result.output and "[unsupported]" in result.output
    assert not (tmp_path / ".gitlab-ci.yml").exists()


# -- the plan job, run ---------------------------------------------------------------------

STUB_PLAN = """\
#!/usr/bin/env bash
set -euo pipefail
mkdir -p "$KVC_PLAN_DIR"
printf '%s' "$KVC_STUB_RUN" > "$KVC_PLAN_DIR/run.txt"
printf '%s' "${KVC_STUB_REBUILD:-}" > "$KVC_PLAN_DIR/rebuild.txt"
"""


@pytest.fixture(scope=per_module)
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gitlab")
    spec = root / "kvc.yaml"
    multi = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    spec.write_text(multi.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "gitlab"])
    assert result.exit_code == 0, result.output
    (root / ".kvc/stages/plan.sh").write_text(STUB_PLAN, encoding="utf-8")
    return root


def run_plan_job(root: Path, run: str, rebuild: str = "") -> subprocess.CompletedProcess[str]:
    job = YAML(typ="safe").load((root / gitlab.CONFIG).read_text())[gitlab.PLAN_JOB]
    script = "set -eo pipefail\n" + job["script"]
    env = {**os.environ, **job["variables"], "KVC_STUB_RUN": run, "KVC_STUB_REBUILD": rebuild,
           "CI_PIPELINE_ID": "7"}
    return subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                          text=True, check=False, timeout=60)


def images(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / gitlab.IMAGES).glob("*.yml"))


def child_of(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load((root / gitlab.CHILD).read_text())
    return document


def test_the_plan_job_writes_a_child_of_exactly_the_images_that_run(tree: Path) -> None:
    slugs = images(tree)
    assert len(slugs) >= 2
    result = run_plan_job(tree, f"{slugs[1]}\n")
    assert result.returncode == 0, result.stderr
    child = child_of(tree)
    own = YAML(typ="safe").load((tree / gitlab.IMAGES / f"{slugs[1]}.yml").read_text())
    assert child == {"stages": gitlab.STAGES, **own, "variables": {"KVC_REBUILD": ","}}


def test_every_image_when_all_run(tree: Path) -> None:
    slugs = images(tree)
    assert run_plan_job(tree, "\n".join(slugs)).returncode == 0  # no final newline
    child = child_of(tree)
    for slug in slugs:
        own = YAML(typ="safe").load((tree / gitlab.IMAGES / f"{slug}.yml").read_text())
        assert own.items() <= child.items()
    result = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"),
                             "--builtin-schema", "vendor.gitlab-ci", str(tree / gitlab.CHILD)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_image_to_run_is_still_a_valid_child(tree: Path) -> None:
    result = run_plan_job(tree, "")
    assert result.returncode == 0, result.stderr
    child = child_of(tree)
    assert set(child) == {"stages", "kvc-nothing-to-run", "variables"}
    assert "0 image(s)" in result.stdout


def test_blank_lines_in_run_txt_are_no_images(tree: Path) -> None:
    assert run_plan_job(tree, f"\n{images(tree)[0]}\n\n").returncode == 0
    assert set(child_of(tree)) - {"stages", "variables"} == set(
        YAML(typ="safe").load((tree / gitlab.IMAGES / f"{images(tree)[0]}.yml").read_text()))


@pytest.mark.parametrize("line", ["../../etc/passwd", "$(touch x)", "a b", "no-such-image"])
def test_a_name_that_is_no_image_fails_the_plan_job(tree: Path, line: str) -> None:
    result = run_plan_job(tree, f"{images(tree)[0]}\n{line}\n")
    assert result.returncode != 0
    assert "kvc: run.txt names" in result.stderr
    assert not (tree / "x").exists()


def test_gitlab_registry_falls_back_to_the_job_token(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(MINIMAL.read_text(encoding="utf-8").replace(
        "registry: ghcr.io/example", "registry: registry.gitlab.com/group/project"),
        encoding="utf-8")
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "gitlab"])
    assert result.exit_code == 0, result.output
    jobs = YAML(typ="safe").load((tmp_path / gitlab.IMAGES / "debian-12.yml").read_text())
    push = 'export KVC_REGISTRY_PASSWORD="${KVC_REGISTRY_PASSWORD:-$CI_REGISTRY_PASSWORD}"'
    pull = 'export KVC_PULL_PASSWORD="${KVC_PULL_PASSWORD:-$CI_REGISTRY_PASSWORD}"'
    assert push in jobs["containerize-debian-12"]["script"]
    assert push in jobs["publish-debian-12"]["script"]
    assert pull in jobs["test-debian-12-amd64"]["script"]
    assert "CI_REGISTRY" not in jobs["build-debian-12-amd64"]["script"]
    assert "CI_REGISTRY" not in emitted(MINIMAL, "gitlab").child_jobs()[
        "containerize-debian-12"]["script"]  # ghcr.io: only the variables you set
    # the plan reads the private image's label with the same pull access, never push
    parent = YAML(typ="safe").load((tmp_path / ".gitlab-ci.yml").read_text())
    plan = parent[gitlab.PLAN_JOB]
    assert pull in plan["script"] and "KVC_REGISTRY_" not in plan["script"]
    assert plan["variables"]["KVC_PULL_REGISTRY"] == "registry.gitlab.com"
    assert plan["script"].index(pull) < plan["script"].index("bash .kvc/stages/plan.sh")


@pytest.mark.parametrize("spec", spec_params())
def test_one_publish_per_image_at_a_time(spec: Path) -> None:
    out = emitted(spec, "gitlab")
    for job in out.pipeline.jobs:
        group = out.child_jobs()[job.id].get("resource_group")
        assert group == (job.id if job.stage is Stage.PUBLISH else None)


def test_every_job_script_passes_shellcheck(tmp_path: Path) -> None:
    """The scripts kvc writes into the files (plan, update, tool setup), not only stages.

    SC2016 (info) is left out: the update job's single quotes are meant (a
    credential helper that reads the token when git runs it, a title with
    backticks).
    """
    require("shellcheck")
    paths = []
    for spec in SPECS:
        out = emitted(spec, "gitlab")
        parent = {name: job for name, job in out.document().items()
                  if isinstance(job, dict) and "script" in job}
        for name, job in {**out.child_jobs(), **parent}.items():
            path = tmp_path / f"{spec.stem}-{name}.sh"
            path.write_text("#!/usr/bin/env bash\n" + job["script"], encoding="utf-8")
            paths.append(path)
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/usr/bin/env bash\nfor f in $(ls); do echo $f; done\n", encoding="utf-8")
    result = subprocess.run(["shellcheck", "-e", "SC2016", *map(str, paths)],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout
    assert subprocess.run(["shellcheck", str(broken)], capture_output=True,
                          check=False).returncode == 1


def test_forced_and_refreshed_images_reach_the_child_as_kvc_rebuild(tree: Path) -> None:
    """The plan's rebuild.txt becomes the child pipeline's global KVC_REBUILD, which the
    cached build jobs' run command reads (a cache hit no longer skips their build)."""
    slugs = images(tree)
    result = run_plan_job(tree, f"{slugs[0]}\n{slugs[1]}\n", rebuild=f"{slugs[1]}\nbad slug!\n")
    assert result.returncode == 0, result.stderr
    child = child_of(tree)
    assert child["variables"] == {"KVC_REBUILD": f",{slugs[1]},"}
    builds = [job for name, job in child.items() if name.startswith("build-")]
    assert builds and all("cache" in job for job in builds)
    assert all(f"*,{slugs[1]},*" in job["script"] for name, job in child.items()
               if name.startswith("build-") and slugs[1] in name)
    result = run_plan_job(tree, f"{slugs[0]}\n")
    assert child_of(tree)["variables"] == {"KVC_REBUILD": ","}


@pytest.mark.parametrize("snippet", [gitlab.INSTALL_BUILDX, gitlab.INSTALL_DOCKER_CLI],
                         ids=["buildx", "docker-cli"])
def test_docker_installs_bring_the_ca_bundle(tmp_path: Path, snippet: str) -> None:
    """The job image has no CA certificates and docker.io only recommends them:
    the install names them, or every registry call fails TLS verification."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    (bindir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    (bindir / "apt-get").chmod(0o755)
    # no docker on PATH: both snippets install it
    result = subprocess.run(["bash", "-ec", snippet], env={"PATH": f"{bindir}:/usr/bin:/bin"},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    install = log.read_text().splitlines()[-1].split()
    assert install[0] == "install"
    assert "ca-certificates" in install


def test_compile_warns_once_about_the_artifact_size_limit(tmp_path: Path) -> None:
    """A build's disk is far above a self-managed instance's default 100 MB limit."""
    spec = tmp_path / "kvc.yaml"
    spec.write_text(MINIMAL.read_text(encoding="utf-8"), encoding="utf-8")
    runner = CliRunner()
    compiled = runner.invoke(main, ["compile", str(spec), "--backend", "gitlab"])
    assert compiled.exit_code == 0, compiled.output
    (warning,) = [line for line in compiled.output.splitlines() if "[gitlab-artifact-size]" in line]
    assert warning.startswith(f"{spec}:1:1: warning:")
    assert "Maximum artifacts size" in warning and "1 GB" in warning
    again = runner.invoke(main, ["compile", str(spec), "--backend", "gitlab"])  # from the cache
    assert again.output.count("[gitlab-artifact-size]") == 1
    for other in ("github", "circleci"):
        assert "[gitlab-artifact-size]" not in runner.invoke(
            main, ["compile", str(spec), "--backend", other]).output



def test_the_artifact_size_warning_stands_at_the_gitlab_block_in_these_words() -> None:
    """With a ``backends.gitlab`` block the warning points at its key; its text is what
    an administrator acts on, so it is pinned word for word."""
    text = MINIMAL.read_text(encoding="utf-8") + "backends:\n  gitlab:\n    tags: {}\n"
    row = text.splitlines().index("  gitlab:") + 1
    (warning,) = [w for w in gitlab.GitLab.warnings(resolve_text(text))
                  if "[gitlab-artifact-size]" in w]
    assert warning == (
        f"kvc.yaml:{row}:3: warning: every GitLab build job uploads its disk image as an "
        "artifact, larger than a self-managed instance's default Maximum artifacts size of "
        "100 MB: an administrator must raise it (Admin area > Settings > CI/CD > Continuous "
        "Integration and Deployment, or per group or project in Settings > CI/CD > General "
        "pipelines); GitLab.com allows 1 GB per job, and a merge request's containerize job "
        "uploads one archive holding every arch's disk (docs/backends/gitlab.md) "
        "[gitlab-artifact-size]")

def test_each_platform_limit_is_reached_not_exceeded() -> None:
    """Exactly at GitLab's size and depth limits compiles, one less is refused; a job
    over the needs limit is refused at its own position in the spec."""
    spec = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    resolved = load(spec)
    source = EmitInput(build_pipeline(resolved), spec.name, resolved.spec.backends or Backends())
    files = gitlab.emit(source)
    child = len(files[gitlab.CHILD_HEAD].encode()) + sum(
        len(text.encode()) for path, text in files.items() if path.startswith(gitlab.IMAGES))
    documents = [YAML(typ="safe").load(text) for text in files.values()]
    def nesting(node: object) -> int:
        children = (list(node.values()) if isinstance(node, dict) else
                    node if isinstance(node, list) else None)
        return 0 if children is None else 1 + max(map(nesting, children), default=0)

    depth = max(nesting(document) for document in documents)
    for name, exact, message in (
            ("MAX_YAML_BYTES", max(child, len(files[gitlab.CONFIG].encode())), "would be"),
            ("MAX_YAML_DEPTH", depth, "nests deeper than")):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gitlab, name, exact)
            assert gitlab.emit(source) == files, name
            patch.setattr(gitlab, name, exact - 1)
            with pytest.raises(SpecError, match=message):
                gitlab.emit(source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gitlab, "MAX_NEEDS", 1)
        with pytest.raises(SpecError) as refused:
            gitlab.emit(source)
    jobs = {job.id: job for job in source.pipeline.jobs}
    assert refused.value.diagnostics
    for diagnostic in refused.value.diagnostics:
        job_id, _, rest = diagnostic.message.partition(" needs more than 1 jobs, ")
        assert rest == "GitLab's limit for one job's needs", diagnostic
        assert diagnostic.pos == jobs[job_id].origin, diagnostic


@pytest.mark.parametrize("spec", spec_params())
def test_jobs_know_they_publish_only_on_the_default_branch(spec: Path) -> None:
    """The PUBLISHES runtime value: the configured branch, else GitLab's default branch."""
    out = emitted(spec, "gitlab")
    backends = out.resolved.spec.backends
    branch = backends.gitlab.default_branch if backends and backends.gitlab else None
    target = shlex.quote(branch) if branch is not None else '"$CI_DEFAULT_BRANCH"'
    texts = "".join(out.files.values())
    found = set(re.findall(r'\[ "\$\{CI_COMMIT_BRANCH:-\}" = (\S+) \]', texts))
    assert found == {target}
