"""The GitHub Actions workflow: runners, artifacts, permissions, gating, pinning, secrets.

Expected values are written out here (not read from kvc.backends.github) so a
changed default is a visible test change, not a silent one.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kvc.backends.actions import ACTIONS, Action
from kvc.cli import main
from kvc.ir import Job, Stage
from kvc.spec.models import GitHubBackend
from tests.backends.ci_syntax import github_env, github_expressions, strings
from tests.backends.conftest import (
    FIXTURE_SPECS,
    SPECS,
    Emitted,
    case_id,
    cases,
    emitted,
    parse_yaml,
)
from tests.backends.expressions import github_if

GITHUB = cases("github")
DEFAULT_RUNS_ON = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}
OVERRIDES = next(s for s in FIXTURE_SPECS if s.stem == "overrides")


def settings(out: Emitted) -> GitHubBackend:
    backends = out.resolved.spec.backends
    return (backends.github if backends else None) or GitHubBackend()


def jobs(out: Emitted) -> dict[str, Any]:
    result: dict[str, Any] = out.document()["jobs"]
    return result


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(f"{ACTIONS[action].repo}@")]


def workflows(out: Emitted) -> Iterator[tuple[str, Any]]:
    """Every workflow the backend emits (the image pipeline and any others)."""
    for path, text in sorted(out.files.items()):
        assert path.startswith(".github/workflows/") and path.endswith(".yml"), path
        yield path, parse_yaml(text)


# -- runners -----------------------------------------------------------------


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_each_job_runs_on_the_runner_of_its_arch(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    runs_on = dict(DEFAULT_RUNS_ON)
    runs_on.update((settings(out).runs_on or {}).items())
    emitted_jobs = jobs(out)
    for job in out.pipeline.jobs:
        assert emitted_jobs[job.id]["runs-on"] == runs_on[job.runner], job.id


def test_arm64_jobs_run_on_arm_runners_by_default() -> None:
    out = emitted(out_spec("example-minimal"), "github")
    arm = [j for j in out.pipeline.jobs if j.arch == "arm64"]
    assert {j.stage for j in arm} == {Stage.BUILD, Stage.TEST}
    for job in arm:
        assert jobs(out)[job.id]["runs-on"] == "ubuntu-24.04-arm", job.id
    for job in out.pipeline.jobs:
        if job.arch != "arm64":
            assert jobs(out)[job.id]["runs-on"] == "ubuntu-24.04", job.id


def test_builds_without_guest_code_run_on_amd64_for_every_arch() -> None:
    out = emitted(OVERRIDES, "github")
    job = jobs(out)["build-fedora-coreos-41-20241215-3-0-arm64"]
    assert job["runs-on"] == "self-hosted-x64"
    assert job["env"]["KVC_ARCH"] == "arm64"


def out_spec(name: str) -> Path:
    return next(s for s in SPECS if case_id(s) == name)


# -- overrides ---------------------------------------------------------------


def test_backend_overrides_are_honoured() -> None:
    out = emitted(OVERRIDES, "github")
    assert out.main_path == ".github/workflows/images.yml"
    document = out.document()
    assert document["name"] == "images"
    assert document["on"]["push"]["branches"] == ["release"]
    runners = {job["runs-on"] for job in document["jobs"].values()}
    assert runners == {"self-hosted-x64", "self-hosted-arm"}
    for job_id, job in document["jobs"].items():
        if job_id.startswith("publish-"):
            assert job["environment"] == "production"
            assert "refs/heads/release" in job["if"]
        else:
            assert "environment" not in job, job_id


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_push_trigger_is_the_default_branch_as_a_list(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    document = out.document()
    assert document["on"]["push"]["branches"] == [settings(out).default_branch or "main"]
    assert "pull_request" in document["on"]


# -- env, timeouts, cache ----------------------------------------------------


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_job_env_and_timeout_are_the_irs_literally(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        emitted_job = jobs(out)[job.id]
        expected = {**job.env_dict(), **({"KVC_FINGERPRINT": job.fingerprint}
                                          if job.fingerprint else {})}
        # Strings stay strings ('12'); read as GitHub would, so an unescaped ${{ fails.
        assert github_env(emitted_job["env"]) == expected, job.id
        assert emitted_job["timeout-minutes"] == job.timeout_minutes, job.id
        runs = [s for s in emitted_job["steps"] if "run" in s]
        exports = RUNTIME_EXPORTS
        if job.stage is Stage.PUBLISH:
            exports += PUBLISH_EXPORTS + (SIGN_EXPORTS if job.needs_identity_token else "")
        if job.stage is Stage.CONTAINERIZE:  # the same rule as publish's if:
            branch = (out.resolved.spec.backends and out.resolved.spec.backends.github
                      and out.resolved.spec.backends.github.default_branch) or "main"
            exports += ('if [ "$GITHUB_EVENT_NAME" != pull_request ] && [ "$GITHUB_REF" = '
                        f'refs/heads/{branch} ]; then export KVC_PUBLISHES=true; '
                        'else export KVC_PUBLISHES=false; fi\n')
        assert [s["run"] for s in runs] == [exports + f"bash {job.script}\n"], job.id


# Contract 1: neutral names from GitHub's default variables, in the run step's shell.
RUNTIME_EXPORTS = """\
export KVC_RUN_ID="$GITHUB_RUN_ID"
export KVC_REVISION="$GITHUB_SHA"
export KVC_SOURCE="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY"
export KVC_SUMMARY_FILE="$GITHUB_STEP_SUMMARY"
"""
# Publish also hands its digest to later steps, and checks what it signed against the
# identity Fulcio certifies for this workflow run (docs/verifying.md).
PUBLISH_EXPORTS = 'export KVC_OUTPUT_FILE="$GITHUB_OUTPUT"\n'
SIGN_EXPORTS = """\
export KVC_SIGN_ISSUER="https://token.actions.githubusercontent.com"
export KVC_SIGN_IDENTITY="$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF"
"""


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_builds_are_cached_by_fingerprint_and_skipped_on_a_hit(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        steps = jobs(out)[job.id]["steps"]
        caches = steps_using(jobs(out)[job.id], "cache")
        if job.cache is None:
            assert not caches, job.id
            continue
        (cache,) = caches
        assert cache["with"] == {"path": job.cache.path, "key": job.cache.key}
        assert job.fingerprint and job.fingerprint in job.cache.key
        (run,) = [s for s in steps if "run" in s]
        assert run["if"] == f"steps.{cache['id']}.outputs.cache-hit != 'true'"
        assert steps.index(cache) < steps.index(run)


# -- artifacts ---------------------------------------------------------------


def artifact_steps(document: dict[str, Any], action: str) -> dict[str, list[tuple[str, str]]]:
    """Artifact name -> [(job id, path)] for every upload or download step."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for job_id, job in document["jobs"].items():
        for step in steps_using(job, action):
            found[step["with"]["name"]].append((job_id, step["with"]["path"]))
    return found


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_artifact_names_are_unique_in_the_run(spec: Path, backend: str) -> None:
    uploads = artifact_steps(emitted(spec, backend).document(), "upload-artifact")
    assert uploads
    duplicated = {name: where for name, where in uploads.items() if len(where) > 1}
    assert not duplicated


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_each_build_artifact_goes_to_exactly_its_containerize_job(spec: Path,
                                                                   backend: str) -> None:
    out = emitted(spec, backend)
    document = out.document()
    uploads = artifact_steps(document, "upload-artifact")
    downloads = artifact_steps(document, "download-artifact")
    containerize = {j.image: j.id for j in out.pipeline.jobs if j.stage is Stage.CONTAINERIZE}
    builds = [j for j in out.pipeline.jobs if j.stage is Stage.BUILD]
    assert builds
    for build in builds:
        (artifact,) = build.produces
        assert uploads[artifact.name] == [(build.id, artifact.path)]
        assert downloads[artifact.name] == [(containerize[build.image], artifact.path)]


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_downloads_are_only_of_artifacts_an_upstream_job_uploads(spec: Path,
                                                                  backend: str) -> None:
    out = emitted(spec, backend)
    document = out.document()
    uploads = artifact_steps(document, "upload-artifact")
    upstream = ancestors(out)
    for name, where in artifact_steps(document, "download-artifact").items():
        ((producer, path),) = uploads[name]
        for job_id, download_path in where:
            assert producer in upstream[job_id], f"{job_id} downloads {name} from {producer}"
            assert download_path == path


def ancestors(out: Emitted) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def visit(job: Job) -> set[str]:
        if job.id not in found:
            found[job.id] = set(job.needs).union(*(visit(out.pipeline.job(n)) for n in job.needs))
        return found[job.id]

    for job in out.pipeline.jobs:
        visit(job)
    return found


# -- permissions and publish gating ------------------------------------------


def signs(out: Emitted, image: str) -> bool:
    return any(b.publish.sign for b in out.resolved.builds if b.image_id == image)


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_permissions_are_read_only_except_what_a_job_uses(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    document = out.document()
    assert document["permissions"] == {"contents": "read"}
    ghcr = out.resolved.spec.registry.startswith("ghcr.io/")
    for job in out.pipeline.jobs:
        emitted_job = document["jobs"][job.id]
        expected: dict[str, str] = {}
        if ghcr and job.stage in {Stage.CONTAINERIZE, Stage.PUBLISH}:
            expected["packages"] = "write"  # the run's own token pushes to ghcr.io
        elif ghcr and job.stage is Stage.TEST:
            expected["packages"] = "read"
        if job.stage is Stage.PUBLISH and signs(out, job.image):
            expected["id-token"] = "write"
        github = out.resolved.spec.backends and out.resolved.spec.backends.github
        if job.stage is Stage.PUBLISH and github and github.attest_provenance:
            expected |= {"id-token": "write", "attestations": "write"}
        if expected:
            assert emitted_job["permissions"] == {"contents": "read", **expected}, job.id
        else:
            assert "permissions" not in emitted_job, job.id


def test_ghcr_is_used_by_some_case_and_not_by_others() -> None:
    """Both credential paths (GITHUB_TOKEN for ghcr.io, secrets elsewhere) are exercised."""
    registries = {emitted(s, "github").resolved.spec.registry.startswith("ghcr.io/")
                  for s in SPECS}
    assert registries == {True, False}


def test_signing_is_exercised() -> None:
    """The fixture has one signing and one non-signing image, so both branches are tested."""
    out = emitted(OVERRIDES, "github")
    publish = [j for j in out.pipeline.jobs if j.stage is Stage.PUBLISH]
    assert {signs(out, j.image) for j in publish} == {True, False}


def evaluate(condition: str, event: str, ref: str) -> bool:
    """Evaluate a publish condition (tests/backends/expressions.py)."""
    return github_if(condition, {"github.event_name": event, "github.ref": ref})


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_publish_runs_only_from_the_default_branch_never_on_pull_requests(
        spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    branch = f"refs/heads/{settings(out).default_branch or 'main'}"
    conditioned = {job_id for job_id, job in jobs(out).items() if "if" in job}
    publish = {j.id for j in out.pipeline.jobs if j.stage is Stage.PUBLISH}
    first = {j.id for j in out.pipeline.jobs if not j.needs}  # gated by the plan instead
    assert conditioned == publish | first
    for job_id in publish:
        condition = jobs(out)[job_id]["if"]
        assert evaluate(condition, "push", branch), condition
        assert evaluate(condition, "workflow_dispatch", branch), condition
        assert not evaluate(condition, "pull_request", branch), condition
        assert not evaluate(condition, "pull_request", "refs/pull/1/merge"), condition
        assert not evaluate(condition, "push", "refs/heads/feature"), condition


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_concurrency_group_is_per_workflow_and_ref(spec: Path, backend: str) -> None:
    concurrency = emitted(spec, backend).document()["concurrency"]
    assert "github.workflow" in concurrency["group"]
    assert "github.ref" in concurrency["group"]
    assert "pull_request" in concurrency["cancel-in-progress"]


# -- every workflow kvc emits: pinning, credentials, injection, secrets --------


USES = re.compile(r"^\s*(?:- )?uses: (?P<repo>[^@\s]+)@(?P<ref>\S+)(?P<rest>.*)$")


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_every_action_is_pinned_to_the_table(spec: Path, backend: str) -> None:
    pinned = {(a.repo, a.sha): a.version for a in ACTIONS.values()}
    for path, text in emitted(spec, backend).files.items():
        lines = [m for m in map(USES.match, text.splitlines()) if m]
        uses_keys = [w for w, _ in strings(parse_yaml(text)) if w.endswith(".uses")]
        assert len(lines) == len(uses_keys) > 0, path  # the regex saw every uses: key
        for match in lines:
            repo, ref, rest = match["repo"], match["ref"], match["rest"]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), match.group(0)
            assert (repo, ref) in pinned, f"{repo}@{ref} is not in kvc/backends/actions.py"
            assert rest == f"  # {pinned[repo, ref]}", match.group(0)


def test_every_pinned_action_is_used_by_some_case() -> None:
    """No dead pin: an action nothing emits would still be bumped and reviewed."""
    used = {m["repo"] for spec, _ in [c.values for c in GITHUB]
            for text in emitted(spec, "github").files.values()
            for m in map(USES.match, text.splitlines()) if m}
    assert {a.repo for a in ACTIONS.values()} == used


# A commit: not a placeholder (sha1 of a distinct string, not repeated characters)
COMMIT = hashlib.sha1(b"kvc test: an action's commit").hexdigest()


def test_an_action_pin_is_a_full_lowercase_commit() -> None:
    assert Action("acme/act", COMMIT, "v1").uses() == f"acme/act@{COMMIT}"
    for bad in (COMMIT[:-1], COMMIT + "0", COMMIT.upper(), COMMIT[:-1] + "g",
                COMMIT[:-1] + "X", "v1"):
        with pytest.raises(ValueError, match=r"^acme/act: sha must be 40 lowercase hex"):
            Action("acme/act", bad, "v1")


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_checkout_never_persists_credentials(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for path, document in workflows(out):
        for job_id, job in document["jobs"].items():
            checkouts = steps_using(job, "checkout")
            assert checkouts, f"{path}: {job_id}"
            for step in checkouts:
                assert step["with"]["persist-credentials"] is False, f"{path}: {job_id}"


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_no_expression_inside_run(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for path, document in workflows(out):
        for where, value in strings(document):
            if where.endswith(".run"):
                assert "${{" not in value, f"{path}{where}: {value}"


SECRET_NAME = re.compile(r"\bsecrets\.([A-Z0-9_]+)")


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_secrets_appear_only_as_step_env(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for path, document in workflows(out):
        for where, value in strings(document):
            evaluated = [value[s:e] for s, e, lit in github_expressions(value) if lit is None]
            if not any("secrets" in expression for expression in evaluated):
                continue
            if re.fullmatch(r"\.jobs\.lock\.steps\[\d+\]\.with\.(private-key|token)", where):
                continue  # the update workflow hands its token to the actions that need it
            if value == UPDATE_TOKEN_SET and where.endswith(".env.KVC_HAS_TOKEN"):
                continue  # whether a token is set ("true"/"false"), not the token
            match = re.fullmatch(r"\.jobs\.[^.]+\.steps\[\d+\]\.env\.([A-Z0-9_]+)", where)
            assert match, f"{path}{where}: secrets referenced outside a step's env"
            assert value in {f"${{{{ secrets.{match[1]} }}}}", GHCR_PASSWORD}, \
                f"{path}{where}: {value}"


UPDATE_TOKEN_SET = "${{ (steps.app.outputs.token || secrets.KVC_UPDATE_TOKEN) != '' }}"
# A fork's pull request gets a read-only token: it is withheld, so containerize exports
# an archive instead of failing to push.
GHCR_PASSWORD = ("${{ !github.event.pull_request.head.repo.fork "
                 "&& secrets.GITHUB_TOKEN || '' }}")


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_each_job_gets_exactly_the_secrets_the_ir_gives_it(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for job in out.pipeline.jobs:
        emitted_job = jobs(out)[job.id]
        referenced = {m for s in emitted_job["steps"] for v in (s.get("env") or {}).values()
                      for m in SECRET_NAME.findall(v)}
        given = {name for s in emitted_job["steps"] for name in (s.get("env") or {})}
        if job.stage in {Stage.CONTAINERIZE, Stage.PUBLISH}:
            names = {"KVC_REGISTRY_USER", "KVC_REGISTRY_PASSWORD"}
        elif job.stage is Stage.TEST:
            names = {"KVC_PULL_USER", "KVC_PULL_PASSWORD"}  # never the push credentials
        else:
            names = set()
        assert given == names, job.id
        ghcr = out.resolved.spec.registry.startswith("ghcr.io/")
        assert referenced == ({"GITHUB_TOKEN"} if ghcr and names else names), job.id
        assert not names & set(emitted_job["env"]), job.id


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_the_plan_reads_private_labels_with_pull_access_only(spec: Path, backend: str) -> None:
    """The plan reads each published image's label; a private image (a new ghcr.io
    package) hides it from an anonymous reader and every push would run everything. The
    plan gets what the test jobs get: on ghcr.io the run's token with packages: read,
    elsewhere the pull secrets; never push credentials, never packages: write."""
    out = emitted(spec, backend)
    plan = out.document()["jobs"]["plan"]
    ghcr = out.resolved.spec.registry.startswith("ghcr.io/")
    (step,) = [s for s in plan["steps"] if s.get("id") == "plan"]
    env = step["env"]
    assert "KVC_REGISTRY_USER" not in env and "KVC_REGISTRY_PASSWORD" not in env
    assert "KVC_PULL_USER" not in plan.get("env", {}), "credentials on the step only"
    if ghcr:
        assert plan["permissions"] == {"contents": "read", "packages": "read"}
        assert env["KVC_PULL_USER"] == "${{ github.actor }}"
        assert "secrets.GITHUB_TOKEN" in env["KVC_PULL_PASSWORD"]
        assert "fork" in env["KVC_PULL_PASSWORD"]  # a fork's PR reads anonymously
        assert env["KVC_PULL_REGISTRY"] == "ghcr.io"
    else:
        assert "permissions" not in plan
        assert env["KVC_PULL_USER"] == "${{ secrets.KVC_PULL_USER }}"
        assert env["KVC_PULL_PASSWORD"] == "${{ secrets.KVC_PULL_PASSWORD }}"
        assert env["KVC_PULL_REGISTRY"] == out.resolved.spec.registry.split("/")[0]


@pytest.mark.parametrize(("spec", "backend"), GITHUB)
def test_forced_and_refreshed_images_skip_the_build_cache(spec: Path, backend: str) -> None:
    """A forced or refresh-due image (the plan's `rebuild` output) must not get its old
    disk back from the fingerprint cache: the restore step is skipped, so its cache-hit
    output is empty and the build runs (and a skipped restore saves nothing)."""
    out = emitted(spec, backend)
    document = out.document()
    assert document["jobs"]["plan"]["outputs"]["rebuild"] == "${{ steps.plan.outputs.rebuild }}"
    plan_run = next(s["run"] for s in document["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert 'echo "rebuild=,$(paste -sd, "$KVC_PLAN_DIR/rebuild.txt")," >> "$GITHUB_OUTPUT"' in (
        plan_run)
    builds = [j for j in out.pipeline.jobs if j.cache is not None]
    assert builds
    for job in builds:
        slug = next(t.slug for t in out.pipeline.targets if t.image == job.image)
        steps = document["jobs"][job.id]["steps"]
        (restore,) = [s for s in steps if s.get("id") == "cache"]
        (run,) = [s for s in steps if f"bash {job.script}" in s.get("run", "")]
        for rebuild, restored in ((f",x,{slug},", False), (",,", True), (",other-1,", True)):
            scope = {"needs.plan.outputs.rebuild": rebuild}
            assert github_if(restore["if"], scope) is restored, (job.id, rebuild)
            hit = "true" if restored else ""
            assert github_if(run["if"], {"steps.cache.outputs.cache-hit": hit}) is not restored


def test_releases_differing_only_in_letter_case_are_refused_in_these_words(
        tmp_path: Path) -> None:
    """GitHub's contains() ignores case, so the plan gate cannot tell debian-A1 from
    debian-a1: compiling for GitHub refuses the pair, saying why, and writes nothing."""
    text = (Path(__file__).resolve().parents[2] / "examples/minimal/kvc.yaml").read_text()
    head, _, release = text.partition("      - release_version")
    release = "      - release_version" + release
    spec = tmp_path / "kvc.yaml"
    spec.write_text(head + release.replace('"12"', '"A1"', 1)
                    + release.replace('"12"', '"a1"', 1), encoding="utf-8")
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", "github",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert (f"{spec}:1:1: debian/A1 and debian/a1 differ only in letter case; GitHub's plan "
            "gate (contains) cannot tell them apart [unsupported]") in result.output
    assert not (tmp_path / "out").exists()


def test_signing_alone_asks_for_the_identity_token(tmp_path: Path) -> None:
    """cosign's keyless signing needs the OIDC token (id-token: write) even where no
    provenance is attested; the overrides fixture attests too, which asks for it anyway."""
    spec = tmp_path / "kvc.yaml"
    text = OVERRIDES.read_text(encoding="utf-8")
    assert "attest_provenance: true" in text
    spec.write_text(text.replace("attest_provenance: true", "attest_provenance: false"),
                    encoding="utf-8")
    out = emitted(spec, "github")
    publish = [j for j in out.pipeline.jobs if j.stage is Stage.PUBLISH]
    for job in publish:
        permissions = jobs(out)[job.id].get("permissions", {})
        if signs(out, job.image):
            assert permissions == {"contents": "read", "id-token": "write"}, job.id
        else:
            assert "id-token" not in permissions, job.id
    assert {signs(out, j.image) for j in publish} == {True, False}
