"""Spec values are data in every emitted file, read as the CI system reads it.

The per-spec tests of test_github.py and test_circleci.py compare each job's
environment with the IR through tests/backends/ci_syntax.py; these tests look
at the raw emitted text instead: the only expressions GitHub evaluates and the
only parameters CircleCI substitutes there are the ones kvc writes itself,
whatever the spec says. tests/backends/specs/hostile.yaml makes sure the spec
says a lot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvc.backends import buildfiles
from kvc.ir import Stage
from tests.backends.ci_syntax import CIRCLE_OPEN, github_expressions, github_value
from tests.backends.conftest import FIXTURE_SPECS, cases, emitted, generated

HOSTILE = next(s for s in FIXTURE_SPECS if s.stem == "hostile")

# Every expression kvc itself writes into a workflow (written out, not read
# from kvc.backends.github, so a new one is a visible change here).
KVC_EXPRESSIONS = re.compile(
    r"\$\{\{ (github\.workflow|github\.ref|github\.event_name == 'pull_request'"
    r"|secrets\.KVC_[A-Z_]+|github\.actor|inputs\.force|steps\.(plan|stage)\.outputs\.\w+"
    r"|vars\.KVC_UPDATE_APP_CLIENT_ID"
    r"|steps\.app\.outputs\.token \|\| secrets\.KVC_UPDATE_TOKEN"
    r"|\(steps\.app\.outputs\.token \|\| secrets\.KVC_UPDATE_TOKEN\) != ''"
    r"|!github\.event\.pull_request\.head\.repo\.fork && secrets\.GITHUB_TOKEN \|\| '') \}\}"
)
# The parameters of kvc's own reusable build command and update workflow.
KVC_PARAMETERS = {"<< parameters.cache-key >>", "<< parameters.path >>",
                  "<< pipeline.trigger_source >>", "<< pipeline.schedule.name >>",
                  "<< pipeline.parameters.kvc-run >>", "<< pipeline.parameters.force >>",
                  "<< pipeline.parameters.kvc-rebuild >>"}


def test_the_hostile_spec_is_hostile_everywhere_it_can_be() -> None:
    """Guards the fixture: each templated and untemplated value carries both syntaxes."""
    out = emitted(HOSTILE, "github")
    builds = [j for j in out.pipeline.jobs if j.stage is Stage.BUILD]
    assert builds
    for job in builds:
        env = job.env_dict()
        for name in ("KVC_RELEASE_NAME", "KVC_URL", "KVC_POST_COMMAND_1", "KVC_VAR_motd",
                     "KVC_VAR_note"):
            assert "${{" in env[name], name
        for name in ("KVC_RELEASE_NAME", "KVC_URL", "KVC_POST_COMMAND_2", "KVC_VAR_note"):
            assert CIRCLE_OPEN in env[name], name
        assert "%{" in env["KVC_URL"]  # an HCL template directive, in bake's labels
        # GitLab's %NAME% reference, in a value without "$" (tests/backends/test_gitlab.py)
        assert "%CI_PROJECT_NAME%" in env["KVC_VAR_share"]
        assert "$" not in env["KVC_VAR_share"]


@pytest.mark.parametrize(("spec", "backend"), cases("github"))
def test_github_evaluates_only_kvcs_own_expressions(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    for path, text in out.files.items():
        evaluated = [text[start:end] for start, end, literal in github_expressions(text)
                     if literal is None]
        strangers = [e for e in evaluated if not KVC_EXPRESSIONS.fullmatch(e)]
        assert not strangers, f"{path}: GitHub would evaluate {strangers}"


@pytest.mark.parametrize(("spec", "backend"), cases("circleci"))
def test_circleci_substitutes_only_kvcs_own_parameters(spec: Path, backend: str) -> None:
    out = emitted(spec, backend)
    unescaped = re.findall(r"(?<!\\)<<.*?>>", out.text)
    assert set(unescaped) <= KVC_PARAMETERS, unescaped


def test_hostile_values_are_escaped_in_the_raw_github_workflow() -> None:
    out = emitted(HOSTILE, "github")
    job = next(j for j in out.pipeline.jobs if j.stage is Stage.BUILD)
    motd = job.env_dict()["KVC_VAR_motd"]
    assert "${{ github.actor }}" in motd
    lines = [raw for raw in out.text.splitlines() if raw.strip().startswith("KVC_VAR_motd:")]
    assert lines
    for line in lines:
        raw = line.split(":", 1)[1].strip()
        assert "${{ github.actor }}" not in raw  # never in the raw text as written
        assert github_value(raw) == motd  # yet GitHub reads it back exactly


def test_hostile_values_are_escaped_in_the_raw_circleci_config() -> None:
    out = emitted(HOSTILE, "circleci")
    job = next(j for j in out.pipeline.jobs if j.stage is Stage.BUILD)
    note = job.env_dict()["KVC_VAR_note"]
    assert "<< parameters.path >>" in note
    lines = [raw for raw in out.text.splitlines() if raw.strip().startswith("KVC_VAR_note:")]
    assert lines
    for line in lines:
        assert "\\<< parameters.path >>" in line
        assert re.search(r"(?<!\\)<<", line) is None, line


# An HCL template sequence start that is not escaped by doubling its first character
# (hashicorp/hcl@v2.24.0:hclsyntax/spec.md:787-788).
HCL_TEMPLATE = re.compile(r"(?<![$%])(?:[$%]{2})*[$%]\{")
BAKE_VARIABLES = {f"${{{name}}}" for name in buildfiles.RUNTIME_VARIABLES}


def bake_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "//":  # a comment in HCL's JSON syntax
                yield key
                yield from bake_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from bake_strings(value)


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.stem) for s in FIXTURE_SPECS])
def test_bake_interpolates_only_kvcs_own_variables(spec: Path) -> None:
    """Bake evaluates every string of the JSON file as an HCL template
    (hashicorp/hcl@v2.24.0:json/spec.md:343-350, 383-386)."""
    document = json.loads(generated(spec, "github")[buildfiles.BAKE_FILE])
    for text in bake_strings({k: v for k, v in document.items() if k != "variable"}):
        templates = {m.group() for m in re.finditer(r"\$\{\w+\}", text)
                     if HCL_TEMPLATE.match(text, m.start())}
        unescaped = [m.group() for m in HCL_TEMPLATE.finditer(text)]
        assert len(unescaped) == len(templates) and templates <= BAKE_VARIABLES, text


def hcl_literal(text: str) -> str:
    """The value bake reads from a JSON string with no template sequence in it: `$${`
    and `%%{` are a literal `${` and `%{` (hashicorp/hcl@v2.24.0:hclsyntax/spec.md:787-788)."""
    assert not HCL_TEMPLATE.search(text), text
    return text.replace("$${", "${").replace("%%{", "%{")


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.stem) for s in FIXTURE_SPECS])
def test_bake_reads_every_spec_value_back_as_written(spec: Path) -> None:
    """Escaped is not enough: bake must also read the value the spec gave (the real
    `bake --print` checks the same in tests/integration/test_bake_print.py)."""
    document = json.loads(generated(spec, "github")[buildfiles.BAKE_FILE])
    for target in emitted(spec, "github").pipeline.targets:
        baked = document["target"][target.slug]
        labels = {hcl_literal(key): hcl_literal(value) for key, value in baked["labels"].items()
                  if value not in BAKE_VARIABLES}
        for upstream in target.upstream:
            assert labels[f"dev.kvc.upstream.{upstream.arch}.url"] == upstream.url
            assert labels[f"dev.kvc.upstream.{upstream.arch}.checksum"] == upstream.checksum
        assert labels["org.opencontainers.image.version"] == target.release_version
        assert labels["dev.kvc.flavor"] == target.flavor
        assert hcl_literal(baked["context"]) == target.context
        assert [hcl_literal(tag) for tag in baked["tags"]] == [
            f"{target.repository}:{tag}" for tag in target.tags]
