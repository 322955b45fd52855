"""Change scoping through the emitted files: the plan's list of images decides which jobs start.

The plan stage itself runs against a real registry in
tests/integration/test_plan_registry.py; here every example and backend is
checked for what a given plan output starts, with the evaluators of
tests/backends/expressions.py (themselves checked first, on conditions whose
answer is known). Also here: the platform limits and the split of a
1,000-build GitHub pipeline into workflows under GitHub's file size limit.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kvc.backends import circleci, github, gitlab, yamlout
from kvc.backends.base import EmitInput
from kvc.backends.walk import Limit
from kvc.compiler.driver import load, resolve_document
from kvc.compiler.graph import build_pipeline
from kvc.ir import Pipeline
from kvc.spec.diagnostics import SpecError
from kvc.spec.loader import load_bytes
from kvc.spec.models import Backends
from tests.backends.conftest import EXAMPLES, Emitted, cases, emitted, parse_yaml
from tests.backends.expressions import (
    circleci_started,
    circleci_when,
    github_if,
    github_started,
)

ROOT = Path(__file__).resolve().parents[2]
PUSH = {"github.event_name": "push", "github.ref": "refs/heads/main"}


def test_github_evaluator_follows_githubs_rules() -> None:
    scope = {"needs.plan.outputs.images": ",a-1,B-2,", **PUSH}
    assert github_if("contains(needs.plan.outputs.images, ',a-1,')", scope)
    assert github_if("contains(needs.plan.outputs.images, ',b-2,')", scope)  # ignores case
    assert not github_if("contains(needs.plan.outputs.images, ',a-,')", scope)
    assert not github_if("github.event_name != 'push' || !(github.ref == 'refs/heads/main')",
                         scope)
    doc = {"jobs": {"p": {}, "a": {"needs": ["p"], "if": "contains(needs.p.outputs.x, 'y')"},
                    "b": {"needs": "a"}, "c": {"needs": ["p"]}}}
    assert github_started(doc, PUSH, {"p": {"x": "y"}}) == {"p", "a", "b", "c"}
    assert github_started(doc, PUSH, {"p": {"x": "n"}}) == {"p", "c"}  # b: its need skipped


def test_circleci_evaluator_follows_logic_statements() -> None:
    values = {"pipeline.parameters.kvc-run": ",a-1,b-2,", "pipeline.trigger_source": "webhook"}
    gate = {"matches": {"pattern": "^.*,b-2,.*$", "value": "<< pipeline.parameters.kvc-run >>"}}
    assert circleci_when(gate, values)
    assert not circleci_when({"matches": {**gate["matches"], "pattern": "^.*,b-,.*$"}}, values)
    assert circleci_when({"and": [{"not": {"equal": ["scheduled_pipeline",
                                                     "<< pipeline.trigger_source >>"]}},
                                  gate]}, values)


def github_jobs(out: Emitted, images: str) -> set[str]:
    doc = out.document()
    push = {**PUSH, "github.ref": f"refs/heads/{doc['on']['push']['branches'][0]}"}
    return github_started(doc, push, {"plan": {"images": images}})


def circleci_jobs(out: Emitted, images: str) -> set[str]:
    values = {"pipeline.parameters.kvc-run": images, "pipeline.parameters.force": "",
              "pipeline.trigger_source": "webhook"}
    return {"plan"} | circleci_started(out.document(), values)


def gitlab_jobs(out: Emitted, images: str) -> set[str]:
    """The plan job's child is the head plus each selected image's file (the plan
    job's own script is run against a stub plan.sh in tests/backends/test_gitlab.py)."""
    started = {"plan"}
    for slug in filter(None, images.split(",")):
        document = parse_yaml(out.files[f"{gitlab.IMAGES}/{slug}.yml"])
        started |= {name for name, job in document.items()
                    if isinstance(job, dict) and "script" in job}
    return started


STARTED = {"github": github_jobs, "circleci": circleci_jobs, "gitlab": gitlab_jobs}


@pytest.mark.parametrize(("spec", "backend"), cases())
def test_the_plan_output_decides_which_jobs_start(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    every = {"plan"} | {job.id for job in out.pipeline.jobs}
    started = STARTED[backend]
    assert started(out, ",,") == {"plan"}  # nothing changed: only the plan runs
    slugs = [t.slug for t in out.pipeline.targets]
    assert started(out, "," + ",".join(slugs) + ",") == every
    for target in out.pipeline.targets:
        own = {job.id for job in out.pipeline.jobs if job.image == target.image}
        assert started(out, f",{target.slug},") == {"plan"} | own


def test_circleci_setup_config_plans_then_continues() -> None:
    out = emitted(ROOT / "examples/minimal/kvc.yaml", "circleci")
    setup = parse_yaml(out.files[circleci.CONFIG])
    assert setup["setup"] is True
    assert setup["orbs"] == {"continuation": "circleci/continuation@1.1.0"}
    steps = setup["jobs"]["plan"]["steps"]
    assert steps[-1] == {"continuation/continue": {
        "configuration_path": circleci.CONTINUE_FILE,
        "parameters": circleci.PARAMETERS_FILE}}
    # A parameter given at trigger time must be declared where the pipeline continues.
    assert set(setup["parameters"]) <= set(out.document()["parameters"])


def test_github_force_input_reaches_the_plan_only_through_env() -> None:
    doc = emitted(ROOT / "examples/minimal/kvc.yaml", "github").document()
    assert doc["on"]["workflow_dispatch"]["inputs"]["force"]["type"] == "string"
    plan = doc["jobs"]["plan"]
    assert plan["env"]["KVC_FORCE"] == "${{ inputs.force }}"
    assert all("inputs." not in step.get("run", "") for step in plan["steps"])


@pytest.mark.parametrize(("backend", "path"), [(github.GitHub, ".github/workflows/kvc.yml"),
                                               (circleci.CircleCI, ".circleci/kvc.yml")])
def test_a_file_over_a_platform_limit_is_refused(backend: Any, path: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused at the spec's first line (no key made the file large), naming the file,
    its size, the limit and its source, and what to do; a file exactly at the limit
    is written."""
    out = emitted(ROOT / "examples/minimal/kvc.yaml", backend.NAME)  # under the real limit
    source = EmitInput(out.pipeline, "kvc.yaml", Backends())
    size = len(out.files[path].encode())
    assert size == max(len(text.encode()) for text in out.files.values())
    (limit,) = backend.LIMITS
    monkeypatch.setattr(backend, "LIMITS", (Limit(limit.what, limit.paths, size,
                                                  limit.source),))
    assert backend.emit(source) == out.files
    monkeypatch.setattr(backend, "LIMITS", (Limit(limit.what, limit.paths, size - 1,
                                                  limit.source),))
    with pytest.raises(SpecError) as caught:
        backend.emit(source)
    assert [d.headline() for d in caught.value.diagnostics] == [
        f"{out.pipeline.source}:1:1: {path} would be {size:,} bytes, over {backend.NAME}'s "
        f"{limit.what} limit of {size - 1:,} bytes ({limit.source}); "
        "split the spec into several [limit]"]


@pytest.fixture(scope="module")
def thousand() -> Pipeline:
    # benchmarks/compile.py's 1,000-build spec (benchmarks/ is not a package).
    spec = importlib.util.spec_from_file_location("kvc_bench", ROOT / "benchmarks/compile.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    # Its digests are placeholders: only what `kvc lock` fixes is tolerated.
    resolved = resolve_document(load_bytes(bench.generated_spec(1000).encode(), "kvc.yaml"),
                                allow_unpinned=True)
    return build_pipeline(resolved)


def fast_load(text: str) -> Any:
    """libyaml through PyYAML when present (5 MB of YAML), else ruamel's pure parser."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:  # pragma: no cover - PyYAML comes with pre-commit
        return YAML(typ="safe").load(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.mark.slow  # compiles and parses 1,000 builds
def test_a_thousand_builds_fit_githubs_file_limit(thousand: Pipeline) -> None:
    files = github.emit(EmitInput(thousand, "kvc.yaml", Backends()))
    workflows = {p: fast_load(t) for p, t in files.items()}
    job_of = {job.id: job for job in thousand.jobs}
    assert len(workflows) > 1
    assert all(len(text.encode()) < 500_000 for text in files.values())
    seen: list[str] = []
    slug_of = {t.image: t.slug for t in thousand.targets}
    for doc in workflows.values():
        jobs = [j for j in doc["jobs"] if j != "plan"]
        seen += jobs
        images = {job_of[j].image for j in jobs}
        # Each part plans exactly its own images, and its jobs follow that plan.
        assert set(doc["jobs"]["plan"]["env"]["KVC_PLAN_IMAGES"].split(",")) == {
            slug_of[i] for i in images}
        one = next(iter(images))
        own = {j for j in jobs if job_of[j].image == one}
        assert github_started(doc, PUSH, {"plan": {"images": f",{slug_of[one]},"}}) == (
            {"plan"} | own)
    assert sorted(seen) == sorted(job.id for job in thousand.jobs)
    # A part reuses the whole workflow's job blocks: byte for byte what dumping it gives.
    emitter = github.GitHub(EmitInput(thousand, "kvc.yaml", Backends()))
    path, doc = next(iter(workflows.items()))
    part = {j: emitter._job(job_of[j]) for j in doc["jobs"] if j != "plan"}
    dumped = yamlout.dump(emitter._workflow(doc["name"], part, emitter._images_of(list(part))))
    assert files[path].endswith(dumped)
    # Whole images per part: no image's jobs are split between two workflows.
    owners = {(job_of[j].image, p) for p, d in workflows.items() for j in d["jobs"]
              if j != "plan"}
    assert len(owners) == len(thousand.targets)


def test_past_the_budget_each_part_plans_only_its_whole_images(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The split of the test above on an example, with a budget one image fills: fast
    enough for every run (and for mutmut, which runs only the fast subset)."""
    spec = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    resolved = load(spec)
    source = EmitInput(build_pipeline(resolved), spec.name, resolved.spec.backends or Backends())
    single = github.emit(source)
    assert list(single) == [".github/workflows/kvc.yml"]
    monkeypatch.setattr(github, "SHARD_BUDGET", 1)
    files = github.emit(source)
    pipeline = source.pipeline
    job_of = {job.id: job for job in pipeline.jobs}
    slug_of = {t.image: t.slug for t in pipeline.targets}
    images = list(slug_of)
    assert len(images) > 1
    # one part per image (each alone is over the budget), named in spec order
    assert list(files) == [f".github/workflows/kvc-{i}.yml" for i in range(1, len(images) + 1)]
    seen: list[str] = []
    for i, (path, text) in enumerate(files.items(), start=1):
        doc = parse_yaml(text)
        assert doc["name"] == f"kvc ({i}/{len(images)})", path
        whole = parse_yaml(single[".github/workflows/kvc.yml"])
        assert doc["on"] == whole["on"], path
        jobs = [j for j in doc["jobs"] if j != "plan"]
        assert {job_of[j].image for j in jobs} == {images[i - 1]}, path
        assert doc["jobs"]["plan"]["env"]["KVC_PLAN_IMAGES"] == slug_of[images[i - 1]], path
        for job_id in jobs:
            assert doc["jobs"][job_id] == whole["jobs"][job_id], (path, job_id)
        assert github_started(doc, PUSH, {"plan": {"images": f",{slug_of[images[i - 1]]},"}}) \
            == {"plan", *jobs}
        seen += jobs
    assert seen == [job.id for job in pipeline.jobs]


def test_parts_pack_whole_images_greedily_up_to_the_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With budgets two neighbouring images fill exactly: each part holds as many whole
    images, in spec order, as fit (exactly at the budget still fits); the next would not."""
    spec = next(s for s in EXAMPLES if s.parent.name == "multi-distro")
    resolved = load(spec)
    source = EmitInput(build_pipeline(resolved), spec.name, resolved.spec.backends or Backends())
    pipeline = source.pipeline
    image_of = {job.id: job.image for job in pipeline.jobs}
    (whole,) = github.emit(source).values()
    blocks = github._job_blocks(whole, list(image_of))
    body = "".join(line for line in whole.splitlines(keepends=True) if not line.startswith("#"))
    monkeypatch.setattr(github, "SHARD_BUDGET", len(body.encode()))  # exactly fits: one file
    assert list(github.emit(source).values()) == [whole]
    monkeypatch.setattr(github, "SHARD_BUDGET", len(body.encode()) - 1)
    assert list(github.emit(source)) == [".github/workflows/kvc-1.yml"]  # split, one part
    cost: dict[str, int] = {}
    for job_id, image in image_of.items():
        cost[image] = cost.get(image, 0) + len(blocks[job_id].encode())
    images = list(cost)
    assert len(images) > 3
    for first in range(len(images) - 1):
        budget = cost[images[first]] + cost[images[first + 1]]
        monkeypatch.setattr(github, "SHARD_BUDGET", budget)
        parts = [list(dict.fromkeys(image_of[j] for j in parse_yaml(text)["jobs"] if j != "plan"))
                 for text in github.emit(source).values()]
        assert [i for part in parts for i in part] == images
        sizes = [sum(cost[i] for i in part) for part in parts]
        for part, size in zip(parts, sizes, strict=True):
            assert len(part) == 1 or size <= budget, (budget, part)
        for size, after in zip(sizes, parts[1:], strict=False):
            assert size + cost[after[0]] > budget, (budget, after)


_TWO_REGISTRIES = """\
kvc: 1
registry: ghcr.io/example
image: "{{host}}/example/{{flavor}}"
defaults:
  release_checksum: {{amd64: "{sha}", arm64: "{sha}"}}
flavors:
  fedora:
    vars: {{host: quay.io}}
    releases:
      - release_version: "41"
        url: "https://example.org/fedora-{{arch}}.qcow2"
  alma:
    vars: {{host: quay.io}}
    releases:
      - release_version: "9"
        url: "https://example.org/alma-{{arch}}.qcow2"
  debian:
    vars: {{host: ghcr.io}}
    releases:
      - release_version: "12"
        url: "https://example.org/debian-{{arch}}.qcow2"
"""


def test_each_part_plans_its_images_with_the_pull_access_of_their_own_registry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Images on two registries: the whole workflow's plan reads labels anonymously (no
    one registry to send credentials to), but a part whose images all live on one
    registry gets that registry's pull access, and lists every image it plans."""
    sha = "sha256:" + hashlib.sha256(b"plan pull access per part").hexdigest()
    resolved = resolve_document(load_bytes(_TWO_REGISTRIES.format(sha=sha).encode(),
                                           "kvc.yaml"))
    source = EmitInput(build_pipeline(resolved), "kvc.yaml", Backends())
    image_of = {job.id: job.image for job in source.pipeline.jobs}
    (whole,) = github.emit(source).values()

    def plan(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        job = parse_yaml(text)["jobs"]["plan"]
        (step,) = [s for s in job["steps"] if s.get("id") == "plan"]
        return job, step

    job, step = plan(whole)
    assert "KVC_PLAN_IMAGES" not in job["env"] and "env" not in step, step
    assert "permissions" not in job
    blocks = github._job_blocks(whole, list(image_of))
    cost = {image: 0 for image in image_of.values()}
    for job_id, image in image_of.items():
        cost[image] += len(blocks[job_id].encode())
    fedora, alma, _ = cost
    monkeypatch.setattr(github, "SHARD_BUDGET", cost[fedora] + cost[alma])
    quay, ghcr = github.emit(source).values()
    job, step = plan(quay)
    assert job["env"]["KVC_PLAN_IMAGES"] == "fedora-41,alma-9"
    assert step["env"] == {"KVC_PULL_USER": "${{ secrets.KVC_PULL_USER }}",
                           "KVC_PULL_PASSWORD": "${{ secrets.KVC_PULL_PASSWORD }}",
                           "KVC_PULL_REGISTRY": "quay.io"}
    assert "permissions" not in job
    job, step = plan(ghcr)
    assert job["env"]["KVC_PLAN_IMAGES"] == "debian-12"
    assert step["env"]["KVC_PULL_REGISTRY"] == "ghcr.io"
    assert step["env"]["KVC_PULL_USER"] == "${{ github.actor }}"
    assert job["permissions"] == {"contents": "read", "packages": "read"}
