"""Releases and pinning: the release workflow, the built wheel, the update job's kvc."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc import __version__
from kvc.backends import update
from kvc.backends.actions import ACTIONS
from kvc.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/release.yml"
BIN = Path(sys.executable).parent
SHA = "0123456789abcdef0123456789abcdef01234567"


def _workflow() -> dict[str, object]:
    data = YAML(typ="safe").load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def _uses(job: dict[str, object]) -> list[str]:
    steps = job["steps"]
    assert isinstance(steps, list)
    return [step["uses"] for step in steps if "uses" in step]


def test_release_workflow_is_valid_and_zizmor_clean() -> None:
    schema = subprocess.run([BIN / "check-jsonschema", "--builtin-schema",
                             "vendor.github-workflows", WORKFLOW], capture_output=True,
                            text=True, check=False)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    zizmor = subprocess.run([BIN / "zizmor", "--offline", "--no-config", "--persona", "auditor",
                             WORKFLOW], capture_output=True, text=True, check=False, env=env)
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr


def test_release_publishes_on_a_tag_by_trusted_publishing_with_pinned_actions() -> None:
    data = _workflow()
    assert data["on"] == {"push": {"tags": ["v*"]}}
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    build, publish = jobs["build"], jobs["publish"]
    assert "twine check --strict dist/*" in WORKFLOW.read_text()
    assert "python3 -m build" in WORKFLOW.read_text()
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert data["permissions"] == {"contents": "read"}
    publish_step = publish["steps"][-1]
    assert publish_step["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "with" not in publish_step  # no password or token: trusted publishing
    table = {a.repo: a.sha for a in ACTIONS.values()}
    for uses in _uses(build) + _uses(publish):
        repo, _, ref = uses.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), uses
        if repo in table:
            assert ref == table[repo], f"{repo} differs from kvc/backends/actions.py"


def test_changelog_has_an_unreleased_section_and_versioned_headings() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "\n## Unreleased\n" in text
    for heading in re.findall(r"^## \[(.+?)\]", text, re.M):
        assert re.fullmatch(r"\d+\.\d+\.\d+(rc\d+)?", heading), heading


def test_the_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = {attr = "kvc.__version__"}' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+(rc\d+|\.dev\d+)?", __version__)


@pytest.mark.parametrize(("record", "expected"), [
    ({"url": "https://github.com/acme/kvc", "vcs_info": {"vcs": "git", "commit_id": SHA}},
     ("https://github.com/acme/kvc", SHA)),
    ({"url": "https://github.com/acme/kvc", "vcs_info": {"vcs": "git", "commit_id": "main"}},
     None),
    ({"url": "file:///src/kvc", "dir_info": {"editable": True}}, None),
    ({"url": "https://files.example/kvc-0.1.0.tar.gz", "archive_info": {}}, None),
])  # fmt: skip
def test_installed_commit_from_the_pip_record(record: dict[str, object],
                                              expected: tuple[str, str] | None) -> None:
    assert update.from_direct_url(record) == expected


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize(("origin", "remote"), [
    ("https://github.com/acme/kvc", "https://github.com/acme/kvc"),
    ("git@github.com:acme/kvc.git", "ssh://git@github.com/acme/kvc"),
    ("https://github.com/acme/kvc.git/", "https://github.com/acme/kvc"),
    ("/home/me/kvc", None),  # a checkout on this disk: CI cannot clone it
    ("https://example.org/acme/kvcX/", "https://example.org/acme/kvcX"),  # only "/" is cut
])  # fmt: skip
def test_a_pre_commit_clone_installs_its_commit(tmp_path: Path, origin: str,
                                                remote: str | None) -> None:
    clone = tmp_path / "repo"
    clone.mkdir()
    _git(clone, "init", "-q")
    _git(clone, "remote", "add", "origin", origin)
    (clone / "f").write_text("x")
    _git(clone, "add", "f")
    _git(clone, "commit", "-qm", "c")
    head = _git(clone, "rev-parse", "HEAD")
    record = {"url": clone.as_uri(), "dir_info": {}}
    assert update.from_direct_url(record) == ((remote, head) if remote else None)
    # an editable install is a development checkout, whatever its state
    assert update.from_direct_url({**record, "dir_info": {"editable": True}}) is None
    (clone / "f").write_text("dirty")
    assert update.from_direct_url(record) is None


@pytest.mark.parametrize(("origin", "remote"), [
    ("http://example.org/acme/kvc", "http://example.org/acme/kvc"),
    ("ssh://git@example.org/acme/kvc.git", "ssh://git@example.org/acme/kvc"),
    ("git://example.org/acme/kvc", "git://example.org/acme/kvc"),
    ("file:///srv/git/kvc", None),
])  # fmt: skip
def test_each_remote_scheme_ci_can_clone_is_kept(origin: str, remote: str | None) -> None:
    assert update.remote_url(origin) == remote


class _Installed:
    def __init__(self, record: str | None) -> None:
        self.record = record

    def read_text(self, name: str) -> str | None:
        return self.record if name == "direct_url.json" else None


@pytest.mark.parametrize(("record", "expected"), [
    (json.dumps({"url": "https://github.com/acme/kvc",
                 "vcs_info": {"vcs": "git", "commit_id": SHA}}),
     ("https://github.com/acme/kvc", SHA)),
    (None, None),  # installed without the record
    ("{not json", None),
    ("[]", None),
])  # fmt: skip
def test_the_installed_commit_is_read_from_kvcs_own_record(
        monkeypatch: pytest.MonkeyPatch, record: str | None,
        expected: tuple[str, str] | None) -> None:
    def distribution(name: str) -> _Installed:
        if name != "kvc":
            raise importlib.metadata.PackageNotFoundError(name)
        return _Installed(record)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    assert update._installed_commit() == expected


def test_a_clone_without_an_origin_installs_by_version(tmp_path: Path) -> None:
    """git's answer for the missing origin is an exit status, not an error."""
    clone = tmp_path / "repo"
    clone.mkdir()
    _git(clone, "init", "-q")
    (clone / "f").write_text("x")
    _git(clone, "add", "f")
    _git(clone, "commit", "-qm", "c")
    assert update.from_direct_url({"url": clone.as_uri(), "dir_info": {}}) is None


@pytest.mark.parametrize(("version", "commit", "expected"), [
    ("0.2.0.dev0", ("https://github.com/acme/kvc", SHA),
     f"kvc @ git+https://github.com/acme/kvc@{SHA}"),
    ("0.2.0.dev0", None, "kvc==0.2.0.dev0"),
    ("0.2.0", ("https://github.com/acme/kvc", SHA), "kvc==0.2.0"),  # a release is its tag
    ("0.2.0rc1", None, "kvc==0.2.0rc1"),
])  # fmt: skip
def test_the_update_job_installs_the_kvc_that_generated_it(
        monkeypatch: pytest.MonkeyPatch, version: str, commit: tuple[str, str] | None,
        expected: str) -> None:
    monkeypatch.setattr(update, "__version__", version)
    monkeypatch.setattr(update, "_installed_commit", lambda: commit)
    update.requirement.cache_clear()
    try:
        assert shlex.split(update.install())[-1] == expected
        assert shlex.quote(expected) in update.script("k.yaml", "x")
        assert update.installable() is (expected != "kvc==0.2.0.dev0")
    finally:
        update.requirement.cache_clear()


def test_compile_warns_when_the_update_job_could_not_install_this_kvc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text((ROOT / "tests/data/ok/backends-update.yaml").read_text())
    monkeypatch.setattr(update, "installable", lambda: False)
    result = CliRunner().invoke(main, ["compile", str(spec), "-b", "github"])
    assert result.exit_code == 0, result.output
    assert "kvc: warning: the update job installs kvc==" in result.output
    monkeypatch.setattr(update, "installable", lambda: True)
    result = CliRunner().invoke(main, ["compile", str(spec), "-b", "github"])
    assert "warning" not in result.output


@pytest.mark.integration
def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    """Build sdist+wheel offline, twine-check them, install the wheel alone, run it."""
    source = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                            str(dist), str(source)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    artifacts = sorted(dist.iterdir(), key=lambda p: p.suffix)
    assert [p.suffix for p in artifacts] == [".gz", ".whl"]
    twine = subprocess.run([BIN / "twine", "check", "--strict", *artifacts],
                           capture_output=True, text=True, check=False)
    assert twine.returncode == 0, twine.stdout + twine.stderr

    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    purelib = Path(subprocess.run(
        [fresh / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies come from this venv (no network); kvc only from the wheel.
    (purelib / "deps-from-test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--no-index", "--target", str(purelib), str(artifacts[1])],
                               capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = subprocess.run([fresh / "bin/python", "-m", "kvc", "--version"],
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"kvc, version {__version__}"
    where = subprocess.run([fresh / "bin/python", "-c", "import kvc; print(kvc.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(purelib))
    starter = subprocess.run([fresh / "bin/python", "-m", "kvc", "init", str(tmp_path / "new")],
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert starter.returncode == 0, starter.stderr  # package data (templates) is in the wheel
