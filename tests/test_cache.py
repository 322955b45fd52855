"""The compile cache (kvc/cache.py): reused only while nothing a compile derives from changed."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from kvc import cache
from kvc.commands import compile as compile_command
from kvc.compiler import driver
from kvc.spec.diagnostics import SpecError
from tests.conftest import DATA, ROOT

MINIMAL = ROOT / "examples" / "minimal" / "kvc.yaml"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    where = tmp_path / "cache"
    monkeypatch.delenv("KVC_NO_CACHE")
    monkeypatch.setenv("KVC_CACHE_DIR", str(where))
    return where


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    copy = tmp_path / "repo" / "kvc.yaml"
    copy.parent.mkdir()
    shutil.copy(MINIMAL, copy)
    return copy


def _compiling_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a compile that is not served by the cache raises."""
    def refuse(raw: bytes, name: str) -> driver.Resolved:
        raise AssertionError("compiled instead of served from the cache")
    monkeypatch.setattr(driver, "load_source", refuse)


def _compile(spec: Path, *, check: bool = False, backend: str = "github") -> int:
    return compile_command.run(spec, backend, out=spec.parent, check=check)


def test_an_unchanged_compile_is_served_from_the_cache(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compile(spec) == 0
    written = {p: p.read_bytes() for p in spec.parent.rglob("*") if p.is_file()}
    _compiling_fails(monkeypatch)
    assert _compile(spec) == 0
    assert _compile(spec, check=True) == 0
    assert {p: p.read_bytes() for p in spec.parent.rglob("*") if p.is_file()} == written


def test_a_hit_still_writes_and_checks_the_tree(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _compile(spec)
    workflow = next((spec.parent / ".github" / "workflows").iterdir())
    expected = workflow.read_text(encoding="utf-8")
    _compiling_fails(monkeypatch)
    workflow.write_text(expected + "# edited\n", encoding="utf-8")
    assert _compile(spec, check=True) == 1
    assert "stale:" in capsys.readouterr().out
    assert _compile(spec) == 0
    assert workflow.read_text(encoding="utf-8") == expected


@pytest.mark.parametrize("change", ["spec", "backend", "out"])
def test_a_changed_input_is_compiled_again(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    _compile(spec)
    _compiling_fails(monkeypatch)
    with pytest.raises(AssertionError, match="compiled instead"):
        if change == "spec":
            spec.write_text(spec.read_text(encoding="utf-8") + "# a comment\n",
                            encoding="utf-8")
            _compile(spec)
        elif change == "backend":
            _compile(spec, backend="circleci")
        else:
            compile_command.run(spec, "github", out=spec.parent / "elsewhere")


def test_changed_code_or_libraries_are_compiled_again(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _compile(spec)
    _compiling_fails(monkeypatch)
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another kvc")
    with pytest.raises(AssertionError, match="compiled instead"):
        _compile(spec)
    monkeypatch.undo()
    monkeypatch.setenv("KVC_CACHE_DIR", str(store))
    _compiling_fails(monkeypatch)
    monkeypatch.setattr(cache, "dependency_fingerprint", lambda: "pydantic-0.0.dist-info")
    with pytest.raises(AssertionError, match="compiled instead"):
        _compile(spec)


def test_the_code_fingerprint_covers_every_file_of_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "kvc"
    shutil.copytree(cache.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", package)
    before = cache.code_fingerprint()
    script = package / "stages" / "build.sh"
    script.write_text(script.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    edited = cache.code_fingerprint()
    assert edited != before
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.pyc").write_bytes(b"bytecode")  # not code kvc runs as is
    assert cache.code_fingerprint() == edited


def test_the_library_fingerprint_names_the_installed_versions() -> None:
    found = cache.dependency_fingerprint()
    for name in ("pydantic", "pydantic_core", "ruamel.yaml"):
        version = metadata.version(name)
        assert any(line.endswith(f"-{version}.dist-info") and
                   line.replace("_", ".").startswith(name.replace("_", "."))
                   for line in found.splitlines()), (name, found)


def test_check_and_failed_compiles_store_nothing(
        store: Path, spec: Path, tmp_path: Path) -> None:
    _compile(spec)
    shutil.rmtree(store)
    assert _compile(spec, check=True) == 0
    assert not store.exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kvc: 1\nregistry: ghcr.io/x\nflavors: {}\n", encoding="utf-8")
    with pytest.raises(SpecError):
        compile_command.run(bad, "github", out=tmp_path / "bad-out")
    assert not store.exists() or not list(store.iterdir())


def test_a_spec_with_an_update_job_is_never_stored(store: Path, tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    shutil.copy(DATA / "ok" / "backends-update.yaml", spec)
    assert "\nupdate:" in spec.read_text(encoding="utf-8")
    compile_command.run(spec, "github", out=tmp_path)
    assert not list(store.glob("*.json"))


def test_no_cache_turns_it_off(store: Path, spec: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVC_NO_CACHE", "1")
    _compile(spec)
    assert not store.exists()


def test_a_damaged_entry_is_compiled_again(store: Path, spec: Path) -> None:
    _compile(spec)
    (entry,) = store.glob("*.json")
    stored = json.loads(entry.read_text(encoding="utf-8"))
    entry.write_text(json.dumps({**stored, "files": {"x": 1}}), encoding="utf-8")
    assert _compile(spec) == 0
    stored = json.loads(entry.read_text(encoding="utf-8"))
    assert "x" not in stored["files"]
    assert all(isinstance(v, str) for v in stored["files"].values())


def test_a_directory_others_can_write_is_not_used(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _compile(spec)
    store.chmod(0o777)
    _compiling_fails(monkeypatch)
    with pytest.raises(AssertionError, match="compiled instead"):
        _compile(spec)


def test_an_edited_spec_replaces_its_entry(store: Path, spec: Path) -> None:
    for number in range(3):
        spec.write_text(MINIMAL.read_text(encoding="utf-8") + f"# {number}\n",
                        encoding="utf-8")
        _compile(spec)
    assert len(list(store.glob("*.json"))) == 1


def test_only_the_most_recently_used_entries_are_kept(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "KEEP", 2)
    for number in range(4):
        compile_command.run(spec, "github", out=spec.parent / f"out-{number}")
    assert len(list(store.glob("*.json"))) == 2


def test_a_makefile_build_is_never_served_stale(store: Path, tmp_path: Path) -> None:
    """Its build fingerprint hashes the makefile directory, which the key does not cover."""
    spec = tmp_path / "kvc.yaml"
    shutil.copy(DATA / "ok" / "install-list.yaml", spec)
    makefile = tmp_path / "images" / "almalinux" / "9" / "Makefile"
    makefile.parent.mkdir(parents=True)
    makefile.write_text("harden:\n\ttrue\n", encoding="utf-8")
    bake = tmp_path / ".kvc" / "docker-bake.json"
    compile_command.run(spec, "github", out=tmp_path)
    before = bake.read_text(encoding="utf-8")
    makefile.write_text("harden:\n\tfalse\n", encoding="utf-8")
    compile_command.run(spec, "github", out=tmp_path)
    assert bake.read_text(encoding="utf-8") != before
    assert not list(store.glob("*.json"))


def test_a_hit_prints_the_warnings_of_its_compile(
        store: Path, spec: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from kvc.backends import gitlab  # noqa: PLC0415

    monkeypatch.setattr(gitlab, "hosted_test_warnings", lambda builds, tags: ["kvc: warning: w"])
    _compile(spec, backend="gitlab")
    assert "kvc: warning: w" in capsys.readouterr().err
    _compiling_fails(monkeypatch)
    _compile(spec, backend="gitlab")
    assert "kvc: warning: w" in capsys.readouterr().err
    _compile(spec, backend="gitlab", check=True)
    assert "warning" not in capsys.readouterr().err
