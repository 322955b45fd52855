"""The IR's job environments and the stage scripts agree, for every example build.

Each build job of each example (and of the ok test specs) runs its emitted
build.sh with exactly the compiled environment, with recording stubs for the
tools. Only the checksum is replaced, by the hash of the stub's download,
since the examples' checksums are placeholders. Each spec is compiled once per
module (into its own directory) and every job of it runs that spec's emitted
build.sh, in a fresh stub repository as its working directory. The fast subset
runs each image's first build; its other arches are marked slow.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kvc.cli import main
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Job, Pipeline, Stage
from tests.conftest import per_module
from tests.stages.conftest import RECORD, Stubs

ROOT = Path(__file__).resolve().parents[2]
SPECS = [*sorted((ROOT / "examples").glob("*/kvc.yaml")),
         *sorted((ROOT / "tests/data/ok").glob("*.yaml"))]
COMPRESS = {"gzip": gzip.compress, "xz": lzma.compress, "bzip2": bz2.compress}
SUFFIX = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2"}


@functools.cache
def _pipeline(spec: Path) -> Pipeline:
    return build_pipeline(load(spec))


def _cases() -> list[Any]:
    """Every build job; an image's builds for its other arches only in the whole suite
    (marked slow: the fast subset runs each image's first build)."""
    cases, seen = [], set()
    for spec in SPECS:
        for job in _pipeline(spec).jobs:
            if job.stage is Stage.BUILD:
                first = (spec, job.image) not in seen
                seen.add((spec, job.image))
                cases.append(pytest.param(
                    spec, job.id, id=f"{spec.parent.name}/{spec.stem}:{job.id}",
                    marks=() if first else pytest.mark.slow))
    return cases


CASES = _cases()


@pytest.fixture(scope=per_module)
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """The copy of a spec compiled for GitHub (its directory holds .kvc/), once per spec."""
    root = tmp_path_factory.mktemp("compiled")

    @functools.cache
    def compile_once(spec: Path) -> Path:
        copy = root / f"{len(list(root.iterdir()))}" / "kvc.yaml"
        copy.parent.mkdir()
        copy.write_text(spec.read_text())
        result = CliRunner().invoke(main, ["compile", str(copy), "--backend", "github"])
        assert result.exit_code == 0, result.output
        return copy

    return compile_once


def _payload(job: Job) -> bytes:
    env = job.env_dict()
    mode = env["KVC_DECOMPRESS"]
    if mode == "auto":
        mode = next((m for s, m in SUFFIX.items() if env["KVC_URL"].endswith(s)), "none")
    raw = b"a disk image stand-in"
    return COMPRESS[mode](raw) if mode in COMPRESS else raw


def _serve_checksum_file(stubs: Stubs, url: str, payload: bytes) -> None:
    sums = stubs.root.parent / "SUMS"
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    sums.write_text(f"{hashlib.sha512(payload).hexdigest()}  {name}\n")
    stubs.add("curl", 'for arg; do last="$arg"; done\n'
              f'[ "$last" = "$KVC_CHECKSUM_URL" ] && export KVC_STUB_CURL_SRC="{sums}"\n'
              f'exec {RECORD} curl "$@"\n')


@pytest.mark.parametrize(("spec", "job_id"), CASES)
def test_every_example_build_runs_with_its_compiled_environment(
        stubs: Stubs, compiled: Callable[[Path], Path], spec: Path, job_id: str) -> None:
    copy = compiled(spec)
    job = _pipeline(copy).job(job_id)
    env = job.env_dict()
    source = stubs.root / "download.bin"
    source.write_bytes(_payload(job))
    if env["KVC_CHECKSUM"]:
        algo = env["KVC_CHECKSUM"].split(":", 1)[0]
        env["KVC_CHECKSUM"] = f"{algo}:{hashlib.new(algo, source.read_bytes()).hexdigest()}"
    if env.get("KVC_CHECKSUM_URL"):  # verify_at_build: curl serves a real checksum file too
        _serve_checksum_file(stubs, env["KVC_URL"], source.read_bytes())
    if env.get("KVC_MAKEFILE") == "true":
        (stubs.root / env["KVC_MAKEFILE_DIR"]).mkdir(parents=True, exist_ok=True)
    script = str(copy.parent / ".kvc/stages/build.sh")
    # No /dev/kvm: the host's KVM is no part of the contract, and probing it would boot the
    # host's kernel in the real qemu for every case (the probe has its own tests in
    # test_build.py).
    machine = {"KVC_KVM_DEVICE": str(stubs.root.parent / "no-kvm")}
    run = stubs.run_emitted(script, {**env, **machine, "KVC_STUB_CURL_SRC": str(source)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert (stubs.root / env["KVC_OUTPUT"]).is_file()
    tools = set(stubs.tools())
    assert ("virt-customize" in tools) == (env["KVC_SYSPREP_ENABLED"] == "true")
    assert ("docker" in tools) == (env["KVC_DOWNLOAD_IN"] == "container")
