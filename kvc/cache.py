"""The compile cache: the files of a compile, reused while nothing they derive from changed.

A compile is a pure function of the spec's bytes, how it was invoked (spec
path, output root, backend, ``--schema``) and the code that compiles it: kvc's
own files and the libraries that read and validate the spec. The key hashes all
of them, so any change to any of them is a miss:

- kvc: the content of every file of the package (code, stage scripts, data);
- pydantic, pydantic-core, ruamel.yaml: the installed distributions
  (``*.dist-info`` names, which carry the versions) and each package's
  ``__init__`` file (size and modification time, which a reinstall changes);
- Python: its version and implementation.

Only a successful compile is stored, and only by a compile that writes
(``--check`` reads the cache but never stores); never for a spec with an
``update`` job (its install line names the running kvc's commit, which no file
here records) or with a ``sysprep.makefile`` build (its fingerprint hashes the
user's makefile_dir). Each invocation (spec path, output root, backend,
``--schema``) has one slot, which its next store replaces: editing a spec
leaves no garbage behind. A hit skips loading, validation and emission, never
the writing or checking of the tree, so ``--check`` still compares every file
on disk. Entries live in ``$KVC_CACHE_DIR``, else ``$XDG_CACHE_HOME/kvc``, else
``~/.cache/kvc``, the 32 most recently used kept; ``KVC_NO_CACHE=1`` turns the
cache off. A directory another user could write to is never used: its entries
become the files kvc writes into a repository.

This module imports nothing heavy: a hit must not pay for pydantic or the
emitters (benchmarks/README.md, "Whole compiles against the import floor").
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

FORMAT = "kvc-compile-cache 2"
KEEP = 32
DEPENDENCIES = ("pydantic", "pydantic_core", "ruamel.yaml")
# The distributions behind DEPENDENCIES, as their dist-info directories start.
DISTRIBUTIONS = ("pydantic-", "pydantic_core-", "ruamel.yaml-", "ruamel_yaml-")
PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Entry:
    """A stored compile: its files, the paths its backend owns (for left-overs) and the
    warnings a compile that writes prints."""

    files: dict[str, str]
    owned: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def directory() -> Path | None:
    """Where entries live, or None when the cache is off."""
    if os.environ.get("KVC_NO_CACHE") or not hasattr(os, "getuid"):
        return None  # off, or no POSIX owner to check entries against (Windows)
    configured = os.environ.get("KVC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kvc"


def slot(spec: Path, invocation: Mapping[str, str]) -> str:
    """The entry's file name: one per invocation, whatever the spec holds."""
    return _digest([FORMAT.encode(), *_invocation(spec, invocation)])


def key(spec: Path, raw: bytes, invocation: Mapping[str, str]) -> str:
    """The key of one compile: spec bytes, invocation, kvc and its libraries."""
    return _digest([FORMAT.encode(), raw, *_invocation(spec, invocation),
                    *_environment()])


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _invocation(spec: Path, invocation: Mapping[str, str]) -> Iterator[bytes]:
    yield str(spec.resolve()).encode()
    yield json.dumps(sorted(invocation.items())).encode()


def _environment() -> Iterator[bytes]:
    yield f"{sys.version}|{sys.implementation.cache_tag}".encode()
    yield code_fingerprint().encode()
    yield dependency_fingerprint().encode()


def code_fingerprint() -> str:
    """Every file of the kvc package, by path and content (bytecode caches excluded)."""
    digest = hashlib.sha256()
    for path in sorted(_package_files(PACKAGE)):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _package_files(root: Path) -> Iterator[Path]:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            if entry.name != "__pycache__":
                yield from _package_files(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def dependency_fingerprint() -> str:
    """The installed versions of the libraries that parse and validate the spec."""
    found: list[str] = []
    sites: set[Path] = set()
    for name in DEPENDENCIES:
        origin = _origin(name)
        if origin is None:
            found.append(f"{name}: missing")
            continue
        info = os.stat(origin)
        found.append(f"{name}: {origin} {info.st_size} {info.st_mtime_ns}")
        sites.add(Path(origin).parents[name.count(".") + 1])
    for site in sorted(sites):
        with os.scandir(site) as entries:
            found.extend(sorted(e.name for e in entries if e.name.endswith(".dist-info")
                                and e.name.startswith(DISTRIBUTIONS)))
    return "\n".join(found)


def _origin(dotted: str) -> str | None:
    """The file a module would be imported from, without importing it."""
    path: list[str] | None = None
    module = None
    for depth in range(dotted.count(".") + 1):
        module = PathFinder.find_spec(".".join(dotted.split(".")[:depth + 1]), path)
        if module is None:
            return None
        path = list(module.submodule_search_locations or [])
    return module.origin if module is not None else None


def lookup(where: Path, name: str, key: str) -> Entry | None:
    """The entry in slot ``name`` if it was stored under ``key``, else None (missing,
    another compile's, unreadable or not ours)."""
    path = where / f"{name}.json"
    try:
        if not (_private(where) and _private(path)):
            return None
        data = json.loads(path.read_bytes())
        os.utime(path)  # recently used: kept by the pruning below
    except (OSError, ValueError):
        return None
    return _entry(data, key)


def _entry(data: object, key: str) -> Entry | None:
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    files, owned, warnings = data.get("files"), data.get("owned"), data.get("warnings")
    if not (isinstance(files, dict) and isinstance(owned, list) and isinstance(warnings, list)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
            and all(isinstance(item, str) for item in [*owned, *warnings])):
        return None
    return Entry(files, tuple(owned), tuple(warnings))


def _private(path: Path) -> bool:
    """Ours, and nobody else can write it."""
    info = os.stat(path, follow_symlinks=False)
    return (info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)))


def store(where: Path, name: str, key: str, entry: Entry) -> None:
    """Store in slot ``name`` atomically, best effort: a cache that cannot be written is
    no error."""
    data = json.dumps({"key": key, "files": entry.files, "owned": list(entry.owned),
                       "warnings": list(entry.warnings)})
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(where):
            return
        fd, temporary = tempfile.mkstemp(dir=where, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temporary, where / f"{name}.json")
        except BaseException:
            os.unlink(temporary)
            raise
        _prune(where)
    except OSError:
        return


def _prune(where: Path) -> None:
    entries = sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
