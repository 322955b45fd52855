"""Time the compiler's front half: load + resolve + IR (graph build and dag.check).

Usage: .venv/bin/python benchmarks/compile.py [--repeats N] [--profile]

Measures every examples/*/kvc.yaml and generated specs of 10, 100 and 1,000
image builds (written to a temporary directory), prints the median wall time,
the time per image build and the peak memory traced by tracemalloc (measured
in a separate run, since tracing slows the timed ones). The target is a
1,000-build spec in under one second on one core, with memory growing about
linearly with the number of builds. ``--profile`` prints cProfile's top
functions for the 1,000-build case.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvc.compiler import dag  # noqa: E402
from kvc.compiler.driver import resolve_document  # noqa: E402
from kvc.compiler.graph import build_pipeline  # noqa: E402
from kvc.spec.loader import load_file  # noqa: E402

TARGET_SECONDS = 1.0
TARGET_BUILDS = 1000
GENERATED_SIZES = (10, 100, 1000)
FLAVORS = 10


@dataclass(frozen=True)
class Result:
    name: str
    builds: int
    jobs: int
    median: float
    phases: tuple[float, float, float]  # medians of load, resolve, IR
    peak_bytes: int

    @property
    def per_build_us(self) -> float:
        return self.median / self.builds * 1e6


def compile_once(path: Path) -> tuple[int, int, tuple[float, float, float]]:
    """The measured work: returns (image builds, jobs, seconds per phase)."""
    start = time.perf_counter()
    doc = load_file(path)
    loaded = time.perf_counter()
    resolved = resolve_document(doc)
    resolved_at = time.perf_counter()
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    done = time.perf_counter()
    return (len(resolved.builds), len(pipeline.jobs),
            (loaded - start, resolved_at - loaded, done - resolved_at))


def generated_spec(builds: int) -> str:
    """A spec of ``builds`` image builds: two arches per release, spread over flavors,
    with defaults, flavor settings, vars and per_arch overrides like a real one."""
    releases = builds // 2
    lines = [
        "kvc: 1",
        "registry: ghcr.io/bench",
        "defaults:",
        "  sysprep: {install: 'qemu-guest-agent,cloud-init', operations: [defaults]}",
        "  per_arch:",
        "    arm64:",
        "      test: {timeout: 40m}",
        "  vars: {mirror: 'https://mirror.example.org/{flavor}'}",
        "flavors:",
    ]
    for flavor in range(FLAVORS):
        count = releases // FLAVORS + (1 if flavor < releases % FLAVORS else 0)
        if count == 0:
            continue
        lines += [f"  distro{flavor}:", "    sysprep: {update: true}", "    releases:"]
        lines += _releases(count)
    return "\n".join(lines) + "\n"


def _releases(count: int) -> Iterator[str]:
    for index in range(count):
        digest = f"{index:064x}"
        yield from (
            f"      - release_version: '{index}.0'",
            f"        release_name: r{index}",
            "        url: '{mirror}/{release_version}/image-{uname_arch}.qcow2'",
            "        checksum_url: '{mirror}/{release_version}/SHA256SUMS'",
            f"        release_checksum: {{amd64: 'sha256:{digest}', arm64: 'sha256:{digest}'}}",
            "        publish: {tags: ['{release_version}', '{release_name}']}",
        )


def measure(name: str, path: Path, repeats: int) -> Result:
    compile_once(path)  # warm caches and imports
    runs: list[tuple[float, float, float]] = []
    builds = jobs = 0
    for _ in range(repeats):
        gc.collect()
        builds, jobs, phases = compile_once(path)
        runs.append(phases)
    gc.collect()
    tracemalloc.start()
    compile_once(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    medians = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
               statistics.median(r[2] for r in runs))
    return Result(name, builds, jobs, statistics.median(sum(r) for r in runs), medians,
                  peak)


def table(results: list[Result]) -> str:
    header = (f"{'spec':<22} {'builds':>6} {'jobs':>6} {'median s':>9} {'load':>7} "
              f"{'resolve':>7} {'IR':>7} {'µs/build':>9} {'peak MiB':>9}")
    rows = [header, "-" * len(header)]
    for r in results:
        load_s, resolve_s, ir_s = r.phases
        rows.append(f"{r.name:<22} {r.builds:>6} {r.jobs:>6} {r.median:>9.4f} {load_s:>7.3f} "
                    f"{resolve_s:>7.3f} {ir_s:>7.3f} {r.per_build_us:>9.0f} "
                    f"{r.peak_bytes / 2**20:>9.2f}")
    return "\n".join(rows)


def verdict(results: list[Result]) -> list[str]:
    generated = [r for r in results if r.name.startswith("generated")]
    big = next(r for r in generated if r.builds == TARGET_BUILDS)
    met = "MEETS" if big.median < TARGET_SECONDS else "MISSES"
    lines = [f"{TARGET_BUILDS} builds: {big.median:.3f} s -> {met} the target of "
             f"< {TARGET_SECONDS:.0f} s on one core (YAML load {big.phases[0]:.3f} s, "
             f"resolve {big.phases[1]:.3f} s, IR {big.phases[2]:.3f} s)"]
    small, mid = generated[0], generated[1]
    growth = (big.peak_bytes - mid.peak_bytes) / (mid.peak_bytes - small.peak_bytes) / (
        (big.builds - mid.builds) / (mid.builds - small.builds))
    shape = "roughly linear" if 0.5 <= growth <= 2.0 else "NOT linear"
    per_build = (big.peak_bytes - small.peak_bytes) / (big.builds - small.builds) / 1024
    lines.append(f"memory: {per_build:.1f} KiB per extra build; growth from 100->1000 vs "
                 f"10->100 per build = {growth:.2f} ({shape})")
    return lines


def profile(path: Path) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(compile_once, path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(f"examples/{p.parent.name}", p, args.repeats)
               for p in sorted(ROOT.glob("examples/*/kvc.yaml"))]
    with tempfile.TemporaryDirectory(prefix="kvc-bench-") as tmp:
        big = Path(tmp) / f"generated-{TARGET_BUILDS}.yaml"
        for size in GENERATED_SIZES:
            path = Path(tmp) / f"generated-{size}.yaml"
            path.write_text(generated_spec(size), encoding="utf-8")
            results.append(measure(f"generated-{size}", path, args.repeats))
        print(table(results))
        print()
        print("\n".join(verdict(results)))
        if args.profile:
            print(profile(big))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
