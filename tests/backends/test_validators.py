"""Every emitted workflow and config passes the real validators, offline.

All files are written to one temporary tree and each tool runs once over all
of them (one subprocess per tool, not per file), so the suite stays fast as
examples are added. Each tool is also shown a broken file, so a validator that
silently accepts everything (wrong flag, skipped input) fails the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kvc.backends import buildfiles
from kvc.backends.yamlout import dump as yamlout_dump
from tests.backends.conftest import (
    BACKEND_NAMES,
    SPECS,
    all_emitted,
    case_id,
    emitted,
    generated,
    parse_yaml,
    spec_params,
)

BIN = Path(sys.executable).parent
SCHEMAS = {"github": "vendor.github-workflows", "circleci": "vendor.circle-ci",
           "gitlab": "vendor.gitlab-ci"}


def run_tool(args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    env["NO_COLOR"] = "1"
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def write_emitted(root: Path, backend: str) -> list[Path]:
    """Every file of each case under the case's own directory, at its emitted path."""
    paths = []
    for out in all_emitted(backend):
        for rel, text in out.files.items():
            path = root / out.name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        if backend == "gitlab":  # and the largest child pipeline the plan job can write
            path = root / out.name / "child-every-image.yml"
            path.write_text(yamlout_dump(out.child()), encoding="utf-8")
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("emitted")
    return {backend: write_emitted(root, backend) for backend in BACKEND_NAMES}


def check_jsonschema(schema: str, paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return run_tool([BIN / "check-jsonschema", "--builtin-schema", schema, *paths])


def zizmor(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return run_tool([BIN / "zizmor", "--offline", "--no-config", "--strict-collection",
                     "--format", "plain", *paths])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_schema_accepts_every_emitted_file(backend: str, tree: dict[str, list[Path]]) -> None:
    paths = tree[backend]
    assert paths
    result = check_jsonschema(SCHEMAS[backend], paths)
    assert result.returncode == 0, report(result)


# zizmor's cache-poisoning audit fires when a workflow that caches also looks
# like a release workflow; it recognises that by the trigger (a push to a
# branch named like ``release``), not by what the jobs do. The emitted
# workflow restores the build output by fingerprint in the same run that
# publishes it, whatever the branch is called, so this is a real design issue
# (reported, not fixed here: the fix changes how caching works). The case is a
# strict xfail: it fails the suite once the finding goes away.
KNOWN_FINDINGS = {
    "spec-overrides": "cache-poisoning: the fingerprint cache is restored in the run that "
                      "publishes (zizmor only notices with a release-like branch name)",
}


@pytest.fixture(scope="module")
def zizmor_findings(tree: dict[str, list[Path]]) -> dict[Path, list[str]]:
    """Run zizmor once over every workflow; findings per file as ``ident at route``."""
    paths = tree["github"]
    result = run_tool([BIN / "zizmor", "--offline", "--no-config", "--strict-collection",
                       "--format", "json", *paths])
    assert result.returncode in {0} | set(range(10, 20)), report(result)  # 1, 2: errors
    by_file: dict[Path, list[str]] = {path: [] for path in paths}
    for finding in json.loads(result.stdout):
        for location in finding["locations"]:
            symbolic = location["symbolic"]
            if symbolic["kind"] == "Primary":
                route = ".".join(str(next(iter(part.values())))
                                 for part in symbolic["route"]["route"])
                path = Path(symbolic["key"]["Local"]["verbatim_path"])
                by_file[path].append(f"{finding['ident']} at {route}")
    return by_file


def zizmor_params() -> list[Any]:
    params = []
    for spec in SPECS:
        reason = KNOWN_FINDINGS.get(case_id(spec))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case_id(spec), marks=marks, id=case_id(spec)))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("case", zizmor_params())
def test_zizmor_finds_nothing(case: str, tree: dict[str, list[Path]],
                              zizmor_findings: dict[Path, list[str]]) -> None:
    paths = [p for p in tree["github"] if p.parts[-4] == case]
    assert paths
    assert {p.name: zizmor_findings[p] for p in paths} == {p.name: [] for p in paths}


@pytest.mark.slow
def test_zizmor_plain_run_is_clean_for_the_minimal_example(
        tree: dict[str, list[Path]]) -> None:
    """The documented invocation (default persona, exit status) on examples/minimal."""
    paths = [p for p in tree["github"] if p.parts[-4] == "example-minimal"]
    result = zizmor(paths)
    assert result.returncode == 0, report(result)


BROKEN_GITHUB = """\
on: push
jobs:
  a:
    steps:
      - run: echo ${{ github.event.pull_request.title }}
"""
UNPINNED_GITHUB = """\
on: pull_request
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
"""
BROKEN_CIRCLECI = "version: 2.1\njobs:\n  a:\n    steps: 3\n"
BROKEN_GITLAB = "a:\n  script: echo\n  needs:\n    - job: b\n      artifacts: maybe\n"


@pytest.mark.slow
def test_validators_reject_broken_files(tmp_path: Path) -> None:
    (tmp_path / "gh.yml").write_text(BROKEN_GITHUB, encoding="utf-8")
    (tmp_path / "cc.yml").write_text(BROKEN_CIRCLECI, encoding="utf-8")
    (tmp_path / "unpinned.yml").write_text(UNPINNED_GITHUB, encoding="utf-8")
    assert check_jsonschema(SCHEMAS["github"], [tmp_path / "gh.yml"]).returncode == 1
    assert check_jsonschema(SCHEMAS["circleci"], [tmp_path / "cc.yml"]).returncode == 1
    (tmp_path / "gl.yml").write_text(BROKEN_GITLAB, encoding="utf-8")
    assert check_jsonschema(SCHEMAS["gitlab"], [tmp_path / "gl.yml"]).returncode == 1
    result = zizmor([tmp_path / "unpinned.yml"])
    assert result.returncode >= 10, report(result)  # findings, not a usage error
    assert "unpinned-uses" in result.stdout, report(result)
    assert "artipacked" in result.stdout, report(result)


@pytest.mark.parametrize("spec", spec_params())
def test_bake_file_is_json_with_one_target_per_image(spec: Path) -> None:
    files = generated(spec, BACKEND_NAMES[0])
    bake = json.loads(files[buildfiles.BAKE_FILE])
    assert len(bake["target"]) == len(emitted(spec, BACKEND_NAMES[0]).pipeline.images) > 0
    assert bake["group"]["default"]["targets"] == list(bake["target"])
    for name, target in bake["target"].items():
        assert target["platforms"], name
        assert all(tag.count(":") >= 1 for tag in target["tags"]), name


@pytest.mark.parametrize("spec", spec_params())
def test_manifests_are_kubevirt_vms(spec: Path) -> None:
    files = generated(spec, BACKEND_NAMES[0])
    manifests = {p: t for p, t in files.items()
                 if p.startswith(".kvc/manifests/") and p.endswith(".yaml")}
    assert len(manifests) == len(emitted(spec, BACKEND_NAMES[0]).pipeline.images) > 0
    for path, text in manifests.items():
        document = parse_yaml(text)
        assert document["apiVersion"] == "kubevirt.io/v1", path
        assert document["kind"] == "VirtualMachine", path
        name = document["metadata"]["name"]
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name.islower(), name
        volumes = document["spec"]["template"]["spec"]["volumes"]
        assert any("containerDisk" in v for v in volumes), path
