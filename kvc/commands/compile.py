"""``kvc compile``: spec -> IR -> the backend's files plus the shared build files."""

from __future__ import annotations

from pathlib import Path

import click

from kvc.backends import BACKENDS, Backend, buildfiles
from kvc.backends.base import EmitInput, Files
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


def run(spec: Path, backend: str, *, out: Path | None = None, check: bool = False,
        fail_if_changed: bool = False, with_schema: bool = False) -> int:
    root = out if out is not None else spec.parent
    files = generate(load(spec), backend, root)
    if with_schema:
        # Beside the spec, where its `$schema=./kvc.schema.json` modeline looks.
        rel = relative_name(spec.parent / schema.FILE_NAME, root)
        files[rel] = schema.render(EmitInput.header_for(relative_name(spec, root)))
    where = scope(spec, backend, root)
    if check:
        return check_tree(root, files, where)
    written = write_tree(root, files, where)
    click.echo(f"{spec}: {len(files)} files for {backend} in {root} ({written} changed)")
    return 1 if fail_if_changed and written else 0
