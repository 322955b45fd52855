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


#: Keep a Changelog's kinds of change, in its order (CHANGELOG.md's preamble).
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def test_changelog_sections_have_each_kind_of_change_once() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.splitlines()[0]
        kinds = re.findall(r"^### (.*)$", section, re.M)
        assert set(kinds) <= set(KINDS), (name, kinds)
        assert kinds == sorted(set(kinds), key=KINDS.index), (name, kinds)


def _step(job: str, name: str) -> dict[str, str]:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    (step,) = [s for s in jobs[job]["steps"] if s.get("name", "").startswith(name)]
    assert isinstance(step, dict)
    return step


def _run_step(step: dict[str, str], cwd: Path,
              env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it on Linux without `shell:`: `bash -e {0}`
    (GitHub docs, workflow syntax, `jobs.<job_id>.steps[*].shell`)."""
    script = cwd.parent / "step.sh"
    script.write_text(step["run"])
    return subprocess.run(["bash", "-e", str(script)], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ, **env})


def _release_checkout(tmp_path: Path, version: str, changelog: str) -> Path:
    checkout = tmp_path / "checkout"
    (checkout / "kvc").mkdir(parents=True)
    (checkout / "kvc/__init__.py").write_text(f'__version__ = "{version}"\n')
    (checkout / "CHANGELOG.md").write_text(changelog)
    return checkout


@pytest.mark.parametrize(("tag", "changelog", "refusal"), [
    ("v1.2.0", "# Changelog\n\n## Unreleased\n\n## [1.2.0] - 2026-12-01\n", None),
    ("v1.2.0", "# Changelog\n\n## Unreleased\n\n### Added\n- 1.2.0\n",
     "CHANGELOG.md has no '## [1.2.0]' section"),
    ("v1.2.0", "# Changelog\n\n## [1.2.0rc1] - 2026-11-01\n## [1.1.0] - 2026-10-01\n",
     "CHANGELOG.md has no '## [1.2.0]' section"),
    ("v1.2.1", "# Changelog\n\n## [1.2.0] - 2026-12-01\n",
     "tag v1.2.1 does not match kvc.__version__ 1.2.0"),
])  # fmt: skip
def test_release_refuses_a_tag_without_its_version_and_changelog_section(
        tmp_path: Path, tag: str, changelog: str, refusal: str | None) -> None:
    checkout = _release_checkout(tmp_path, "1.2.0", changelog)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)  # setup-python's python3
    done = _run_step(_step("build", "The tag must be"), checkout,
                     {"TAG": tag, "PATH": f"{bindir}:{os.environ['PATH']}"})
    if refusal is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode != 0
        assert done.stderr.strip() == refusal


def test_this_changelog_would_pass_the_release_check_once_cut(tmp_path: Path) -> None:
    """Cutting a release (docs/releasing.md, step 1) renames ## Unreleased."""
    text = (ROOT / "CHANGELOG.md").read_text().replace(
        "\n## Unreleased\n", "\n## Unreleased\n\n## [9.8.7] - 2026-12-03\n", 1)
    checkout = _release_checkout(tmp_path, "9.8.7", text)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    done = _run_step(_step("build", "The tag must be"), checkout,
                     {"TAG": "v9.8.7", "PATH": f"{bindir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr


def test_release_builds_both_distributions_and_checks_them_strictly(tmp_path: Path) -> None:
    """The build step run against a stub python3 that records its arguments."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "python3.log"
    (bindir / "python3").write_text(f"""#!/bin/bash
echo "$*" >> {shlex.quote(str(log))}
if [ "$1 $2" = "-m build" ] && [ $# -eq 2 ]; then  # no --sdist/--wheel: both
  mkdir -p dist && touch dist/kvc-1.2.0.tar.gz dist/kvc-1.2.0-py3-none-any.whl
fi
""")
    (bindir / "python3").chmod(0o755)
    done = _run_step(_step("build", "Build the sdist"), checkout,
                     {"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    pip, build, twine = log.read_text().splitlines()
    assert build == "-m build"
    assert twine == ("-m twine check --strict "
                     "dist/kvc-1.2.0-py3-none-any.whl dist/kvc-1.2.0.tar.gz")
    # The tools are the ones the test extra installs (and the wheel test uses).
    extra = re.search(r"^test = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(),
                      re.M | re.S)
    assert extra is not None
    for requirement in pip.split()[5:]:
        assert f'"{requirement}"' in extra.group(1), requirement
    assert pip.split()[:5] == ["-m", "pip", "install", "-q", "--disable-pip-version-check"]
    upload = _workflow()["jobs"]["build"]["steps"][-1]
    assert upload["with"]["path"] == "dist/" and upload["with"]["if-no-files-found"] == "error"
    download = _workflow()["jobs"]["publish"]["steps"][0]
    assert download["with"] == {"name": upload["with"]["name"], "path": "dist/"}


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


@pytest.mark.slow  # builds, checks and installs for real; offline: tools from the test extra
def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    """Build sdist+wheel offline, twine-check them, install the wheel alone, run `kvc`.

    setuptools, build and twine come from the test extra (pyproject.toml), so
    nothing is downloaded: `--no-isolation` builds with the installed setuptools.
    """
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
    # `--python`: pip installs for the fresh venv's interpreter, so the `kvc` console
    # script lands in its bin/ and starts that interpreter.
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh / "bin/python"),
                                "install", "-q", "--no-deps", "--no-index", str(artifacts[1])],
                               capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {"PATH": f"{fresh / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    version = subprocess.run(["kvc", "--version"], capture_output=True, text=True, check=False,
                             cwd=tmp_path, env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"kvc, version {__version__}"
    assert shutil.which("kvc", path=env["PATH"]) == str(fresh / "bin/kvc")
    where = subprocess.run([fresh / "bin/python", "-c", "import kvc; print(kvc.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(purelib))
    starter = subprocess.run(["kvc", "init", str(tmp_path / "new")], capture_output=True,
                             text=True, check=False, cwd=tmp_path, env=env)
    assert starter.returncode == 0, starter.stderr  # package data (templates) is in the wheel
