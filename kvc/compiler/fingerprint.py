"""Fingerprints: a hash of everything that determines a build's output.

The fingerprint keys the build cache, so it must change whenever the output
could: resolved values, the upstream checksum, kvc's version, the stage scripts
and the user files the build reads (the makefile directory). It must not
change for anything else (other flavors, comments, key order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from kvc import __version__, stages
from kvc.ir import Stage


def fingerprint(env: Iterable[tuple[str, str]], spec_dir: Path, makefile_dir: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"kvc": __version__, "env": sorted(env)}).encode())
    digest.update(_build_scripts())
    if makefile_dir is not None:
        _hash_tree(digest, spec_dir / makefile_dir)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _build_scripts() -> bytes:
    """Every script the build stage runs (kvc.stages.SCRIPTS), read once per process.

    Hashing the concatenation equals hashing them one after the other.
    """
    return b"".join(stages.read(name).encode() for name in stages.used_by(Stage.BUILD))


def _hash_tree(digest: hashlib._Hash, root: Path) -> None:
    if not root.is_dir():
        digest.update(b"<missing makefile_dir>")
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def image_fingerprint(builds: Iterable[tuple[str, str]], tags: Iterable[str],
                      tests: Iterable[tuple[str, str]] = ()) -> str:
    """One image's fingerprint: its builds' (arch, fingerprint) pairs and its packaging.

    It is what the published image's ``dev.kvc.fingerprint`` label records, so
    it changes whenever the image would differ: a build's output (whose
    fingerprint already covers kvc's version and the build scripts), the
    Containerfile and containerize script that package it, or its tags; and
    whenever its test would differ (each test job's inputs and the test
    scripts), so a change to the tests alone is tested, not skipped by the plan.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({"builds": sorted(builds), "tags": list(tags),
                              "tests": sorted(tests)}).encode())
    digest.update(_packaging())
    digest.update(_test_scripts())
    return digest.hexdigest()[:20]


@lru_cache(maxsize=1)
def _test_scripts() -> bytes:
    return b"".join(stages.read(name).encode() for name in stages.used_by(Stage.TEST))


@lru_cache(maxsize=1)
def _packaging() -> bytes:
    return b"".join(stages.read(name).encode() for name in stages.used_by(Stage.CONTAINERIZE))
