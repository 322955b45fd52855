"""Emitted files for every example spec and every fixture spec, per backend.

Cases are the example specs (``examples/*/kvc.yaml``, whatever exists when the
tests run) plus the specs in ``tests/backends/specs/``, which exercise what the
examples do not: every ``backends:`` override, signing, disabled tests, builds
that run no guest code. Emitting is cached, so each case is compiled once per
test session.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kvc.backends import BACKENDS, circleci, github, gitlab
from kvc.backends.base import EmitInput
from kvc.commands import compile as compile_command
from kvc.compiler.driver import Resolved, load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Pipeline
from kvc.spec.models import Backends

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/kvc.yaml"))
FIXTURE_SPECS = sorted((Path(__file__).parent / "specs").glob("*.yaml"))
SPECS = [*EXAMPLES, *FIXTURE_SPECS]
BACKEND_NAMES = sorted(BACKENDS)


def case_id(spec: Path) -> str:
    if spec in EXAMPLES:
        return f"example-{spec.parent.name}"
    return f"spec-{spec.stem}"


@dataclass(frozen=True)
class Emitted:
    """One spec compiled for one backend: the IR and the backend's own files."""

    spec: Path
    backend: str
    resolved: Resolved
    pipeline: Pipeline
    files: dict[str, str]

    @property
    def name(self) -> str:
        return case_id(self.spec)

    @property
    def main_path(self) -> str:
        """The file holding the image pipeline (GitHub: the workflow, CircleCI: the config,
        GitLab: the parent pipeline; the image jobs are in ``child()``)."""
        if self.backend == "gitlab":
            return gitlab.CONFIG
        if self.backend == "github":
            settings = self.resolved.spec.backends and self.resolved.spec.backends.github
            name = (settings and settings.workflow) or github.DEFAULT_WORKFLOW
            return f".github/workflows/{name}.yml"
        return circleci.CONTINUATION

    @property
    def text(self) -> str:
        return self.files[self.main_path]

    def document(self) -> Any:
        return parse_yaml(self.text)

    def child(self) -> dict[str, Any]:
        """GitLab: the child pipeline that runs every image (what a forced plan selects)."""
        text = self.files[gitlab.CHILD_HEAD] + "".join(
            text for path, text in sorted(self.files.items()) if path.startswith(gitlab.IMAGES))
        document: dict[str, Any] = parse_yaml(text)
        return document

    def child_jobs(self) -> dict[str, Any]:
        return {name: job for name, job in self.child().items()
                if isinstance(job, dict) and "script" in job}


def image_workflow_jobs(document: dict[str, Any]) -> list[Any]:
    """CircleCI: every image workflow's job entries, in order (not the scheduled update's)."""
    return [entry for name, workflow in document["workflows"].items()
            if name != circleci.UPDATE_JOB
            for entry in workflow["jobs"]]


@functools.cache
def parse_yaml(text: str) -> Any:
    """Parsed once per distinct text: tests read the same documents many times (never mutate)."""
    return YAML(typ="safe").load(text)


@functools.cache
def resolved_spec(spec: Path) -> Resolved:
    return load(spec)


def emit_input(spec: Path) -> EmitInput:
    """What ``kvc compile SPEC`` (output next to the spec) hands every emitter."""
    resolved = resolved_spec(spec)
    return EmitInput(pipeline=build_pipeline(resolved), spec_name=spec.name,
                     backends=resolved.spec.backends or Backends(),
                     update=resolved.spec.update)


@functools.cache
def emitted(spec: Path, backend: str) -> Emitted:
    source = emit_input(spec)
    files = BACKENDS[backend].emit(source)
    return Emitted(spec, backend, resolved_spec(spec), source.pipeline, dict(files))


@functools.cache
def generated(spec: Path, backend: str) -> dict[str, str]:
    """Every file ``kvc compile`` writes for this spec and backend (needs kvc/stages)."""
    return compile_command.generate(resolved_spec(spec), backend, spec.parent)


def all_emitted(backend: str | None = None) -> Iterator[Emitted]:
    for spec in SPECS:
        for name in BACKEND_NAMES:
            if backend in {None, name}:
                yield emitted(spec, name)


def cases(backend: str | None = None) -> list[Any]:
    """pytest params: (spec, backend) for every spec, for one backend or all."""
    names = BACKEND_NAMES if backend is None else [backend]
    return [pytest.param(spec, name, id=f"{case_id(spec)}-{name}")
            for spec in SPECS for name in names]


def spec_params(specs: list[Path] | None = None) -> list[Any]:
    return [pytest.param(spec, id=case_id(spec)) for spec in (specs or SPECS)]
