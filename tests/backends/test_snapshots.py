"""Snapshots of every file `kvc compile` writes for every example, per backend.

Stage scripts and the Containerfile are copied verbatim from kvc/stages (with
the header added; see test_files.py), so they are not snapshotted here: the
snapshots change only when what the compiler decides changes. For the same
reason build fingerprints (which hash the build stage scripts) are masked as
``<fingerprint>``; test_github.py and test_circleci.py check that each cache
key carries its job's fingerprint.

Update after an intended change, then review the diff of __snapshots__/:

    .venv/bin/pytest tests/backends/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from kvc import stages
from kvc.backends import yamlout
from tests.backends.conftest import BACKEND_NAMES, EXAMPLES, case_id, emitted, generated

VERBATIM = {stages.path(name) for name in stages.SCRIPTS}


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("spec", [pytest.param(s, id=case_id(s)) for s in EXAMPLES])
def test_compiled_files(spec: Path, backend: str, snapshot: SnapshotAssertion) -> None:
    files = generated(spec, backend)
    snapshotted = sorted(set(files) - VERBATIM)
    assert snapshotted == snapshot(name="file list")
    pipeline = emitted(spec, backend).pipeline
    fingerprints = {job.fingerprint for job in pipeline.jobs if job.cache is not None}
    assert fingerprints
    # Image fingerprints hash the build ones (and the packaging scripts): masked alike.
    fingerprints |= {target.fingerprint for target in pipeline.targets}
    for path in snapshotted:
        assert mask(files[path], fingerprints) == snapshot(name=path)


def mask(text: str, fingerprints: set[str]) -> str:
    """Replace each fingerprint, also where YAML quotes it (one that reads as a number)."""
    for value in fingerprints:
        for spelling in (f"'{value}'", f'"{value}"', value):
            text = text.replace(spelling, "<fingerprint>")
    return text


@pytest.mark.parametrize("fingerprint", ["1234567890", "12345e6789", "0012", "7e3"])
def test_mask_is_the_same_whatever_the_fingerprint_reads_as(fingerprint: str) -> None:
    """A fingerprint that YAML would read as a number is emitted quoted; masked, it must
    look like any other, or an unrelated edit of a stage script changes the snapshots."""
    plain = "0a1b2c3d4e"

    def emit(value: str) -> str:
        return yamlout.dump({"env": {"KVC_FINGERPRINT": value},
                             "key": f"kvc-build-debian-12-amd64-{value}"})

    assert emit(fingerprint) != emit(plain).replace(plain, fingerprint)  # it is quoted
    assert mask(emit(fingerprint), {fingerprint}) == mask(emit(plain), {plain})
