"""Atomic file writes: a reader (or an interrupted run) never sees half a file.

A tree of files is written in two phases: every new content is first written
to a temporary file beside its target, and only when all of them exist are
they renamed into place. An interruption while staging leaves every previous
file untouched; the renames themselves are atomic per file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _stage(path: Path, content: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kvc-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_atomic(path: Path, content: str, mode: int = 0o644) -> None:
    os.replace(_stage(path, content, mode), path)


def write_all(files: Mapping[Path, tuple[str, int]]) -> None:
    """Write several files so that a failure before the last rename changes none."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, (content, mode) in files.items():
            staged.append((_stage(path, content, mode), path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
