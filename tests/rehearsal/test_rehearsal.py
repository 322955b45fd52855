"""Rehearse the emitted pipelines end to end, for every backend.

Each run executes the files `kvc compile` wrote (not the IR) on local
folders with fake tools (see world.py, github.py, circleci.py, gitlab.py,
fake.sh), then
checks what a first push depends on: every file a job reads comes from a job
upstream of it, the digest publish promotes is the one containerize staged
and every test booted, and re-running failed jobs goes green.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvc.backends.gitlab import INSTALL_COSIGN
from tests.rehearsal.circleci import CircleRun
from tests.rehearsal.conftest import BACKENDS, Compiled
from tests.rehearsal.github import GitHubRun
from tests.rehearsal.gitlab import GitLabRun, Variable
from tests.rehearsal.world import RehearsalError, World, ancestors, provenance_violations

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

CREDS = {"KVC_REGISTRY_USER": "robot", "KVC_REGISTRY_PASSWORD": "s3cret"}
# The CircleCI cosign install verifies a download against the real binary's
# sha256, which no offline fake can match; cosign is a fake tool on PATH.
REPLACED = {"Install cosign": "the fake cosign is on PATH (its pinned download cannot be faked)"}
# The same for GitLab's script block, matched as emitted.
GITLAB_REPLACED = {INSTALL_COSIGN: "echo 'the fake cosign is on PATH'\n"}
# GitLab: protected, masked, scoped to the publish environment (docs/backends/gitlab.md).
GITLAB_VARIABLES = {k: Variable(v, protected=True, environment="kvc-publish")
                    for k, v in CREDS.items()}
Run = GitHubRun | CircleRun | GitLabRun
Start = Callable[..., tuple[World, Run]]


@pytest.fixture(scope="module")
def start(
    compiled: Callable[[str, str], Compiled], tmp_path_factory: pytest.TempPathFactory
) -> Start:
    """start(spec, backend, credentials=True) -> (world, run) before its first run."""

    def make(spec: str, backend: str, credentials: bool = True) -> tuple[World, Run]:
        c = compiled(spec, backend)
        world = c.world(tmp_path_factory.mktemp(f"run-{spec}-{backend}"))
        return world, new_run(world, c, credentials)

    return make


def new_run(world: World, c: Compiled, credentials: bool = True, n: int = 1) -> Run:
    """Pipeline number N of the compiled tree C in WORLD (a push, or a PR without secrets)."""
    creds = CREDS if credentials else {}
    if c.backend == "github":
        event = "push" if credentials else "pull_request"
        # Without credentials: a pull request from a fork (no secrets, and
        # the workflow withholds GITHUB_TOKEN from a fork's pushes).
        return GitHubRun(world, c.pipeline, event=event, secrets=creds, fork=not credentials,
                         run_id=str(4241 + n))
    branch = "main" if credentials else "feature"
    if c.backend == "gitlab":
        # Without credentials: a merge request pipeline of an unprotected branch,
        # which protected variables do not reach.
        return GitLabRun(world, c.pipeline, branch=branch, variables=GITLAB_VARIABLES,
                         source="push" if credentials else "merge_request_event",
                         replace=GITLAB_REPLACED, pipeline=1000 + n)
    return CircleRun(world, c.pipeline, branch=branch, contexts={"kvc-publish": creds},
                     replace_steps=REPLACED, pipeline=f"p{n}")


@pytest.fixture(scope="module")
def green(start: Start) -> Callable[[str, str], tuple[World, Run]]:
    """One full run per (spec, backend) with registry credentials, shared by the checks."""
    done: dict[tuple[str, str], tuple[World, Run]] = {}

    def get(spec: str, backend: str) -> tuple[World, Run]:
        if (spec, backend) not in done:
            world, run = start(spec, backend)
            run.run()
            done[(spec, backend)] = (world, run)
        return done[(spec, backend)]

    return get


def latest(world: World, key: str) -> dict[str, Any]:
    """The last value each job established for KEY."""
    return {job: value for job, _, value in world.facts(key)}


def failures(run: Run) -> str:
    return "\n".join(f"{r.job} ({r.run}): {r.log[-2:]}" for r in run.history
                     if r.status != "success")


def assert_all_green(run: Run) -> None:
    statuses = {j: r.status for j, r in run.results.items()}
    assert set(statuses) == set(run.needs), "every job of the workflow ran"
    assert set(statuses.values()) == {"success"}, failures(run)


def assert_digest_chain(world: World, run: Run) -> None:
    """publish promotes exactly what containerize staged and every test booted."""
    staged, tested, promoted = (latest(world, k) for k in ("staged", "tested", "promoted"))
    publishes = [j for j in run.needs if j.startswith("publish-")]
    assert publishes
    for publish in publishes:
        upstream = ancestors(run.needs, publish)
        (containerize,) = [a for a in upstream if a.startswith("containerize-")]
        digest = staged[containerize]
        assert promoted[publish] == digest
        tests = [t for t in run.needs[publish] if t.startswith("test-")]
        assert tests, f"{publish} needs its tests"
        for test in tests:
            assert tested[test] == [digest], f"{test} booted another image than {publish} promotes"


SPECS = ("minimal", "multi-distro", "sign")
CASES = [pytest.param(s, b, id=f"{s}-{b}") for s in SPECS for b in BACKENDS]


@pytest.mark.parametrize(("spec", "backend"), CASES)
def test_pipeline_goes_green(
    green: Callable[..., tuple[World, Run]], spec: str, backend: str
) -> None:
    _, run = green(spec, backend)
    assert_all_green(run)


@pytest.mark.parametrize(("spec", "backend"), CASES)
def test_every_read_comes_from_an_upstream_job(
    green: Callable[..., tuple[World, Run]], spec: str, backend: str
) -> None:
    _, run = green(spec, backend)
    assert provenance_violations(run.needs, run.history) == []
    for result in run.history:
        if result.job.startswith(("containerize-", "test-", "publish-")):
            assert result.reads, (f"{result.job} ({result.status}) read nothing from "
                                  f"upstream (detection broken?)\n{failures(run)}")


@pytest.mark.parametrize(("spec", "backend"), CASES)
def test_publish_promotes_the_digest_the_tests_ran(
    green: Callable[..., tuple[World, Run]], spec: str, backend: str
) -> None:
    world, run = green(spec, backend)
    assert_digest_chain(world, run)


# The flags publish gives `cosign verify`, from each harness's built-in variables.
VERIFY_IDENTITY = {
    "github": ["--certificate-oidc-issuer", "https://token.actions.githubusercontent.com",
               "--certificate-identity",
               "https://github.com/example/images/.github/workflows/kvc.yml@refs/heads/main"],
    "circleci": ["--certificate-oidc-issuer",
                 "https://oidc.circleci.com/org/00000000-0000-4000-8000-00000000000a",
                 "--certificate-identity-regexp", r"^https://circleci\.com/api/v2/projects/"
                 "00000000-0000-4000-8000-00000000000b/pipeline-definitions/"],
    # The top-level definition, even from the child pipeline (kvc/backends/gitlab.py).
    "gitlab": ["--certificate-oidc-issuer", "https://gitlab.com", "--certificate-identity",
               "https://gitlab.com/example/images//.gitlab-ci.yml@refs/heads/main"],
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_signing_signs_the_promoted_digest(
    green: Callable[..., tuple[World, Run]], backend: str
) -> None:
    world, _ = green("sign", backend)
    promoted = latest(world, "promoted")["publish-debian-12"]
    signed = [(job, ref) for job, _, ref in world.facts("signed")]
    assert signed == [("publish-debian-12", f"ghcr.io/example/debian@{promoted}")]
    calls = world.calls("cosign")
    if backend != "github":  # keyless: the OIDC token reached cosign (BASH_ENV, id_tokens)
        assert calls[0]["facts"]["oidc"] is True
    # Then the signature is verified against this run's identity (docs/verifying.md).
    assert [c["facts"].get("verified") for c in calls[1:]] == [" ".join(
        [*VERIFY_IDENTITY[backend], f"ghcr.io/example/debian@{promoted}"])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_credentials_the_tests_boot_the_staged_archive(start: Start, backend: str) -> None:
    world, run = start("minimal", backend, credentials=False)
    run.run()
    assert {j: r.status for j, r in run.results.items() if j.startswith("test-")} == {
        "test-debian-12-amd64": "success", "test-debian-12-arm64": "success"}
    (digest,) = latest(world, "staged").values()
    assert all(v == [digest] for v in latest(world, "tested").values())
    if backend == "gitlab":  # the qemu mode on hosted runners: skopeo reads the archive
        copies = [c for c in world.calls("skopeo") if c["job"] == "test-debian-12-amd64"]
        assert [c["facts"].get("copied") for c in copies] == [digest]
        assert copies[0]["argv"][-2].startswith("oci-archive:")
    else:
        assert world.facts("loaded"), "the archive went through kind load"
    assert not world.facts("promoted")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_pipeline_takes_the_builds_from_the_cache(
    compiled: Callable[[str, str], Compiled], tmp_path: Path, backend: str
) -> None:
    c = compiled("minimal", backend)
    world = c.world(tmp_path)
    first, second = new_run(world, c, n=1), new_run(world, c, n=2)
    first.run()
    second.run()
    assert_all_green(second)
    builds = {r.run for r in second.history if r.job.startswith("build-")}
    assert not [f for f in world.facts("downloaded")
                if f[0].startswith("build-") and f[1] in builds], "no rebuild"
    cached = {r.job: r.reads for r in second.history if r.job.startswith("build-")}
    assert all(cached.values()), "the build outputs came from the cache"
    assert provenance_violations(second.needs, second.history) == []
    staged = [d for _, _, d in world.facts("staged")]
    assert len(staged) == 2 and staged[0] == staged[1]
    assert_digest_chain(world, second)


def rerun(run: Run) -> None:
    if isinstance(run, GitHubRun):
        run.rerun_failed()
    elif isinstance(run, GitLabRun):
        run.retry_failed()
    else:
        run.rerun_from_failed()


# A call the amd64 test makes once, never retried: GitLab's hosted-runner default
# is the qemu mode (its boot: `qemu-system-x86_64 -machine ...`), the others run
# KubeVirt, where `kubectl create` (the user-data Secret) fails the job at once; a
# failed `kubectl wait` would not: waits are retried in slices until the deadline.
FAIL_TEST = {"github": ("kubectl", "create"), "circleci": ("kubectl", "create"),
             "gitlab": ("qemu-system-x86_64", "-machine")}


def fail_first_test(world: World, run: Run) -> None:
    backend = "github" if isinstance(run, GitHubRun) else (
        "gitlab" if isinstance(run, GitLabRun) else "circleci")
    world.fail(*FAIL_TEST[backend], "test-debian-12-amd64")
    run.run()
    assert run.results["test-debian-12-amd64"].status == "failure"
    assert run.results["test-debian-12-arm64"].status == "success"
    assert "publish-debian-12" not in run.results or run.results["publish-debian-12"].status == (
        "skipped")


def test_github_rerun_of_failed_jobs_goes_green(start: Start) -> None:
    world, run = start("minimal", "github")
    assert isinstance(run, GitHubRun)
    fail_first_test(world, run)
    run.rerun_failed()
    assert (run.run_id, run.attempt) == ("4242", 2)
    reran = {r.job for r in run.history if r.run == "4242-attempt-2"}
    assert reran == {"test-debian-12-amd64", "publish-debian-12"}
    assert_all_green(run)
    assert_digest_chain(world, run)
    assert provenance_violations(run.needs, run.history) == []


def test_circleci_rerun_from_failed_goes_green(start: Start) -> None:
    world, run = start("minimal", "circleci")
    assert isinstance(run, CircleRun)
    fail_first_test(world, run)
    first = run.workflow_id
    run.rerun_from_failed()
    assert run.workflow_id != first and run.workspace_id == "p1-ws"
    reran = {r.job for r in run.history if r.run == run.workflow_id}
    assert reran == {"test-debian-12-amd64", "publish-debian-12"}
    assert_all_green(run)
    assert_digest_chain(world, run)
    assert provenance_violations(run.needs, run.history) == []


def test_gitlab_retry_of_the_failed_job_goes_green(start: Start) -> None:
    world, run = start("minimal", "gitlab")
    assert isinstance(run, GitLabRun)
    fail_first_test(world, run)
    assert run.results["kvc-images"].status == "failure", "strategy: depend mirrors the child"
    before = {j: r.run for j, r in run.results.items()}
    run.retry_failed()
    reran = {j for j, r in run.results.items() if r.run != before[j]}
    assert reran == {"test-debian-12-amd64", "publish-debian-12"}
    assert_all_green(run)
    assert_digest_chain(world, run)
    assert provenance_violations(run.needs, run.history) == []


@pytest.mark.parametrize("backend", ["circleci", "gitlab"])
def test_a_retry_keeps_the_staged_archive(start: Start, backend: str) -> None:
    world, run = start("minimal", backend, credentials=False)
    fail_first_test(world, run)
    rerun(run)
    assert run.results["test-debian-12-amd64"].status == "success", failures(run)
    (digest,) = latest(world, "staged").values()
    assert latest(world, "tested")["test-debian-12-amd64"] == [digest]


def test_rehearsal_refuses_what_it_does_not_understand(
    compiled: Callable[[str, str], Compiled], tmp_path: Path
) -> None:
    gh = compiled("minimal", "github")
    text = gh.pipeline.read_text()
    cases = {
        "action": text.replace("actions/cache@", "actions/cachex@", 1),
        "function": text.replace("steps.cache.outputs.cache-hit != 'true'",
                                 "startsWith(steps.cache.outputs.cache-hit, 'x')", 1),
        "context": text.replace("github.event_name", "github.event_nam", 1),
        "step key": text.replace("timeout-minutes: 55", "continue-on-error: true", 1),
    }
    for name, mutated in cases.items():
        assert mutated != text, name
        path = tmp_path / f"{name}.yml"
        path.write_text(mutated)
        world = gh.world(tmp_path / name)
        with pytest.raises(RehearsalError):
            GitHubRun(world, path, secrets=CREDS).run()
    cc = compiled("minimal", "circleci")
    path = tmp_path / "config.yml"
    path.write_text(cc.pipeline.read_text().replace("- store_artifacts:", "- store_test_results:"))
    with pytest.raises(RehearsalError, match="store_test_results"):
        CircleRun(cc.world(tmp_path / "cc"), path, contexts={"kvc-publish": CREDS}).run()
    # The setup config: another orb step, or a continuation that never happens.
    setup = cc.tree / ".circleci" / "config.yml"
    for name, (old, new, match) in {
        "orb": (r"continuation/continue:", "continuation/finish:", "continuation/finish"),
        "no continuation": (r" *- continuation/continue:\n( {8,}.*\n)+", "", "did not continue"),
    }.items():
        path = tmp_path / f"setup-{name.replace(' ', '-')}.yml"
        mutated = re.sub(old, new, setup.read_text(), count=1)
        assert mutated != setup.read_text(), name
        path.write_text(mutated)
        with pytest.raises(RehearsalError, match=match):
            CircleRun(cc.world(tmp_path / f"cc-{name}"), path,
                      contexts={"kvc-publish": CREDS}).run()


def plan_rows(c: Compiled) -> list[list[str]]:
    """The compiled .kvc/plan.tsv: slug, image, repository, fingerprint, refresh, tags."""
    text = (c.tree / ".kvc" / "plan.tsv").read_text()
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def publish_unchanged(world: World, c: Compiled) -> None:
    """Serve each image on the fake registry API with the label plan.sh compares.

    The manifest under the first tag, then its config blob holding the
    `dev.kvc.fingerprint` label (opencontainers/distribution-spec@v1.1.1:spec.md:150-174).
    """
    for _, _, repo, fingerprint, _, tags in plan_rows(c):
        host, name = repo.split("/", 1)
        config = json.dumps({"config": {"Labels": {"dev.kvc.fingerprint": fingerprint}}}).encode()
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "config": {"digest": digest}}).encode()
        world.serve(f"https://{host}/v2/{name}/manifests/{tags.split(',')[0]}", manifest)
        world.serve(f"https://{host}/v2/{name}/blobs/{digest}", config)


# The jobs of a pipeline that builds nothing: GitLab's child pipeline needs one job.
PLAN_ONLY = {"github": {"plan"}, "circleci": {"plan"},
             "gitlab": {"kvc-plan", "kvc-images", "kvc-nothing-to-run"}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_plan_runs_what_is_not_published_and_skips_what_is(
    compiled: Callable[[str, str], Compiled], green: Callable[..., tuple[World, Run]],
    tmp_path: Path, backend: str,
) -> None:
    c = compiled("minimal", backend)
    world, run = green("minimal", backend)  # nothing published yet: every job ran
    assert_all_green(run)
    (row,) = plan_rows(c)
    host, name = row[2].split("/", 1)
    asked = [v for _, _, v in world.facts("answered")]
    assert f"404 https://{host}/v2/{name}/manifests/{row[5].split(',')[0]}" in asked
    world = c.world(tmp_path)
    publish_unchanged(world, c)
    run = new_run(world, c)
    run.run()
    ran = {j for j, r in run.results.items() if r.status != "skipped"}
    assert ran == PLAN_ONLY[backend], "an unchanged image runs no job after the plan"
    assert {run.results[j].status for j in ran} == {"success"}
    assert not world.facts("staged")


def test_github_attests_the_promoted_digest(green: Callable[..., tuple[World, Run]]) -> None:
    world, run = green("attest", "github")
    assert isinstance(run, GitHubRun)
    assert_all_green(run)
    promoted = latest(world, "promoted")["publish-debian-12"]
    assert run.attestations == [("publish-debian-12", "ghcr.io/example/debian", promoted)]


def test_gitlab_rehearsal_refuses_what_it_does_not_understand(
    compiled: Callable[[str, str], Compiled], tmp_path: Path
) -> None:
    c = compiled("minimal", "gitlab")
    parent = c.pipeline.read_text()
    cases = {
        "job keyword": (parent, "  stage: plan\n", "  stage: plan\n  retry: 2\n", "retry"),
        "rule operator": (parent, '$KVC_SCHEDULE == "update"', '$KVC_SCHEDULE =~ /update/',
                          "cannot parse"),
        "rule when": (parent, "    - when: on_success\n", "    - when: manual\n", "manual"),
        "global keyword": (parent, "stages:\n", "default:\n  image: x\nstages:\n", "default"),
    }
    for name, (original, old, new, match) in cases.items():
        mutated = original.replace(old, new, 1)
        assert mutated != original, name
        path = tmp_path / f"{name.replace(' ', '-')}.yml"
        path.write_text(mutated)
        run = GitLabRun(c.world(tmp_path / name.replace(" ", "-")), path,
                        variables=GITLAB_VARIABLES, replace=GITLAB_REPLACED)
        with pytest.raises(RehearsalError, match=match):
            run.run()
    # The child pipeline too: a keyword in an image's file reaches the harness
    # through the plan job's artifact.
    image = c.tree / ".gitlab" / "kvc" / "images" / "debian-12.yml"
    text = image.read_text()
    world = c.world(tmp_path / "child")
    tree = tmp_path / "child-tree"
    shutil.copytree(c.tree, tree, symlinks=True)
    (tree / ".gitlab" / "kvc" / "images" / "debian-12.yml").write_text(
        text.replace("  stage: build\n", "  stage: build\n  dependencies: []\n", 1))
    world.repo = tree
    with pytest.raises(RehearsalError, match="dependencies"):
        GitLabRun(world, tree / ".gitlab-ci.yml", variables=GITLAB_VARIABLES,
                  replace=GITLAB_REPLACED).run()


@pytest.mark.parametrize("branch", ["feature", "main"])
def test_gitlab_merge_request_pipeline_never_publishes(
    compiled: Callable[[str, str], Compiled], tmp_path: Path, branch: str
) -> None:
    """Not even a merge request from the default branch: its child sees the parent's source."""
    c = compiled("minimal", "gitlab")
    run = GitLabRun(c.world(tmp_path), c.pipeline, source="merge_request_event", branch=branch,
                    variables=GITLAB_VARIABLES, replace=GITLAB_REPLACED)
    run.run()
    assert "publish-debian-12" not in run.results, "publish's rules drop it from the child"
    assert "test-debian-12-amd64" in run.results
    assert {r.status for r in run.results.values()} == {"success"}, failures(run)


def test_gitlab_tagged_runners_run_kind_against_docker_in_docker(
    green: Callable[..., tuple[World, Run]],
) -> None:
    """The test job keeps `auto`: kind's API server must be reachable through the service."""
    world, run = green("gitlab-tagged", "gitlab")
    assert_all_green(run)
    assert_digest_chain(world, run)
    assert provenance_violations(run.needs, run.history) == []
    assert [(job, server) for job, _, server in world.facts("api_server")] == [
        ("test-debian-12-amd64", "https://docker:6443")]
    assert [c["job"] for c in world.calls("skopeo") if c["argv"][0] == "copy"] == [
        "test-debian-12-arm64"], "arm64 without KVM boots with qemu"
