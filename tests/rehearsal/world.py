"""What both CI emulations share: the machine a job gets, file provenance, results.

A World is one CI project: a fake internet and registry (files the fake
tools read), caches that outlive runs, and the call log. Every job runs on a
fresh machine: an empty work dir, its own TMPDIR and HOME, and PATH = the fake
tools + the system. Files that arrive from another job (artifact, workspace,
cache) are stamped with their origin and an access time older than their
modification time: with relatime a read moves the access time past the
modification time, so after the job we know exactly which of them it read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Every tool the rehearsal puts on PATH (behaviour in fake.sh; the rest record).
TOOLS = (
    "curl", "qemu-img", "virt-resize", "docker", "kind", "kubectl", "cosign", "circleci",
    "qemu-system-x86_64", "qemu-system-aarch64", "virt-customize", "virt-sysprep",
    "virt-sparsify", "virtctl", "skopeo", "sudo", "apt-get", "apt-cache", "genisoimage",
    "socat", "guestfish",
)


class RehearsalError(Exception):
    """The emitted file uses something the rehearsal does not understand."""


@dataclass(frozen=True)
class Origin:
    """Who wrote a file: a job, in one run (attempt or workflow) of the pipeline."""

    job: str
    run: str


Files = dict[str, bytes]


@dataclass
class Layer:
    """A set of files one job sent to another (artifact, workspace layer, cache)."""

    files: Files
    origin: Origin


@dataclass
class JobResult:
    job: str
    run: str
    status: str  # success | failure | skipped
    log: list[str] = field(default_factory=list)
    reads: dict[str, Origin] = field(default_factory=dict)
    received: dict[str, Origin] = field(default_factory=dict)


@dataclass
class World:
    root: Path
    repo: Path  # the compiled tree; checkout copies it

    def __post_init__(self) -> None:
        self.state = self.root / "world"
        self.bin = self.root / "bin"
        (self.state / "internet").mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        for tool in TOOLS:
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/bash\nTOOL={tool}\n. "{HERE}/fake.sh"\n')
            wrapper.chmod(0o755)
        self.caches: dict[str, Layer] = {}

    def serve(self, url: str, content: bytes) -> None:
        """Put CONTENT at URL on the fake internet."""
        (self.state / "internet" / hashlib.sha256(url.encode()).hexdigest()).write_bytes(content)

    def fail(self, tool: str, first_arg: str, job: str, times: int = 1) -> None:
        """Make the next TIMES calls of `tool first_arg ...` in JOB fail."""
        knob = self.state / "knobs" / job / f"{tool}_{first_arg}"
        knob.parent.mkdir(parents=True, exist_ok=True)
        knob.write_text(str(times))

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        path = self.state / "calls.jsonl"
        entries = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        return [e for e in entries if tool is None or e["tool"] == tool]

    def facts(self, key: str) -> list[tuple[str, str, Any]]:
        """(job, run, value) of every successful call that established KEY."""
        return [
            (e["job"], e["run"], e["facts"][key])
            for e in self.calls()
            if key in e["facts"] and e["rc"] == 0
        ]


class Machine:
    """One job's runner: a fresh work dir and the provenance of what it received."""

    def __init__(self, world: World, job: str, run: str) -> None:
        self.world = world
        self.result = JobResult(job, run, "success")
        base = world.root / "machines" / f"{job}.{run}"
        shutil.rmtree(base, ignore_errors=True)
        self.work = base / "work"
        self.tmp = base / "tmp"
        self.home = base / "home"
        for d in (self.work, self.tmp, self.home):
            d.mkdir(parents=True)
        self.base = base
        self._stamps: dict[str, int] = {}

    def env(self) -> dict[str, str]:
        """What every runner provides before the pipeline's own env."""
        return {
            "PATH": f"{self.world.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "CI": "true",
            "REHEARSAL_WORLD": str(self.world.state),
            "REHEARSAL_MACHINE": str(self.base / "machine"),
            "REHEARSAL_JOB": self.result.job,
            "REHEARSAL_RUN": self.result.run,
            "REHEARSAL_PYTHON": sys.executable,
            "REHEARSAL_FAKES": str(HERE),
        }

    def checkout(self) -> None:
        shutil.copytree(self.world.repo, self.work, symlinks=True, dirs_exist_ok=True)

    def receive(self, dest: str, layer: Layer) -> None:
        """Unpack LAYER under DEST (relative to the work dir), stamping provenance."""
        for rel, content in layer.files.items():
            path = self.work / dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            st = path.stat()
            os.utime(path, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))
            key = os.path.normpath(os.path.join(dest, rel))
            self.result.received[key] = layer.origin
            self._stamps[key] = st.st_mtime_ns

    def collect(self, path: str, hidden: bool = True) -> Files:
        """The files at PATH (a file or a directory), relative to PATH."""
        top = self.work / path
        if top.is_file():
            return {top.name: top.read_bytes()}
        files: Files = {}
        if top.is_dir():
            for p in sorted(top.rglob("*")):
                rel = p.relative_to(top)
                if p.is_file() and (hidden or not any(s.startswith(".") for s in rel.parts)):
                    files[str(rel)] = p.read_bytes()
        return files

    def shell(self, argv: list[str], env: Mapping[str, str]) -> int:
        proc = subprocess.run(
            argv, env=dict(env), cwd=self.work, capture_output=True, text=True,
            timeout=120, check=False, stdin=subprocess.DEVNULL,
        )
        self.note(proc.stdout + proc.stderr)
        return proc.returncode

    def note(self, text: str) -> None:
        self.result.log.append(text)

    def finish(self) -> JobResult:
        """Record which received files the job read (and did not rewrite)."""
        for key, origin in self.result.received.items():
            path = self.work / key
            if not path.exists():
                continue
            st = path.stat()
            if st.st_mtime_ns == self._stamps[key] and st.st_atime_ns >= st.st_mtime_ns:
                self.result.reads[key] = origin
        return self.result


def topological(needs: Mapping[str, Iterable[str]]) -> list[str]:
    """Jobs in dependency order, keeping file order among independent jobs."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(job: str, stack: tuple[str, ...]) -> None:
        if job in stack:
            raise RehearsalError(f"dependency cycle through {job}")
        if job in seen:
            return
        if job not in needs:
            raise RehearsalError(f"unknown job {job!r} in needs/requires")
        for dep in needs[job]:
            visit(dep, (*stack, job))
        seen.add(job)
        order.append(job)

    for job in needs:
        visit(job, ())
    return order


def in_waves(
    order: list[str], needs: Mapping[str, Iterable[str]], jobs: set[str],
    run_job: Callable[[str], JobResult], workers: int,
) -> list[JobResult]:
    """Run JOBS in dependency order, the jobs of one wave side by side (as CI would).

    workers=1 runs a wave in file order: a job then sees everything the jobs
    before it produced, like a CI job that happened to start late.
    """
    pending = [j for j in order if j in jobs]
    results: list[JobResult] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending:
            ready = [j for j in pending if not set(needs[j]) & set(pending)]
            results.extend(pool.map(run_job, ready))
            pending = [j for j in pending if j not in ready]
    return results


def ancestors(needs: Mapping[str, Iterable[str]], job: str) -> set[str]:
    out: set[str] = set()
    todo = list(needs[job])
    while todo:
        dep = todo.pop()
        if dep not in out:
            out.add(dep)
            todo.extend(needs[dep])
    return out


def descendants(needs: Mapping[str, Iterable[str]], jobs: set[str]) -> set[str]:
    return {j for j in needs if ancestors(needs, j) & jobs} | jobs


def provenance_violations(
    needs: Mapping[str, Iterable[str]], results: Iterable[JobResult]
) -> list[str]:
    """Reads of files that neither an upstream job nor the job itself wrote."""
    bad = []
    for result in results:
        allowed = ancestors(needs, result.job) | {result.job}
        for path, origin in sorted(result.reads.items()):
            if origin.job not in allowed:
                bad.append(f"{result.job} ({result.run}) read {path} written by {origin.job}")
    return bad


def mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RehearsalError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def only_keys(value: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise RehearsalError(f"{where}: the rehearsal does not understand {unknown}")
