"""The scheduled lock-and-recompile job, as emitted for both backends.

The CircleCI job is one shell script: it runs here for real against a git
repository with a local bare remote, with `kvc` and `gh` replaced by stubs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc import __version__
from kvc.backends import update
from kvc.backends.actions import ACTIONS
from kvc.cli import main
from tests.backends.ci_syntax import strings
from tests.backends.expressions import github_if

ROOT = Path(__file__).resolve().parent.parent
SCHEDULE = "17 3 * * 2"


def _compile(tmp_path: Path, backend: str) -> Path:
    spec = tmp_path / "kvc.yaml"
    text = (ROOT / "examples/minimal/kvc.yaml").read_text()
    spec.write_text(text.replace("flavors:", f'update:\n  schedule: "{SCHEDULE}"\nflavors:', 1))
    result = CliRunner().invoke(main, ["compile", str(spec), "--backend", backend])
    assert result.exit_code == 0, result.output
    return tmp_path


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def test_github_update_workflow(tmp_path: Path) -> None:
    root = _compile(tmp_path, "github")
    workflow = _load(root / ".github/workflows/kvc-update.yml")
    assert workflow["on"]["schedule"] == [{"cron": SCHEDULE}]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    job = workflow["jobs"]["lock"]
    assert job["permissions"] == {"contents": "read"}  # the App or PAT token writes
    runs = [step.get("run", "") for step in job["steps"]]
    assert any(r.endswith("lock kvc.yaml") for r in runs)
    assert any(r.endswith("compile kvc.yaml --backend github") for r in runs)
    lock_step = next(s for s in job["steps"] if s.get("id") == "lock")
    assert lock_step["continue-on-error"] is True
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert ACTIONS["create-pull-request"].uses() in uses
    last = job["steps"][-1]
    assert last["if"] == "steps.lock.outcome == 'failure'"


def test_circleci_update_workflow_is_separate_from_the_pipeline(tmp_path: Path) -> None:
    root = _compile(tmp_path, "circleci")
    text = (root / ".circleci/kvc.yml").read_text()
    assert f"cron '{SCHEDULE}'" in text.split("version:")[0]
    config = _load(root / ".circleci/kvc.yml")  # the continuation of the setup workflow
    scheduled = {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}
    images = [w for name, w in config["workflows"].items() if name != "kvc-update"]
    assert images and all(w["when"]["and"][0] == {"not": scheduled} for w in images)
    assert scheduled in config["workflows"]["kvc-update"]["when"]["and"]
    # GH_TOKEN lives in its own context: the registry jobs never see it, nor it theirs.
    assert config["workflows"]["kvc-update"]["jobs"] == [{"kvc-update": {
        "context": ["kvc-update"]}}]
    assert "context (kvc-update) needs GH_TOKEN" in text.split("version:")[0]


def _stub(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _script_env(tmp_path: Path, lock_status: int) -> tuple[Path, dict[str, str]]:
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "kvc.yaml").write_text("kvc: 1\n")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "x")
    _git(work, "push", "-q", "origin", "main")
    home = tmp_path / "home"
    kvc_bin = home / ".kvc-venv/bin"
    kvc_bin.mkdir(parents=True)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _stub(stubs, "python3", "exit 0\n")  # the venv install step
    _stub(kvc_bin, "python", f'echo "$@" >> "{tmp_path}/pip.log"\n')
    _stub(kvc_bin, "kvc", f'''echo "$@" >> "{tmp_path}/kvc.log"
if [ "$1" = lock ]; then echo '# pinned' >> kvc.yaml; exit {lock_status}; fi
mkdir -p .kvc && echo generated > .kvc/new.txt
''')
    _stub(stubs, "gh", f'echo "$@" >> "{tmp_path}/gh.log"\n')
    env = {**os.environ, "HOME": str(home), "PATH": f"{stubs}:{os.environ['PATH']}"}
    return work, env


def test_update_script_pushes_a_branch_and_opens_a_pr_even_after_a_lock_failure(
        tmp_path: Path) -> None:
    work, env = _script_env(tmp_path, lock_status=1)
    script = update.script("kvc.yaml", "circleci")
    # CircleCI runs steps with `bash -eo pipefail`.
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=work, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr  # the lock failure is not hidden
    assert (tmp_path / "kvc.log").read_text().splitlines() == [
        "lock kvc.yaml", "compile kvc.yaml --backend circleci"]
    pushed = _git(tmp_path / "remote.git", "show", f"{update.BRANCH}:kvc.yaml")
    assert "# pinned" in pushed
    assert _git(tmp_path / "remote.git", "show", f"{update.BRANCH}:.kvc/new.txt") == "generated\n"
    assert (tmp_path / "gh.log").read_text().startswith(f"pr create --head {update.BRANCH}")
    assert "'kvc==" not in (tmp_path / "pip.log").read_text()  # quotes were shell syntax
    assert "install -q --disable-pip-version-check kvc==" in (tmp_path / "pip.log").read_text()


def test_update_script_does_nothing_when_nothing_changed(tmp_path: Path) -> None:
    work, env = _script_env(tmp_path, lock_status=0)
    kvc_stub = Path(env["HOME"]) / ".kvc-venv/bin/kvc"
    _stub(kvc_stub.parent, "kvc", "exit 0\n")
    result = subprocess.run(["bash", "-eo", "pipefail", "-c",
                             update.script("kvc.yaml", "circleci")], cwd=work,
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "gh.log").exists()
    assert update.BRANCH not in _git(tmp_path / "remote.git", "branch")


def test_update_script_pushes_over_https_when_the_checkout_used_ssh(tmp_path: Path) -> None:
    """CircleCI checks out with a read-only deploy key (git@host:owner/repo): the branch
    must go over HTTPS with the job's token, which reaches git only through a helper."""
    work, env = _script_env(tmp_path, lock_status=0)
    _git(work, "remote", "set-url", "origin", "git@example.invalid:owner/repo.git")
    # Only the HTTPS form is routed to the local remote; an SSH push would fail.
    env.update({"GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"url.{tmp_path / 'remote.git'}.insteadOf",
                "GIT_CONFIG_VALUE_0": "https://example.invalid/owner/repo.git",
                "GH_TOKEN": "s3cret-token"})
    result = subprocess.run(["bash", "-eo", "pipefail", "-c",
                             update.script("kvc.yaml", "circleci")], cwd=work, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "# pinned" in _git(tmp_path / "remote.git", "show", f"{update.BRANCH}:kvc.yaml")
    assert "s3cret-token" not in result.stdout + result.stderr
    assert "s3cret-token" not in update.script("kvc.yaml", "circleci")


def test_github_update_pull_request_uses_an_app_or_pat_token_before_github_token(
        tmp_path: Path) -> None:
    """A PR opened with GITHUB_TOKEN triggers no workflow, so the update PR would get no CI."""
    job = _load(_compile(tmp_path, "github") / ".github/workflows/kvc-update.yml")["jobs"]["lock"]
    steps = job["steps"]
    app = next(s for s in steps if s.get("id") == "app")
    assert app["uses"] == ACTIONS["create-github-app-token"].uses()
    assert app["if"] == "vars.KVC_UPDATE_APP_CLIENT_ID != ''"  # optional: skipped without an App
    assert app["with"]["private-key"] == "${{ secrets.KVC_UPDATE_APP_PRIVATE_KEY }}"
    pr = next(s for s in steps if s.get("uses") == ACTIONS["create-pull-request"].uses())
    assert steps.index(app) < steps.index(pr)
    assert pr["with"]["token"] == "${{ steps.app.outputs.token || secrets.KVC_UPDATE_TOKEN }}"
    # The commit changes .github/workflows: the App token must carry `workflows`, and
    # GITHUB_TOKEN (which never can) pushes nothing, so the job itself only reads.
    assert app["with"]["permission-workflows"] == "write"
    assert job["permissions"] == {"contents": "read"}


@pytest.mark.parametrize(("token", "changed", "fails"), [
    ("", True, True), ("ghs_x", True, False), ("", False, False), ("ghs_x", False, False)])
def test_github_update_without_an_app_or_pat_fails_saying_what_to_configure(
        tmp_path: Path, token: str, changed: bool, fails: bool) -> None:
    job = _load(_compile(tmp_path, "github") / ".github/workflows/kvc-update.yml")["jobs"]["lock"]
    (guard,) = [s for s in job["steps"] if s.get("env", {}).get("KVC_HAS_TOKEN")]
    steps = job["steps"]
    pr = next(s for s in steps if s.get("uses") == ACTIONS["create-pull-request"].uses())
    assert steps.index(guard) < steps.index(pr)
    # The guard sees whether the pull request's token is set, not the token itself.
    assert guard["env"]["KVC_HAS_TOKEN"] == (
        "${{ (steps.app.outputs.token || secrets.KVC_UPDATE_TOKEN) != '' }}")
    repo = tmp_path / "checkout"
    repo.mkdir()
    _git(repo, "init", "-q")
    if changed:
        (repo / "kvc.yml").write_text("changed\n")
    output = tmp_path / "github-output"
    output.touch()
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", guard["run"]], cwd=repo,
                            env={**os.environ, "KVC_HAS_TOKEN": "true" if token else "false",
                                 "GITHUB_OUTPUT": str(output)},
                            capture_output=True, text=True, check=False)
    assert (result.returncode != 0) is fails
    assert ("secrets.KVC_UPDATE_TOKEN" in result.stdout) is fails
    if fails:
        return
    # create-pull-request throws on an empty token, changes or not
    # (peter-evans/create-pull-request@v8.1.1:src/main.ts:44-45): it runs only with one.
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    context = {f"steps.{guard['id']}.conclusion": "success",
               **{f"steps.{guard['id']}.outputs.{k}": v for k, v in outputs.items()}}
    assert github_if(pr.get("if", "success()"), context) is bool(token)


@pytest.mark.parametrize(("backend", "path"), [
    ("github", ".github/workflows/kvc-update.yml"),
    ("circleci", ".circleci/kvc.yml"),
    ("gitlab", ".gitlab-ci.yml"),
])  # fmt: skip
def test_every_backend_s_update_job_installs_the_kvc_that_generated_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, path: str) -> None:
    """Issue 13: the job reinstalls this kvc (its version, or the commit it came from)."""
    sha = hashlib.sha1(b"the commit that generated it").hexdigest()
    this_kvc = f"kvc @ git+https://github.com/acme/kvc@{sha}"
    monkeypatch.setattr(update, "requirement", lambda: this_kvc)
    text = (_compile(tmp_path, backend) / path).read_text()
    assert f"Generated by kvc {__version__} from kvc.yaml" in text.splitlines()[0]
    installs = [s for _, s in strings(_load(tmp_path / path)) if "pip install" in s]
    assert installs, "no install step"
    for script in installs:
        assert f"--disable-pip-version-check {shlex.quote(this_kvc)}" in script, script
