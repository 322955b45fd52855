"""``kvc compile``: spec -> IR -> the backend's files plus the shared build files."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kvc import __version__, cache
from kvc.backends.base import OWNED_DIR, EmitInput, Files, is_generated
from kvc.output import Scope, check_tree, write_tree

if TYPE_CHECKING:
    from kvc.backends import Backend
    from kvc.compiler.driver import Resolved

# Everything that loads, validates and emits is imported by the functions that
# use it: a compile served by the cache (kvc/cache.py) never imports pydantic
# or an emitter.


def generate(resolved: Resolved, backend: str, out: Path) -> Files:
    from kvc.backends import buildfiles  # noqa: PLC0415
    from kvc.compiler import dag  # noqa: PLC0415
    from kvc.compiler.graph import build_pipeline  # noqa: PLC0415
    from kvc.spec.models import Backends  # noqa: PLC0415

    emitter = _backend(backend).emit
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    source = EmitInput(pipeline=pipeline, spec_name=relative_name(Path(resolved.path), out),
                       backends=resolved.spec.backends or Backends(),
                       update=resolved.spec.update)
    return {**buildfiles.emit(source), **emitter(source)}


def _backend(name: str) -> Backend:
    from kvc.backends import BACKENDS  # noqa: PLC0415
    from kvc.commands.common import suggest  # noqa: PLC0415

    backend = BACKENDS.get(name)
    if backend is None:
        raise suggest(name, BACKENDS, "backend")
    return backend


def scope(spec: Path, backend: str, out: Path) -> Scope:
    return Scope(paths=owned(backend), spec_name=relative_name(spec, out))


def owned(backend: str) -> tuple[str, ...]:
    """Where this backend's files live: left-overs are looked for there."""
    return (OWNED_DIR, *_backend(backend).OWNED)


def relative_name(spec: Path, out: Path) -> str:
    """How generated headers name the spec: relative to the tree they are written in."""
    try:
        return spec.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return spec.name


def default_root(spec: Path) -> Path:
    """Where a compile without --out writes: the tree already generated from SPEC.

    A spec below the repository root is compiled with `--out .` from the root
    (the header's hint says so); later runs without --out, `--check` above
    all, must find that tree rather than look beside the spec. Searched from
    the spec's directory up to the enclosing git work tree; the spec's
    directory when nothing was generated yet.
    """
    start = spec.parent.resolve()
    for directory in (start, *start.parents):
        if _generated_from(directory, relative_name(spec, directory)):
            return spec.parent if directory == start else Path(os.path.relpath(directory))
        if (directory / ".git").exists():
            break
    return spec.parent


def _generated_from(directory: Path, spec_name: str) -> bool:
    marker = directory / OWNED_DIR / "stages" / "lib.sh"
    try:
        head = marker.read_text(encoding="utf-8", errors="replace").splitlines()[:5]
    except OSError:
        return False
    return any(EmitInput.header_for(spec_name).split(" from ", 1)[1] in line
               and is_generated(line) for line in head)


def command(spec: Path, backend: str, root: Path) -> str:
    """The exact command that rewrites this tree, as the user would type it."""
    line = f"kvc compile {shlex.quote(str(spec))} --backend {backend}"
    if root.resolve() != spec.parent.resolve():
        line += f" --out {shlex.quote(str(root))}"
    return line


def run(spec: Path, backend: str, *, out: Path | None = None, check: bool = False,
        fail_if_changed: bool = False, with_schema: bool = False) -> int:
    root = out if out is not None else default_root(spec)
    entry = _compiled(spec, backend, root, writing=not check, with_schema=with_schema)
    files = entry.files
    where = Scope(paths=entry.owned, spec_name=relative_name(spec, root))
    if check:
        status = check_tree(root, files, where, fix=command(spec, backend, root))
        if status == 0:
            click.echo(f"{spec}: all {len(files)} generated files for {backend} in {root} "
                       "are current")
        return status
    for warning in entry.warnings:
        click.echo(warning, err=True)
    written = write_tree(root, files, where)
    click.echo(f"{spec}: {len(files)} files for {backend} in {root} ({written} changed)")
    return 1 if fail_if_changed and written else 0


def _compiled(spec: Path, backend: str, root: Path, *, writing: bool,
              with_schema: bool) -> cache.Entry:
    """The files for SPEC: from the compile cache when nothing they derive from changed,
    else compiled (and stored, by a compile that writes)."""
    where = cache.directory()
    if where is None:
        return _compile(spec, backend, root, with_schema=with_schema)[0]
    try:
        raw = spec.read_bytes()
    except OSError:  # reported, with its position, by the compile itself
        return _compile(spec, backend, root, with_schema=with_schema)[0]
    invocation = {"backend": backend, "root": str(root.resolve()),
                  "spec_name": relative_name(spec, root), "schema": str(with_schema)}
    name, key = cache.slot(spec, invocation), cache.key(spec, raw, invocation)
    found = cache.lookup(where, name, key)
    if found is not None:
        return found
    entry, cacheable = _compile(spec, backend, root, with_schema=with_schema, raw=raw)
    if writing and cacheable:
        cache.store(where, name, key, entry)
    return entry


def _compile(spec: Path, backend: str, root: Path, *, with_schema: bool,
             raw: bytes | None = None) -> tuple[cache.Entry, bool]:
    """(the files, owned paths and warnings, whether they may be cached)."""
    from kvc.backends import update  # noqa: PLC0415
    from kvc.commands import schema  # noqa: PLC0415
    from kvc.compiler.driver import load, load_source  # noqa: PLC0415

    # The bytes the cache key was made of, so the key describes what was compiled.
    resolved = load(spec) if raw is None else load_source(raw, str(spec))
    files = generate(resolved, backend, root)
    if with_schema:
        # Beside the spec, where its `$schema=./kvc.schema.json` modeline looks.
        rel = relative_name(spec.parent / schema.FILE_NAME, root)
        files[rel] = schema.render(EmitInput.header_for(relative_name(spec, root)))
    # Outputs that derive from more than the key covers are never stored: the update
    # job's install line names the running kvc's commit (update.requirement), and a
    # build with `sysprep.makefile` fingerprints the user's makefile_dir
    # (kvc/compiler/fingerprint.py). These are the compiler's only reads outside the
    # spec and the kvc package.
    cacheable = resolved.spec.update is None and not any(
        build.sysprep.makefile for build in resolved.builds)
    # Printed by a compile that writes, from the cache too (the entry keeps them).
    warnings: list[str] = []
    if backend == "gitlab":
        from kvc.backends import gitlab  # noqa: PLC0415 -- only for its own compiles

        settings = resolved.spec.backends.gitlab if resolved.spec.backends else None
        tags = settings.tags if settings is not None else None
        warnings.extend(gitlab.hosted_test_warnings(resolved.builds, tags))
        where = resolved.doc.pos(("backends", "gitlab"))
        warnings.append(gitlab.artifact_size_warning(str(where)))
    from kvc.compiler import pull_access  # noqa: PLC0415

    warnings.extend(pull_access.warnings(resolved, backend))
    if resolved.spec.update is not None and not update.installable():
        warnings.append(f"kvc: warning: the update job installs kvc=={__version__}, which is "
                        "not a release: install kvc from a release or a git commit to "
                        "compile it (docs/releasing.md)")
    return cache.Entry(files, owned(backend), tuple(warnings)), cacheable
