"""Snapshots of every file `kvc compile` writes for every example, per backend.

Stage scripts and the Containerfile are copied verbatim from kvc/stages (with
the header added; see test_files.py), so they are not snapshotted here: the
snapshots change only when what the compiler decides changes.

Update after an intended change, then review the diff of __snapshots__/:

    .venv/bin/pytest tests/backends/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from kvc.backends import buildfiles
from tests.backends.conftest import BACKEND_NAMES, EXAMPLES, case_id, generated

VERBATIM = {f".kvc/stages/{name}" for name in buildfiles.STAGE_SCRIPTS} | {
    buildfiles.CONTAINERFILE}


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("spec", [pytest.param(s, id=case_id(s)) for s in EXAMPLES])
def test_compiled_files(spec: Path, backend: str, snapshot: SnapshotAssertion) -> None:
    files = generated(spec, backend)
    snapshotted = sorted(set(files) - VERBATIM)
    assert snapshotted == snapshot(name="file list")
    for path in snapshotted:
        assert files[path] == snapshot(name=path)
