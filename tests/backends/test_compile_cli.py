"""`kvc compile` end to end through the CLI: the written tree, --check, left-overs, refusals."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kvc.backends.base import MARKER, is_generated
from kvc.cli import main
from tests.backends.conftest import BACKEND_NAMES, EXAMPLES

MINIMAL = next(s for s in EXAMPLES if s.parent.name == "minimal")
SHARED = {
    ".kvc/Containerfile",
    ".kvc/docker-bake.json",
    ".kvc/plan.tsv",
    ".kvc/manifests/debian-12.yaml",
    ".kvc/manifests/debian-12.user-data",
    *(f".kvc/stages/{n}" for n in ("lib.sh", "tools.sh", "build.sh", "containerize.sh",
                                   "test.sh", "test-kubevirt.sh", "test-qemu.sh",
                                   "publish.sh", "plan.sh")),
}
OWN = {"github": {".github/workflows/kvc.yml"},
       "circleci": {".circleci/config.yml", ".circleci/kvc.yml"},
       "gitlab": {".gitlab-ci.yml", ".gitlab/kvc/pipeline.yml", ".gitlab/kvc/nothing.yml",
                  ".gitlab/kvc/images/debian-11.yml", ".gitlab/kvc/images/debian-12.yml"}}
# The file holding the image jobs (CircleCI: the continuation).
MAIN = {"github": ".github/workflows/kvc.yml", "circleci": ".circleci/kvc.yml",
        "gitlab": ".gitlab-ci.yml"}

RELEASE_11 = """\
      - release_version: "11"
        release_name: bullseye
        url: "https://cloud.debian.org/images/cloud/{release_name}/latest/debian-{release_version}-genericcloud-{arch}.qcow2"
        release_checksum:
          amd64: "sha512:%s"
          arm64: "sha512:%s"
""" % (hashlib.sha512(b"amd64").hexdigest(), hashlib.sha512(b"arm64").hexdigest())  # noqa: UP031 - braces in the text are the spec's own

Tree = dict[str, tuple[bytes, int, int]]


def tree(root: Path) -> Tree:
    """Every file under root: content, mode and mtime (so a rewrite is noticed)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def kvc(root: Path, backend: str, *extra: str) -> Result:
    return CliRunner().invoke(main, ["compile", str(root / "kvc.yaml"), "--backend", backend,
                                     "--out", str(root), *extra])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    text = MINIMAL.read_text(encoding="utf-8")
    (tmp_path / "kvc.yaml").write_text(text + RELEASE_11, encoding="utf-8")
    return tmp_path


def age(root: Path) -> None:
    """Backdate every file so that a rewrite within the same clock tick still shows."""
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_compile_writes_the_expected_files(repo: Path, backend: str) -> None:
    result = kvc(repo, backend)
    assert result.exit_code == 0, result.output
    expected = SHARED | OWN[backend] | {".kvc/manifests/debian-11.yaml",
                                         ".kvc/manifests/debian-11.user-data", "kvc.yaml"}
    assert set(tree(repo)) == expected
    for path in (repo / ".kvc" / "stages").iterdir():
        assert path.stat().st_mode & stat.S_IXUSR, path
    assert not (repo / ".kvc" / "docker-bake.json").stat().st_mode & stat.S_IXUSR
    assert f"{len(expected) - 1} files for {backend}" in result.output


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_second_compile_changes_nothing(repo: Path, backend: str) -> None:
    assert kvc(repo, backend).exit_code == 0
    age(repo)
    before = tree(repo)
    result = kvc(repo, backend)
    assert result.exit_code == 0, result.output
    assert "(0 changed)" in result.output
    assert tree(repo) == before


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_check_passes_on_a_current_tree_and_writes_nothing(repo: Path, backend: str) -> None:
    assert kvc(repo, backend).exit_code == 0
    age(repo)
    before = tree(repo)
    result = kvc(repo, backend, "--check")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(" are current\n") and result.output.count("\n") == 1
    assert tree(repo) == before


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_check_reports_stale_and_missing_files_and_writes_nothing(repo: Path,
                                                                  backend: str) -> None:
    assert kvc(repo, backend).exit_code == 0
    # GitLab's runner choice for amd64 is in the image files (the parent names no arch).
    workflow = ".gitlab/kvc/images/debian-12.yml" if backend == "gitlab" else MAIN[backend]
    path = repo / workflow
    path.write_text(path.read_text(encoding="utf-8").replace("amd64", "amd46"), encoding="utf-8")
    (repo / ".kvc" / "docker-bake.json").unlink()
    age(repo)
    before = tree(repo)
    result = kvc(repo, backend, "--check")
    assert result.exit_code == 1, result.output
    assert f"stale: {workflow}" in result.output
    assert "missing: .kvc/docker-bake.json" in result.output
    assert "-" in result.output and "amd46" in result.output  # the diff is shown
    assert "2 generated file(s) out of date" in result.output
    assert tree(repo) == before
    # and compile repairs exactly those two
    repaired = kvc(repo, backend)
    assert repaired.exit_code == 0 and "(2 changed)" in repaired.output
    assert kvc(repo, backend, "--check").exit_code == 0


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_a_removed_release_leaves_a_left_over_that_compile_deletes(repo: Path,
                                                                     backend: str) -> None:
    assert kvc(repo, backend).exit_code == 0
    spec = repo / "kvc.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(RELEASE_11, ""), encoding="utf-8")
    age(repo)
    before = tree(repo)
    check = kvc(repo, backend, "--check")
    assert check.exit_code == 1, check.output
    assert "left over: .kvc/manifests/debian-11.yaml" in check.output
    assert tree(repo) == before
    result = kvc(repo, backend)
    assert result.exit_code == 0, result.output
    assert not (repo / ".kvc" / "manifests" / "debian-11.yaml").exists()
    assert (repo / ".kvc" / "manifests" / "debian-12.yaml").exists()
    assert kvc(repo, backend, "--check").exit_code == 0
    if backend == "gitlab":  # the image's own child-pipeline file goes with it
        assert "left over: .gitlab/kvc/images/debian-11.yml" in check.output
        assert not (repo / ".gitlab/kvc/images/debian-11.yml").exists()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_files_kvc_did_not_write_are_never_touched(repo: Path, backend: str) -> None:
    assert kvc(repo, backend).exit_code == 0
    foreign = repo / ".kvc" / "manifests" / "mine.yaml"  # no header: not a left-over
    foreign.write_text("kind: ConfigMap\n", encoding="utf-8")
    workflow = MAIN[backend]
    hand_written = repo / workflow
    hand_written.write_text("# my own pipeline\nversion: 2.1\n", encoding="utf-8")
    age(repo)
    before = tree(repo)
    result = kvc(repo, backend)
    assert result.exit_code == 1
    assert "was not generated by kvc" in result.output
    assert str(hand_written) in result.output
    assert tree(repo) == before  # nothing else written either
    hand_written.unlink()
    assert kvc(repo, backend).exit_code == 0
    assert foreign.read_text(encoding="utf-8") == "kind: ConfigMap\n"


def test_unknown_backend_suggests_the_closest(repo: Path) -> None:
    result = kvc(repo, "githb")
    assert result.exit_code == 2  # a usage error (docs/cli.md)
    assert "'githb'; did you mean 'github'?" in result.output
    assert set(tree(repo)) == {"kvc.yaml"}


PULL_WARNING = "warning: CircleCI test jobs pull the staged ghcr.io images without credentials"


@pytest.mark.parametrize(("backends", "backend", "warns"), [
    ("", "circleci", True),  # a new ghcr.io package is private: the test pull would fail
    ("backends:\n  circleci:\n    resource_class: {amd64: large}\n", "circleci", True),
    ("backends:\n  circleci:\n    pull_context: [kvc-pull]\n", "circleci", False),
    ("backends:\n  circleci:\n    pull_context: []\n", "circleci", False),  # public, said so
    ("", "github", False),  # GITHUB_TOKEN with packages: read pulls from ghcr.io
    ("", "gitlab", False),  # CI/CD variables are invisible to kvc
])
def test_compile_warns_when_circleci_tests_pull_without_credentials(
        repo: Path, backends: str, backend: str, warns: bool) -> None:
    spec = repo / "kvc.yaml"
    spec.write_text(spec.read_text() + backends)
    result = kvc(repo, backend)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if PULL_WARNING in line]
    assert len(lines) == (1 if warns else 0), result.output
    if warns:
        where = "backends" if backends else "registry"
        line_no = next(i for i, text in enumerate(spec.read_text().splitlines(), 1)
                       if text.startswith(f"{where}:"))
        column = 3 if backends else 1  # the circleci key under backends, else registry
        assert lines[0].startswith(f"{spec}:{line_no + (1 if backends else 0)}:{column}: ")
        assert "ErrImagePull" in lines[0] and "pull_context" in lines[0]


@pytest.mark.parametrize("host", ["ghcr.io", "quay.io"])
def test_the_pull_warning_is_one_exact_line_private_only_where_new_packages_are(
        tmp_path: Path, host: str) -> None:
    """From surviving mutants (docs/mutation/compiler.md): the warning's text, and the
    ErrImagePull sentence only for a registry whose new packages are private (ghcr.io)."""
    spec = tmp_path / "kvc.yaml"
    text = MINIMAL.read_text(encoding="utf-8").replace("ghcr.io/example", f"{host}/example")
    spec.write_text(text + "backends:\n  circleci:\n    default_branch: main\n",
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    line_no = next(i for i, t in enumerate(spec.read_text().splitlines(), 1)
                   if t == "  circleci:")
    private = (" A new ghcr.io package is private, so the first test would fail with "
               "ErrImagePull." if host == "ghcr.io" else "")
    assert [line for line in result.stderr.splitlines() if ": warning: " in line] == [
        f"{spec}:{line_no}:3: warning: CircleCI test jobs pull the staged {host} images "
        f"without credentials: backends.circleci.pull_context is not set.{private} Set it to "
        "a context holding read-only KVC_PULL_USER/KVC_PULL_PASSWORD, or to [] when the "
        "images are public (docs/backends/circleci.md) [pull-credentials]"]


def test_validate_warns_as_the_compiles_of_the_configured_backends_would(
        tmp_path: Path) -> None:
    """A spec with settings for a backend runs there: validate prints what that
    backend's compile would warn about, and nothing for the backends it does not name."""
    spec = tmp_path / "kvc.yaml"
    text = MINIMAL.read_text(encoding="utf-8")
    assert "backends:" not in text
    runner = CliRunner()
    spec.write_text(text, encoding="utf-8")
    plain = runner.invoke(main, ["validate", str(spec)])
    assert plain.exit_code == 0 and "warning" not in plain.output, plain.output
    spec.write_text(text + "backends:\n  circleci:\n    default_branch: main\n"
                    "  gitlab:\n    default_branch: main\n", encoding="utf-8")
    both = runner.invoke(main, ["validate", str(spec)])
    assert both.exit_code == 0, both.output
    for backend in ("circleci", "gitlab"):
        compiled = runner.invoke(main, ["compile", str(spec), "--backend", backend,
                                        "--out", str(tmp_path / backend)])
        warned = [line for line in compiled.output.splitlines() if ": warning: " in line]
        assert warned and all(line in both.output for line in warned), (backend, warned)
    assert "[pull-credentials]" in both.output and "[gitlab-artifact-size]" in both.output


def test_only_a_marker_in_the_first_five_lines_makes_a_file_kvcs() -> None:
    """A hand-written file that quotes kvc's header further down stays the user's."""
    assert is_generated("\n" * 4 + f"# {MARKER} 1.0 from kvc.yaml\n")
    assert not is_generated("\n" * 5 + f"# {MARKER} 1.0 from kvc.yaml\n")
