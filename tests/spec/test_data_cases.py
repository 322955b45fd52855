"""Data-driven tests: tests/data/ok must validate, tests/data/err/X.yaml must fail
with exactly the stderr in X.out (see tests/data/README.md)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from tests.conftest import DATA, ERR_SPECS, OK_SPECS

UPDATE = os.environ.get("KVC_UPDATE_GOLDEN") == "1"
HANG_GUARD_SECONDS = 30


def _validate(runner: CliRunner, spec: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str,
                                                                                        str]:
    monkeypatch.chdir(spec.parent)  # the file shows as "x.yaml" in every message
    result = runner.invoke(main, ["validate", spec.name])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("spec", OK_SPECS, ids=lambda p: p.stem)
def test_ok_spec_validates(spec: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _validate(runner, spec, monkeypatch)
    assert (code, err) == (0, "")
    assert out.startswith(f"{spec.name}: ok (")


@pytest.mark.parametrize("spec", ERR_SPECS, ids=lambda p: p.stem)
def test_err_spec_reports_exactly(spec: Path, runner: CliRunner,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _validate(runner, spec, monkeypatch)
    expected_file = spec.with_suffix(".out")
    if UPDATE:
        expected_file.write_text(err, encoding="utf-8")
    assert code == 1
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    assert err == expected_file.read_text(encoding="utf-8")


def test_every_err_case_has_an_out_file_and_no_out_is_orphaned() -> None:
    specs = {p.stem for p in ERR_SPECS}
    outs = {p.stem for p in (DATA / "err").glob("*.out")}
    assert specs == outs
    assert len(specs) >= 35


def test_every_headline_points_inside_its_file_and_the_caret_under_it() -> None:
    """A line:col beyond the file would send an editor nowhere."""
    for out in (DATA / "err").glob("*.out"):
        spec = out.with_suffix(".yaml")
        source = spec.read_bytes().decode("utf-8", "replace").splitlines()
        lines = out.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.startswith(spec.name + ":"):
                continue
            row, col = (int(n) for n in line.split(":")[1:3])
            assert 1 <= row <= len(source) + 1, line
            if row <= len(source):
                assert 1 <= col <= len(source[row - 1]) + 1, line
                gutter = f"{row:>5} | "
                assert lines[i + 1].startswith(gutter), line
                assert lines[i + 2] == " " * (len(gutter) + col - 1) + "^", line


def test_alias_bomb_is_refused_quickly(runner: CliRunner,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.perf_counter()
    code, _, err = _validate(runner, DATA / "err" / "alias-bomb.yaml", monkeypatch)
    assert code == 1 and "[too-large]" in err
    # A hang guard, not a speed target: benchmarks/fuzz.py measures speed.
    assert time.perf_counter() - start < HANG_GUARD_SECONDS
