"""The IR's job environments and the stage scripts agree, for every example build.

Each build job of each example (and of the ok test specs) runs its emitted
build.sh with exactly the compiled environment, with recording stubs for the
tools. Only the checksum is replaced, by the hash of the stub's download,
since the examples' checksums are placeholders.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Job, Stage
from tests.stages.conftest import STUB, Stubs

ROOT = Path(__file__).resolve().parents[2]
SPECS = [*sorted((ROOT / "examples").glob("*/kvc.yaml")),
         *sorted((ROOT / "tests/data/ok").glob("*.yaml"))]
COMPRESS = {"gzip": gzip.compress, "xz": lzma.compress, "bzip2": bz2.compress}
SUFFIX = {".gz": "gzip", ".xz": "xz", ".bz2": "bzip2"}


def _cases() -> list[tuple[Path, str]]:
    return [(spec, job.id) for spec in SPECS for job in build_pipeline(load(spec)).jobs
            if job.stage is Stage.BUILD]


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
              f'exec "{sys.executable}" "{STUB}" curl "$@"\n')


@pytest.mark.parametrize(("spec", "job_id"), _cases(),
                         ids=[f"{s.parent.name}/{s.stem}:{j}" for s, j in _cases()])
def test_every_example_build_runs_with_its_compiled_environment(
        stubs: Stubs, spec: Path, job_id: str) -> None:
    copy = stubs.root / "kvc.yaml"
    copy.write_text(spec.read_text())
    result = CliRunner().invoke(main, ["compile", str(copy), "--backend", "github"])
    assert result.exit_code == 0, result.output
    job = build_pipeline(load(copy)).job(job_id)
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
    run = stubs.run_emitted(".kvc/stages/build.sh", {**env, "KVC_STUB_CURL_SRC": str(source)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert (stubs.root / env["KVC_OUTPUT"]).is_file()
    tools = set(stubs.tools())
    assert ("virt-customize" in tools) == (env["KVC_SYSPREP_ENABLED"] == "true")
    assert ("docker" in tools) == (env["KVC_DOWNLOAD_IN"] == "container")
