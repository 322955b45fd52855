"""The rehearsal's own checks catch what they claim to (tiny hand-written pipelines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rehearsal import fake_bake
from tests.rehearsal.circleci import CircleRun
from tests.rehearsal.github import GitHubRun
from tests.rehearsal.gitlab import GitLabRun
from tests.rehearsal.world import World, provenance_violations

pytestmark = pytest.mark.rehearsal

PIN = "@" + "a" * 40
UPLOAD = f"actions/upload-artifact{PIN}"
DOWNLOAD = f"actions/download-artifact{PIN}"


def github(tmp_path: Path, jobs: str) -> GitHubRun:
    repo = tmp_path / "repo"
    repo.mkdir()
    path = tmp_path / "wf.yml"
    path.write_text(f"name: t\non: push\njobs:\n{jobs}")
    # One worker: b, independent of a, starts after a finished (a late runner).
    return GitHubRun(World(tmp_path / "w", repo), path, workers=1)


WRITER = f"""  a:
    runs-on: x
    steps:
      - run: mkdir out && echo hi > out/f
      - uses: {UPLOAD}
        with: {{name: out, path: out}}
"""


@pytest.mark.parametrize(("needs", "violations"), [("", 1), ("    needs: [a]\n", 0)])
def test_a_read_from_a_job_not_upstream_is_reported(
    tmp_path: Path, needs: str, violations: int
) -> None:
    run = github(tmp_path, WRITER + f"""  b:
    runs-on: x
{needs}    steps:
      - uses: {DOWNLOAD}
        with: {{name: out, path: got}}
      - run: cat got/f
""")
    assert run.run() == {"a": "success", "b": "success"}
    assert len(provenance_violations(run.needs, run.history)) == violations


@pytest.mark.parametrize(("overwrite", "status"), [("false", "failure"), ("true", "success")])
def test_a_second_upload_of_a_name_conflicts_unless_overwrite(
    tmp_path: Path, overwrite: str, status: str
) -> None:
    run = github(tmp_path, WRITER + f"""      - uses: {UPLOAD}
        with: {{name: out, path: out, overwrite: {overwrite}}}
""")
    assert run.run() == {"a": status}


def test_circleci_concurrent_jobs_persisting_one_path_break_attach(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    persist = {"persist_to_workspace": {"root": ".", "paths": ["out"]}}
    write = {"run": "mkdir -p out && date > out/f"}
    attach = {"attach_workspace": {"at": "."}}
    job = {"executor": "e", "steps": [write, persist]}
    config = {
        "version": 2.1,
        "executors": {"e": {"machine": {"image": "x"}}},
        "jobs": {"a": job, "b": job, "c": {"executor": "e", "steps": [attach]}},
        "workflows": {"kvc": {"jobs": ["a", "b", {"c": {"requires": ["a", "b"]}}]}},
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    run = CircleRun(World(tmp_path / "w", repo), path)
    assert run.run() == {"a": "success", "b": "success", "c": "failure"}


def test_github_env_output_and_path_files_reach_later_steps(tmp_path: Path) -> None:
    run = github(tmp_path, """  a:
    runs-on: x
    env: {A: job}
    steps:
      - id: s
        run: |
          echo "B=from-env-file" >> "$GITHUB_ENV"
          printf 'M<<EOF\\nline1\\nline2\\nEOF\\n' >> "$GITHUB_ENV"
          echo "out=value" >> "$GITHUB_OUTPUT"
          mkdir -p "$HOME/bin" && printf '#!/bin/sh\\necho tool\\n' > "$HOME/bin/t"
          chmod +x "$HOME/bin/t" && echo "$HOME/bin" >> "$GITHUB_PATH"
      - if: steps.s.outputs.out == 'VALUE'
        env: {C: "${{ steps.s.outputs.out }}"}
        run: |
          test "$A/$B/$C/$(t)" = "job/from-env-file/value/tool"
          test "$M" = "$(printf 'line1\\nline2')"
      - if: steps.s.outputs.out == 'other'
        run: exit 1
""")
    assert run.run() == {"a": "success"}
    assert "skipped" in run.history[0].log[-1]


def test_circleci_bash_env_reaches_later_steps(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    config = {
        "version": 2.1,
        "executors": {"e": {"machine": {"image": "x"}, "environment": {"A": "executor"}}},
        "jobs": {"a": {"executor": "e", "environment": {"A": "job"}, "steps": [
            {"run": "echo 'export B=from-bash-env' >> \"$BASH_ENV\""},
            {"run": {"command": 'test "$A/$B/$C" = job/from-bash-env/step',
                     "environment": {"C": "step"}}},
            {"run": {"command": "exit 1", "when": "on_fail"}},
        ]}},
        "workflows": {"kvc": {"jobs": ["a"]}},
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(config))
    assert CircleRun(World(tmp_path / "w", repo), path).run() == {"a": "success"}


@pytest.mark.parametrize(("output", "expected"), [
    ("type=image,push=true,push-by-digest=true,name-canonical=true",
     ["localhost:5000/kvc/debian@{d} {d}"]),
    ("type=registry", ["localhost:5000/kvc/debian@{d} {d}", "localhost:5000/kvc/debian:12 {d}"]),
])
def test_fake_bake_records_repo_at_digest_and_tags_only_when_pushed_by_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, expected: list[str]
) -> None:
    """A registry port is not a tag; push-by-digest pushes no tag."""
    (tmp_path / "ctx" / "amd64").mkdir(parents=True)
    (tmp_path / "ctx" / "amd64" / "disk.qcow2").write_text("disk")
    bake = {"target": {"t": {"context": str(tmp_path / "ctx"), "platforms": ["linux/amd64"]}}}
    (tmp_path / "bake.json").write_text(json.dumps(bake))
    monkeypatch.setenv("REHEARSAL_WORLD", str(tmp_path))
    tag = "localhost:5000/kvc/debian" + ("" if "by-digest" in output else ":12")
    assert fake_bake.main(["-f", str(tmp_path / "bake.json"), "--set", f"t.tags={tag}",
                           "--set", f"t.output={output}", "t"]) == 0
    lines = (tmp_path / "registry.txt").read_text().splitlines()
    digest = lines[0].split()[1]
    assert lines == [e.format(d=digest) for e in expected]


def gitlab(tmp_path: Path, config: str, **kwargs: Any) -> GitLabRun:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(config)
    return GitLabRun(World(tmp_path / "w", repo), path, workers=1, **kwargs)


GL_WRITER = """stages: [a, b]
a:
  stage: a
  script: mkdir out && echo hi > out/f{fail}
  after_script: echo after > out/after; exit 3
  artifacts: {{paths: [out/]{when}}}
"""


@pytest.mark.parametrize(("needs", "read"), [
    ("needs: [{job: a, artifacts: true}]", "success"),
    ("needs: [{job: a, artifacts: false}]", "failure"),
    ("needs: [a]", "success"),
    ("needs: []", "failure"),
])
def test_gitlab_needs_artifacts_decides_what_a_job_gets(
    tmp_path: Path, needs: str, read: str
) -> None:
    run = gitlab(tmp_path, GL_WRITER.format(fail="", when="") + f"""b:
  stage: b
  {needs}
  script: test "$(cat out/f out/after)" = "$(printf 'hi\\nafter')"
""")
    assert run.run() == {"a": "success", "b": read}, run.history[-1].log
    if read == "success":
        assert provenance_violations(run.needs, run.history) == []


@pytest.mark.parametrize(("when", "kept"), [("", False), (", when: always", True)])
def test_gitlab_artifacts_of_a_failed_job_need_when_always(
    tmp_path: Path, when: str, kept: bool
) -> None:
    run = gitlab(tmp_path, GL_WRITER.format(fail="; exit 1", when=when))
    assert run.run() == {"a": "failure"}
    assert ("a" in run.artifacts) is kept


def test_gitlab_rules_variables_and_blocked_jobs(tmp_path: Path) -> None:
    run = gitlab(tmp_path, """workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "push" && ($CI_COMMIT_BRANCH == "main" || $X)
stages: [a, b]
a:
  stage: a
  variables:
    LIT: {value: "$HOME", expand: false}
    REF: "${CI_COMMIT_BRANCH}-$$x"
  script: test "$LIT/$REF" = '$HOME/main-$x' && exit 1
b:
  stage: b
  script: 'true'
c:
  stage: b
  rules:
    - if: $CI_MERGE_REQUEST_IID
    - if: $CI_COMMIT_BRANCH != $CI_DEFAULT_BRANCH
      when: never
    - when: always
  script: 'true'
""")
    # a fails (its test passed); b waits for stage a and is skipped; c runs anyway.
    assert run.run() == {"a": "failure", "b": "skipped", "c": "success"}
    merge_request = gitlab(tmp_path / "mr", "workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH\n"
                           "a:\n  script: 'true'\n", source="merge_request_event")
    assert merge_request.run() == {}, "no CI_COMMIT_BRANCH in a merge request pipeline"
