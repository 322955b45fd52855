"""``kvc lock --from FILE``: pin from checksum files the user downloaded by hand.

For machines without internet access: every target is resolved against each
given file, matched by file name exactly as an online lock matches entries.
A target no file lists is skipped (its pin, if any, is kept); two files that
disagree about one target are an error, never a guess.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kvc.lock.core import LockTarget, Outcome, Status, resolve
from kvc.lock.errors import LockError
from kvc.lock.parsers import parse_checksums


class _Static:
    """A Fetcher that answers every URL with one file's text."""

    def __init__(self, text: str) -> None:
        self._text = text

    def get_text(self, url: str) -> str:
        return self._text


def read_files(paths: list[Path]) -> dict[Path, str]:
    """Read and parse-check every file up front, so a bad file fails the run."""
    texts: dict[Path, str] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise LockError(f"{path}: cannot read the checksum file: {err}") from None
        try:
            parse_checksums(text, default_name=path.name)
        except LockError as err:
            raise LockError(f"{path}: {err}") from None
        texts[path] = text
    return texts


class LocalResolver:
    """Resolve a target against local files instead of its checksum_url."""

    def __init__(self, files: dict[Path, str]) -> None:
        self._files = files

    def __call__(self, target: LockTarget) -> Outcome:
        found: list[tuple[Path, Outcome]] = []
        for path, text in self._files.items():
            local = replace(target, checksum_url=path.resolve().as_uri())
            outcome = resolve(local, _Static(text))
            if outcome.status is not Status.FAILED:
                found.append((path, replace(outcome, target=target)))
        if not found:
            names = ", ".join(str(p) for p in self._files)
            return Outcome(target, Status.SKIPPED, reason=f"not listed in {names}")
        digests = {(o.checksum, o.locked_url) for _, o in found}
        if len(digests) > 1:
            where = ", ".join(f"{p}: {o.checksum}" for p, o in found)
            return Outcome(target, Status.FAILED, reason=f"the files disagree ({where})")
        return found[0][1]
