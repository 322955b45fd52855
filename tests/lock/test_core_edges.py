"""kvc lock's edges: comparing with the current pin, bare-hash files, --from FILE.

Written for mutants that survived (docs/mutation-report.md): an unreadable
current pin, a pin written without a locked file, what an unchanged target
hands to the rewriter, per-file checksum files, and what `--from FILE` says
when its files skip or disagree.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kvc.lock import HttpFetcher, core
from kvc.lock.core import LockTarget, Status
from kvc.lock.errors import LockError
from kvc.lock.local import LocalResolver, read_files
from kvc.lock.parsers import Checksum
from tests.lock.conftest import Mirror

NEW = Checksum.parse("sha256:" + hashlib.sha256(b"lock core edges").hexdigest())
SUMS = "https://mirror.example.org/9/SHA256SUMS"
FETCHER = HttpFetcher(timeout=0.5, attempts=1, sleep=lambda _: None)


def target(current: str | None = None, locked: str | None = None) -> LockTarget:
    return LockTarget("alma", "9", "amd64", "https://mirror.example.org/9/a.qcow2", SUMS,
                      current, locked)


def test_an_unreadable_current_pin_is_replaced() -> None:
    outcome = core._compare(target("sha256:not-a-digest"), NEW, None)
    assert outcome.status is Status.PINNED
    pin = outcome.pin()
    assert pin is not None
    assert pin.checksum == str(NEW)


def test_the_same_pin_is_unchanged_and_rewrites_nothing() -> None:
    outcome = core._compare(target(str(NEW)), NEW, None)
    assert outcome.status is Status.UNCHANGED
    assert outcome.pin() is None


def test_without_a_locked_file_the_pin_alone_decides() -> None:
    """A plain checksum_url locks no file, whatever the spec recorded before."""
    outcome = core._compare(target(str(NEW), locked="https://mirror.example.org/8/SUMS"), NEW,
                            None)
    assert outcome.status is Status.UNCHANGED


def test_a_bare_hash_file_pins_the_image_it_sits_beside(mirror: Mirror) -> None:
    """Per-file ``.sha256`` files hold the hash alone: it is the image's."""
    sums = mirror.serve("/9/a.qcow2.sha256", NEW.hex + "\n")
    url = mirror.url("/9/a.qcow2")
    outcome = core.resolve(LockTarget("alma", "9", "amd64", url, sums), FETCHER)
    assert (outcome.status, outcome.checksum) == (Status.PINNED, str(NEW))


def test_an_unreadable_file_names_its_url(mirror: Mirror) -> None:
    sums = mirror.serve("/9/SUMS", "this is not a checksum file\n")
    outcome = core.resolve(LockTarget("alma", "9", "amd64", mirror.url("/9/a.qcow2"), sums),
                           FETCHER)
    assert outcome.status is Status.FAILED
    assert outcome.reason.startswith(f"{sums}: line 1: not a checksum line")


# -- kvc lock --from FILE -------------------------------------------------------------------


def test_a_local_bare_hash_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.qcow2.sha256"
    path.write_text("\ufeff" + NEW.hex + "\n", encoding="utf-8")
    assert read_files([path]) == {path: NEW.hex + "\n"}


def test_an_unreadable_local_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "SHA256SUMS"
    with pytest.raises(LockError, match=f"^{re.escape(str(missing))}: cannot read the checksum "
                                        "file: "):
        read_files([missing])


def _sums(tmp_path: Path, name: str, checksum: Checksum) -> Path:
    path = tmp_path / name
    path.write_text(f"{checksum.hex}  a.qcow2\n", encoding="utf-8")
    return path


def test_local_files_name_themselves_when_they_skip_or_disagree(tmp_path: Path) -> None:
    other = Checksum.parse("sha256:" + hashlib.sha256(b"another image").hexdigest())
    one, two = _sums(tmp_path, "ONE", NEW), _sums(tmp_path, "TWO", other)
    elsewhere = LockTarget("alma", "9", "amd64", "https://mirror.example.org/9/b.qcow2", SUMS)
    skipped = LocalResolver(read_files([one, two]))(elsewhere)
    assert (skipped.status, skipped.reason) == (Status.SKIPPED, f"not listed in {one}, {two}")
    failed = LocalResolver(read_files([one, two]))(target())
    assert (failed.status, failed.reason) == (
        Status.FAILED, f"the files disagree ({one}: {NEW}, {two}: {other})")


def test_a_local_pin_belongs_to_the_spec_target(tmp_path: Path) -> None:
    outcome = LocalResolver(read_files([_sums(tmp_path, "ONE", NEW)]))(target())
    assert (outcome.status, outcome.checksum, outcome.target) == (Status.PINNED, str(NEW),
                                                                  target())


# -- the report -------------------------------------------------------------------------------


def test_the_report_says_what_happened_to_each_target() -> None:
    old = Checksum.parse("sha256:" + hashlib.sha256(b"the old image").hexdigest())
    wild = "https://mirror.example.org/9/a-*.qcow2"
    report = core.LockReport((
        core.Outcome(target(), Status.FAILED, reason="cannot connect"),
        core.Outcome(target(str(old)), Status.SKIPPED, reason="not listed in SUMS"),
        core.Outcome(target(), Status.SKIPPED, reason="not listed in SUMS"),
        core.Outcome(target(str(old)), Status.PINNED, str(NEW),
                     "https://mirror.example.org/9/a-2.qcow2"),
        core.Outcome(target(str(old), locked="https://mirror.example.org/9/a-1.qcow2"),
                     Status.PINNED, str(NEW)),
        core.Outcome(replace(target(str(old)), url=wild), Status.UNCHANGED, str(old)),
    ))
    assert report.render() == "\n".join([
        "failed    alma/9/amd64: cannot connect (no pin yet)",
        f"skipped   alma/9/amd64: not listed in SUMS (kept {old})",
        "skipped   alma/9/amd64: not listed in SUMS (no pin yet)",
        f"pinned    alma/9/amd64 {old} -> {NEW}",
        "          alma/9/amd64 file: https://mirror.example.org/9/a-2.qcow2",
        f"pinned    alma/9/amd64 {old} -> {NEW}",
        f"unchanged alma/9/amd64 {old}",
        "2 pinned, 1 unchanged, 1 failed, 2 skipped",
    ]) + "\n"
    assert report.exit_code == 1


def test_a_local_per_file_checksum_is_recognised_by_its_own_name(tmp_path: Path) -> None:
    """openSUSE's per-file .sha256 of an alias names the dated build (see select.py)."""
    path = tmp_path / "a.qcow2.sha256"
    path.write_text(f"{NEW.hex}  a-9.1-build3.qcow2\n", encoding="utf-8")
    outcome = LocalResolver(read_files([path]))(target())
    assert (outcome.status, outcome.checksum) == (Status.PINNED, str(NEW))
