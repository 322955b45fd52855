"""The IR: per image build-per-arch -> containerize -> test-per-arch -> publish."""

from __future__ import annotations

import hashlib
import re
import textwrap

import pytest

from kvc.backends import buildfiles
from kvc.compiler import dag
from kvc.compiler.graph import build_pipeline
from kvc.ir import Artifact, Job, Pipeline, Stage
from tests.conftest import OK_SPECS, resolve_text

SHA = "sha256:" + hashlib.sha256(b"graph test image").hexdigest()

SPEC = textwrap.dedent(f"""\
    kvc: 1
    registry: ghcr.io/example
    defaults:
      release_checksum: {{amd64: "{SHA}", arm64: "{SHA}"}}
      vars: {{mirror: "https://mirror.example.org"}}
    flavors:
      ubuntu:
        releases:
          - release_version: "24.04"
            url: "{{mirror}}/ubuntu-{{arch}}.img"
      coreos:
        sysprep: {{enabled: false}}
        test: {{enabled: false}}
        releases:
          - release_version: "41"
            url: "{{mirror}}/coreos-{{arch}}.qcow2.xz"
    """)


def _pipeline(text: str = SPEC) -> Pipeline:
    pipeline = build_pipeline(resolve_text(text))
    dag.check(pipeline)
    return pipeline


def _needs(pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
    return {job.id: job.needs for job in pipeline.jobs}


def test_jobs_and_needs_follow_pipeline_md() -> None:
    needs = _needs(_pipeline())
    assert {k: v for k, v in needs.items() if "ubuntu" in k} == {
        "build-ubuntu-24-04-amd64": (),
        "build-ubuntu-24-04-arm64": (),
        "containerize-ubuntu-24-04": ("build-ubuntu-24-04-amd64", "build-ubuntu-24-04-arm64"),
        "test-ubuntu-24-04-amd64": ("containerize-ubuntu-24-04",),
        "test-ubuntu-24-04-arm64": ("containerize-ubuntu-24-04",),
        "publish-ubuntu-24-04": ("test-ubuntu-24-04-amd64", "test-ubuntu-24-04-arm64"),
    }


def test_disabled_tests_make_publish_wait_for_containerize() -> None:
    needs = _needs(_pipeline())
    assert not any(job.startswith("test-coreos") for job in needs)
    assert needs["publish-coreos-41"] == ("containerize-coreos-41",)


def test_stages_runners_and_arches() -> None:
    pipeline = _pipeline()
    for job in pipeline.jobs:
        per_arch = job.stage in {Stage.BUILD, Stage.TEST}
        assert (job.arch is not None) == per_arch, job.id
        if job.stage in {Stage.CONTAINERIZE, Stage.PUBLISH}:
            assert job.runner == "amd64"
    assert pipeline.job("build-ubuntu-24-04-arm64").runner == "arm64"
    assert pipeline.job("test-ubuntu-24-04-arm64").runner == "arm64"
    assert pipeline.job("publish-ubuntu-24-04").default_branch_only


def test_no_guest_code_means_arm64_builds_on_amd64() -> None:
    assert _pipeline().job("build-coreos-41-arm64").runner == "amd64"
    quiet = SPEC.replace("ubuntu:\n", "ubuntu:\n    sysprep: {install: ''}\n")
    assert _pipeline(quiet).job("build-ubuntu-24-04-arm64").runner == "amd64"
    relabel = quiet.replace("install: ''", "install: '', selinux_relabel: true")
    assert _pipeline(relabel).job("build-ubuntu-24-04-arm64").runner == "arm64"


def test_artifacts_are_named_from_the_identity_and_unique() -> None:
    pipeline = _pipeline()
    produced = [a for job in pipeline.jobs for a in job.produces]
    assert len({a.name for a in produced}) == len(produced)
    assert len({a.path for a in produced}) == len(produced)
    build = pipeline.job("build-ubuntu-24-04-arm64")
    assert build.produces == (Artifact("build-ubuntu-24-04-arm64",
                                       "artifacts/build/ubuntu-24-04/arm64"),)
    containerize = pipeline.job("containerize-ubuntu-24-04")
    assert {a.name for a in containerize.consumes} == {"build-ubuntu-24-04-amd64",
                                                      "build-ubuntu-24-04-arm64"}
    # the qcow2 moves once: only containerize consumes build artifacts
    consumers = [j.id for j in pipeline.jobs for a in j.consumes if a.name.startswith("build-")]
    assert sorted(consumers) == ["containerize-coreos-41"] * 2 + ["containerize-ubuntu-24-04"] * 2


def test_names_are_valid_github_job_ids_and_artifact_names() -> None:
    for spec in OK_SPECS:
        pipeline = build_pipeline(resolve_text(spec.read_text(), spec.name))
        dag.check(pipeline)
        for job in pipeline.jobs:
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", job.id), job.id
            for artifact in job.produces:
                assert re.fullmatch(r"[A-Za-z0-9_.-]+", artifact.name), artifact.name


def test_no_job_needs_a_job_of_another_image() -> None:
    pipeline = _pipeline()
    image_of = {job.id: job.image for job in pipeline.jobs}
    assert all(image_of[a] == image_of[b] for a, b in pipeline.edges())


def test_env_holds_only_what_each_job_uses() -> None:
    pipeline = _pipeline()
    build = pipeline.job("build-ubuntu-24-04-amd64").env_dict()
    assert build["KVC_URL"] == "https://mirror.example.org/ubuntu-amd64.img"
    assert build["KVC_CHECKSUM"] == SHA
    assert not any(k.startswith("KVC_VAR_") for k in build)  # vars reach only makefiles
    assert "KVC_DOWNLOAD_CONTAINER" not in build
    off = pipeline.job("build-coreos-41-amd64").env_dict()
    assert off["KVC_SYSPREP_ENABLED"] == "false" and "KVC_SYSPREP_INSTALL" not in off
    for stage in ("containerize", "test", "publish"):
        job = next(j for j in pipeline.jobs if j.id.startswith(stage + "-ubuntu"))
        assert not {"KVC_URL", "KVC_CHECKSUM", "KVC_SYSPREP_INSTALL"} & job.env_dict().keys()
    assert "KVC_KUBEVIRT_VERSION" not in pipeline.job("publish-ubuntu-24-04").env_dict()


def test_makefile_builds_receive_the_vars() -> None:
    text = SPEC.replace("ubuntu:\n", "ubuntu:\n    sysprep: {makefile: true}\n")
    env = _pipeline(text).job("build-ubuntu-24-04-amd64").env_dict()
    assert env["KVC_VAR_mirror"] == "https://mirror.example.org"
    assert env["KVC_MAKEFILE_DIR"] == "images/ubuntu"


def test_download_in_container_names_the_container() -> None:
    text = SPEC.replace("ubuntu:\n", "ubuntu:\n    download: {in: container}\n")
    env = _pipeline(text).job("build-ubuntu-24-04-amd64").env_dict()
    assert env["KVC_DOWNLOAD_CONTAINER"] == "quay.io/kubevirt/libguestfs-tools:latest"


def test_a_refresh_age_reaches_the_plans_input_in_seconds() -> None:
    """plan.sh rebuilds an image published longer ago than its refresh age: the age
    must reach plan.tsv (0 there means never)."""
    text = SPEC.replace("ubuntu:\n", "ubuntu:\n    publish: {refresh: 7d}\n")
    rows = [line.split("\t") for line in
            buildfiles.plan_data(_pipeline(text), "kvc test").splitlines()
            if not line.startswith("#")]
    assert {row[0]: row[4] for row in rows} == {"ubuntu-24-04": "604800", "coreos-41": "0"}


@pytest.mark.parametrize(("registry", "host"), [
    ("ghcr.io/example", "ghcr.io"),
    ("docker.io/containercraft", "docker.io"),
    ("localhost/kvc", "localhost"),
    ("localhost:5000", "localhost:5000"),
    ("quay.io:443/a/b", "quay.io:443"),
])  # fmt: skip
def test_jobs_log_in_to_the_host_of_their_registry(registry: str, host: str) -> None:
    """The host `docker login` and the plan's pull access use, port included."""
    pipeline = _pipeline(SPEC.replace("registry: ghcr.io/example", f"registry: {registry}"))
    pushing = [job for job in pipeline.jobs if job.stage in {Stage.CONTAINERIZE, Stage.PUBLISH}]
    assert pushing and {job.registry.host for job in pushing} == {host}


def test_fingerprint_changes_with_the_build_inputs_only() -> None:
    def fingerprints(text: str) -> dict[str, str]:
        return {j.id: j.fingerprint for j in _pipeline(text).jobs
                if j.stage is Stage.BUILD}
    base = fingerprints(SPEC)
    assert len(set(base.values())) == len(base)
    changed = fingerprints(SPEC.replace("ubuntu-{arch}.img", "ubuntu-{arch}-v2.img"))
    assert {k for k in base if base[k] != changed[k]} == {"build-ubuntu-24-04-amd64",
                                                          "build-ubuntu-24-04-arm64"}
    assert fingerprints("# a comment\n" + SPEC) == base


def _job(job_id: str, needs: tuple[str, ...] = (), image: str = "a/1",
         produces: tuple[Artifact, ...] = ()) -> Job:
    return Job(id=job_id, stage=Stage.BUILD, image=image, arch=None, runner="amd64",
               needs=needs, script="x.sh", inputs=(), produces=produces)


def _check(*jobs: Job) -> str:
    with pytest.raises(dag.GraphError) as caught:
        dag.check(Pipeline(source="kvc.yaml", jobs=jobs, images=("a/1",)))
    return str(caught.value)


def test_dag_check_accepts_a_well_formed_pipeline() -> None:
    dag.check(Pipeline("kvc.yaml", (_job("a"), _job("b", ("a",))), ("a/1",)))


def test_dag_check_reports_duplicate_ids() -> None:
    assert _check(_job("a"), _job("a")) == "duplicate job id 'a'"


def test_dag_check_reports_missing_needs() -> None:
    assert _check(_job("a", ("ghost",))) == "job 'a' needs unknown job 'ghost'"


def test_dag_check_prints_cycles_as_a_path() -> None:
    assert _check(_job("a", ("b",)), _job("b", ("a",))) == 'cycle: "a" -> "b" -> "a"'
    assert _check(_job("s", ("s",))) == 'cycle: "s" -> "s"'


def test_dag_check_reports_cross_image_needs_and_duplicate_artifacts() -> None:
    assert _check(_job("a"), _job("b", ("a",), image="b/2")) == "job 'b' of b/2 needs 'a' of a/1"
    art = Artifact("disk", "artifacts/x")
    assert _check(_job("a", produces=(art,)), _job("b", produces=(art,))) == (
        "artifact name 'disk' is produced twice")


def test_dag_check_reports_every_broken_invariant_at_once() -> None:
    """From a surviving mutant (docs/mutation/compiler.md): several problems make one
    message, in the order the checks run, joined by "; "."""
    assert _check(_job("a"), _job("a"), _job("b", ("ghost",))) == (
        "duplicate job id 'a'; job 'b' needs unknown job 'ghost'")
