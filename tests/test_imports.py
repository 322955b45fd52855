"""A command imports only what it uses: each module costs every run its start-up time.

Checked in a fresh interpreter, since the test process has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvc.backends import BACKENDS
from tests.conftest import ROOT

MINIMAL = ROOT / "examples" / "minimal" / "kvc.yaml"

_PROBE = """
import contextlib, io, json, sys
from kvc.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit as done:
        assert done.code == 0, done.code
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                          text=True, check=True, cwd=ROOT, env=env)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_compile_loads_only_its_backend(tmp_path: Path, backend: str) -> None:
    loaded = _loaded("compile", str(MINIMAL), "--backend", backend, "--out", str(tmp_path))
    assert f"kvc.backends.{backend}" in loaded
    assert not loaded & {f"kvc.backends.{other}" for other in BACKENDS if other != backend}
    # Schema errors are explained only when there are some.
    assert "kvc.spec.schema_errors" not in loaded


def test_validate_loads_no_backend() -> None:
    loaded = _loaded("validate", str(MINIMAL))
    assert not {name for name in loaded if name.startswith("kvc.backends.")} - {
        "kvc.backends.base"}


def test_every_backend_is_registered_under_its_name() -> None:
    assert sorted(BACKENDS) == ["circleci", "github", "gitlab"]
    for name, backend in BACKENDS.items():
        assert name == backend.NAME


def test_a_cached_compile_loads_neither_pydantic_nor_the_yaml_parser(tmp_path: Path) -> None:
    env = {**os.environ, "KVC_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KVC_NO_CACHE")
    argv = ("compile", str(MINIMAL), "--backend", "github", "--out", str(tmp_path / "out"))
    assert "pydantic" in _loaded(*argv, env=env)  # compiled and stored
    for again in (argv, (*argv, "--check")):
        loaded = {name.split(".")[0] for name in _loaded(*again, env=env)}
        assert not loaded & {"pydantic", "pydantic_core", "ruamel"}
