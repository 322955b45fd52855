"""default_branch: any name git accepts for a branch, and nothing else, reaches the
emitters; GitHub gets it escaped for its expressions and its branch filter."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from tests.backends.conftest import emitted
from tests.backends.expressions import github_if

MINIMAL = Path(__file__).resolve().parents[2] / "examples/minimal/kvc.yaml"
ACCEPTED = ["main", "release/1.x", "it's", "v1+build", "!odd", "x@y", "é", "a.b-c_d", "@",
            "head"]
# git/git@b1ac1eb8d2e0:Documentation/git-check-ref-format.adoc:28-59, 84-87; and HEAD
# (git 2.39: `git check-ref-format --branch HEAD` fails, `--branch @` passes).
REFUSED = ["", "HEAD", "-x", "a..b", "a b", "a\tb", "a\x7fb", "x.lock", "a/x.lock/b", "a/.b",
           ".a", "/a", "a/", "a//b", "a.", "a@{b", "a\\b", "a~1", "a^", "a:b", "a?", "a*",
           "a[b"]


def _spec(tmp_path: Path, backend: str, branch: str) -> Path:
    spec = tmp_path / "kvc.yaml"
    quoted = '"' + branch.replace("\\", "\\\\").replace('"', '\\"').replace(
        "\t", "\\t").replace("\x7f", "\\x7f") + '"'
    spec.write_text(MINIMAL.read_text(encoding="utf-8")
                    + f"backends:\n  {backend}:\n    default_branch: {quoted}\n",
                    encoding="utf-8")
    return spec


@pytest.mark.parametrize("backend", ["circleci", "github", "gitlab"])
# The name as Python writes it, its backslashes as '%': pytest cannot select an id
# holding a backslash in a second session in one process (mutmut's runs do that).
@pytest.mark.parametrize("branch", REFUSED, ids=lambda branch: repr(branch).replace("\\", "%"))
def test_a_name_git_refuses_is_refused_at_the_value(tmp_path: Path, backend: str,
                                                    branch: str) -> None:
    spec = _spec(tmp_path, backend, branch)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    line = spec.read_text(encoding="utf-8").count("\n")
    shown = branch.replace("\t", "\\x09").replace("\x7f", "\\x7f")
    assert (f"{spec}:{line}:21: backends.{backend}.default_branch '{shown}' is not a branch "
            "name git accepts (git check-ref-format --branch) [value]") in result.output


@pytest.mark.parametrize("backend", ["circleci", "github", "gitlab"])
@pytest.mark.parametrize("branch", ACCEPTED)
def test_a_name_git_accepts_is_accepted(tmp_path: Path, backend: str, branch: str) -> None:
    result = CliRunner().invoke(main, ["validate", str(_spec(tmp_path, backend, branch))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("branch", ACCEPTED)
def test_github_publishes_from_exactly_that_branch(tmp_path: Path, branch: str) -> None:
    """The job condition compares the whole ref (a quote written twice inside the
    expression string), and the push filter escapes the pattern characters a branch
    name can hold: '+' and a leading '!' (GitHub docs, filter pattern cheat sheet)."""
    document = emitted(_spec(tmp_path, "github", branch), "github").document()
    (publish,) = [job for job_id, job in document["jobs"].items()
                  if job_id.startswith("publish-")]
    context = {"github.event_name": "push"}
    assert github_if(publish["if"], {**context, "github.ref": f"refs/heads/{branch}"})
    assert not github_if(publish["if"], {**context, "github.ref": f"refs/heads/{branch}x"})
    escaped = {"v1+build": "v1\\+build", "!odd": "\\!odd"}
    assert document["on"]["push"]["branches"] == [escaped.get(branch, branch)]


# What each backend's publish condition cannot hold (structure._UNWRITABLE), and which
# backends refuse each name.
UNWRITABLE = {'rel"ease': {"gitlab"}, "rel$ease": {"gitlab"},
              "x${{github.ref}}": {"github", "gitlab"}, "x<<pipeline.id>>": {"circleci"}}
SAYS = {"gitlab": "a GitLab rule (no '\"' or '$')", "github": "a GitHub expression (no '${{')",
        "circleci": "CircleCI's config (no '<<')"}


@pytest.mark.parametrize("backend", ["circleci", "github", "gitlab"])
@pytest.mark.parametrize("branch", UNWRITABLE)
def test_a_name_a_backend_cannot_write_is_refused_for_that_backend_only(
        tmp_path: Path, backend: str, branch: str) -> None:
    spec = _spec(tmp_path, backend, branch)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    if backend not in UNWRITABLE[branch]:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    line = spec.read_text(encoding="utf-8").count("\n")
    assert (f"{spec}:{line}:21: backends.{backend}.default_branch '{branch}' cannot be "
            f"compared in {SAYS[backend]} [value]") in result.output
