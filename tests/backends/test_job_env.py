"""Per-arch jobs get their own arch, in the emitted files, as the job runs it.

The IR's env is the compiler's claim; these tests hold it against what each
job is (its arch in the IR graph, its id, its runner) and read the emitted
environment as the CI system would, so a job handed another arch's values
fails here, not only in a snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvc.ir import Stage
from tests.backends.ci_syntax import circleci_env, github_env
from tests.backends.conftest import Emitted, cases, emitted


def emitted_env(out: Emitted, job_id: str) -> dict[str, str]:
    if out.backend == "gitlab":  # {value, expand: false} is how GitLab keeps a "$"
        variables = out.child_jobs()[job_id]["variables"]
        return {name: str(v["value"] if isinstance(v, dict) else v)
                for name, v in variables.items()}
    job = out.document()["jobs"][job_id]
    if out.backend == "github":
        return github_env(job["env"])
    # KVC_REBUILD is kvc's own pipeline parameter (the plan's rebuild list), not a literal.
    return circleci_env({name: value for name, value in job["environment"].items()
                         if value != "<< pipeline.parameters.kvc-rebuild >>"})


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_every_per_arch_job_gets_its_own_arch(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    per_arch = [job for job in out.pipeline.jobs if job.arch is not None]
    assert {job.stage for job in per_arch} >= {Stage.BUILD}
    for job in per_arch:
        env = emitted_env(out, job.id)
        assert job.id.endswith(f"-{job.arch}"), job.id
        assert env["KVC_ARCH"] == job.arch, job.id
        if job.stage is Stage.TEST:
            assert job.runner == job.arch, job.id  # a test boots on its own arch
            assert env["KVC_LOG_DIR"].rstrip("/").endswith(f"-{job.arch}"), job.id
        if job.stage is Stage.BUILD:
            assert f"/{job.arch}/" in env["KVC_OUTPUT"], job.id


def test_multi_arch_test_jobs_exist_in_the_fixtures() -> None:
    """Guards the test above: some spec tests one image on two arches."""
    arches = {
        (job.image, job.arch)
        for spec, backend in [(c.values[0], c.values[1]) for c in cases("github")]
        for job in emitted(spec, backend).pipeline.jobs if job.stage is Stage.TEST
    }
    images = [image for image, _ in arches]
    assert any(images.count(image) > 1 for image in images)
