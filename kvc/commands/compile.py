"""``kvc compile``: spec -> IR -> the backend's files plus the shared build files."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from kvc import __version__
from kvc.backends import BACKENDS, Backend, buildfiles, gitlab, update
from kvc.backends.base import EmitInput, Files, is_generated
from kvc.commands import schema
from kvc.commands.common import suggest
from kvc.compiler import dag
from kvc.compiler.driver import Resolved, load
from kvc.compiler.graph import build_pipeline
from kvc.output import Scope, check_tree, write_tree
from kvc.spec.models import Backends


def generate(resolved: Resolved, backend: str, out: Path) -> Files:
    emitter = _backend(backend).emit
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    source = EmitInput(pipeline=pipeline, spec_name=relative_name(Path(resolved.path), out),
                       backends=resolved.spec.backends or Backends(),
                       update=resolved.spec.update)
    return {**buildfiles.emit(source), **emitter(source)}


def _backend(name: str) -> Backend:
    backend = BACKENDS.get(name)
    if backend is None:
        raise suggest(name, BACKENDS, "backend")
    return backend


def scope(spec: Path, backend: str, out: Path) -> Scope:
    return Scope(paths=(buildfiles.OWNED_DIR, *_backend(backend).OWNED),
                 spec_name=relative_name(spec, out))


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
    marker = directory / buildfiles.OWNED_DIR / "stages" / "lib.sh"
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
    resolved = load(spec)
    files = generate(resolved, backend, root)
    if with_schema:
        # Beside the spec, where its `$schema=./kvc.schema.json` modeline looks.
        rel = relative_name(spec.parent / schema.FILE_NAME, root)
        files[rel] = schema.render(EmitInput.header_for(relative_name(spec, root)))
    where = scope(spec, backend, root)
    if check:
        status = check_tree(root, files, where, fix=command(spec, backend, root))
        if status == 0:
            click.echo(f"{spec}: all {len(files)} generated files for {backend} in {root} "
                       "are current")
        return status
    if backend == gitlab.NAME:
        settings = resolved.spec.backends.gitlab if resolved.spec.backends else None
        tags = settings.tags if settings is not None else None
        for warning in gitlab.hosted_test_warnings(resolved.builds, tags):
            click.echo(warning, err=True)
    if resolved.spec.update is not None and not update.installable():
        click.echo(f"kvc: warning: the update job installs kvc=={__version__}, which is not "
                   "a release: install kvc from a release or a git commit to compile it "
                   "(docs/releasing.md)", err=True)
    written = write_tree(root, files, where)
    click.echo(f"{spec}: {len(files)} files for {backend} in {root} ({written} changed)")
    return 1 if fail_if_changed and written else 0
