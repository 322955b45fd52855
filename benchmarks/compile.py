"""Time the compiler: its front half per phase, and whole compiles against the import floor.

Usage: .venv/bin/python benchmarks/compile.py [--repeats N] [--profile]

Whole compiles: ``kvc compile`` (and ``--check``) as separate processes, each
paired with a process that only imports ruamel.yaml, pydantic and click (the
stack's import floor), alternating so both see the same machine load; the
ratio is the median of the per-pair ratios, of wall and of CPU time. Each is
measured without the compile cache (``KVC_NO_CACHE=1``: every run loads,
validates and emits) and with it (a private cache directory, primed once: every
run is a hit, as for a pre-commit hook on an unchanged spec). In-process, the
1,000-build spec is compiled end to end (load -> files written) without the
cache and its CPU time reported, then served from the cache; and the peak
memory of whole compiles of 10, 100 and 1,000 builds shows how it grows.

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
import compileall
import contextlib
import cProfile
import gc
import hashlib
import io
import os
import pstats
import statistics
import subprocess
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
        digest = hashlib.sha256(f"release-{index}".encode()).hexdigest()  # not a placeholder
        yield from (
            f"      - release_version: '{index}.0'",
            f"        release_name: r{index}",
            "        url: '{mirror}/{release_version}/image-{uname_arch}.qcow2'",
            "        checksum_url: '{mirror}/{release_version}/SHA256SUMS'",
            f"        release_checksum: {{amd64: 'sha256:{digest}', arm64: 'sha256:{digest}'}}",
            "        publish: {tags: ['{release_version}', '{release_name}']}",
        )


FLOOR_CODE = "import ruamel.yaml, pydantic, click"
E2E_TARGET_RATIO = 1.8
E2E_TARGET_SECONDS = 2.0


def catalogue_spec() -> str:
    """The issue's realistic catalogue: 14 images, 24 builds (10 on two arches, 4 on one)."""
    lines = ["kvc: 1", "registry: ghcr.io/bench", "flavors:"]
    for image in range(14):
        arches = "[amd64, arm64]" if image < 10 else "[amd64]"
        digest = hashlib.sha256(f"os{image}".encode()).hexdigest()
        lines += [f"  os{image}:", f"    arches: {arches}", "    releases:",
                  f"      - release_version: '{image}.1'",
                  "        url: 'https://example.org/{flavor}/{release_version}/{arch}.qcow2'",
                  f"        release_checksum: {{amd64: 'sha256:{digest}', "
                  f"arm64: 'sha256:{digest}'}}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Paired:
    """Medians of one paired series: wall and CPU seconds of each side, per-pair ratios."""

    floor: float
    whole: float
    ratio: float
    floor_cpu: float
    whole_cpu: float
    cpu_ratio: float


def _seconds(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{argv} failed ({status})")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def paired(spec: Path, out: Path, repeats: int, *, check: bool, cache: Path | None) -> Paired:
    """Each compile paired with a floor process right before it; ``cache`` None: no cache
    (every run compiles), else the compile cache in that directory (every run a hit)."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"KVC_NO_CACHE", "KVC_CACHE_DIR"}}
    env.update({"KVC_NO_CACHE": "1"} if cache is None else {"KVC_CACHE_DIR": str(cache)})
    kvc = [sys.executable, "-m", "kvc", "compile", str(spec), "--backend", "github",
           "--out", str(out)]
    # The tree --check compares; with a cache, also the entry every timed run reads.
    subprocess.run(kvc, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return _pairs([*kvc, "--check"] if check else kvc, repeats, env)


# What no cold compile can go below while the spec is validated by pydantic (the
# stack's spec models): the floor's imports, then pydantic's BaseModel machinery,
# kvc's spec models, the YAML parse and Spec.model_validate, and nothing else (no
# CLI, compiler, IR, emitter or writing).
VALIDATE_CODE = (FLOOR_CODE + "; import sys, pathlib; from kvc.spec.loader import load_file; "
                 "from kvc.spec.models import Spec; "
                 "Spec.model_validate(load_file(pathlib.Path(sys.argv[1])).data)")


def validation_floor(spec: Path, repeats: int) -> Paired:
    """Load + validate only, paired with the import floor like a whole compile."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _pairs([sys.executable, "-c", VALIDATE_CODE, str(spec)], repeats, env)


def _pairs(command: list[str], repeats: int, env: dict[str, str]) -> Paired:
    floors, compiles = [], []
    for _ in range(repeats):
        floors.append(_seconds([sys.executable, "-c", FLOOR_CODE], env))
        compiles.append(_seconds(command, env))
    med = statistics.median
    return Paired(med(f[0] for f in floors), med(c[0] for c in compiles),
                  med(c[0] / f[0] for f, c in zip(floors, compiles, strict=True)),
                  med(f[1] for f in floors), med(c[1] for c in compiles),
                  med(c[1] / f[1] for f, c in zip(floors, compiles, strict=True)))


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            _set(key, value)
        yield
    finally:
        for key, value in saved.items():
            _set(key, value)


def _set(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def whole_compile_cpu(spec: Path, out: Path) -> float:
    """CPU seconds (one core) of load -> IR -> every file emitted and written."""
    from kvc.commands import compile as compile_command  # noqa: PLC0415

    start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        compile_command.run(spec, "github", out=out)
    return time.process_time() - start


def whole_compile_peak(spec: Path, out: Path) -> int:
    """Peak bytes traced during one whole compile (imports already done)."""
    gc.collect()
    tracemalloc.start()
    whole_compile_cpu(spec, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def end_to_end(tmp: Path, generated: dict[int, Path], repeats: int) -> list[str]:
    catalogue = tmp / "catalogue-24.yaml"
    catalogue.write_text(catalogue_spec(), encoding="utf-8")
    rows = [f"{'whole compile (github)':<52} {'floor s':>8} {'compile s':>10} {'ratio':>6} "
            f"{'floor cpu':>10} {'compile cpu':>12} {'cpu ratio':>10}"]
    specs = [("examples/multi-distro", ROOT / "examples/multi-distro/kvc.yaml"),
             ("catalogue-24", catalogue)]
    for name, spec in specs:
        for cached in (False, True):
            for check in (False, True):
                out = tmp / f"out-{name.replace('/', '-')}"
                cache = tmp / "cache" if cached else None
                got = paired(spec, out, repeats, check=check, cache=cache)
                never = "\nupdate:" in spec.read_text(encoding="utf-8")  # never stored
                label = f"{name}{' --check' if check else ''}" + (
                    "" if not cached else ", cache (miss: update job)" if never else ", cached")
                rows.append(f"{label:<52} {got.floor:>8.3f} {got.whole:>10.3f} "
                            f"{got.ratio:>6.2f} {got.floor_cpu:>10.3f} {got.whole_cpu:>12.3f} "
                            f"{got.cpu_ratio:>10.2f}")
    got = validation_floor(catalogue, repeats)
    rows.append(f"{'catalogue-24: parse + pydantic validation only':<52} {got.floor:>8.3f} "
                f"{got.whole:>10.3f} {got.ratio:>6.2f} {got.floor_cpu:>10.3f} "
                f"{got.whole_cpu:>12.3f} {got.cpu_ratio:>10.2f}")
    big = generated[TARGET_BUILDS]
    with _environment(KVC_NO_CACHE="1", KVC_CACHE_DIR=None):
        cpu = whole_compile_cpu(big, tmp / "out-1000")
        peaks = {size: whole_compile_peak(path, tmp / f"out-peak-{size}")
                 for size, path in generated.items()}
    with _environment(KVC_NO_CACHE=None, KVC_CACHE_DIR=str(tmp / "cache")):
        whole_compile_cpu(big, tmp / "out-1000")  # stores the entry
        hit = whole_compile_cpu(big, tmp / "out-1000")
    met = "MEETS" if cpu < E2E_TARGET_SECONDS else "MISSES"
    rows.append(f"generated-{TARGET_BUILDS}: load -> files written in {cpu:.2f} CPU s -> {met} "
                f"the target of < {E2E_TARGET_SECONDS:.0f} s (served from the cache: "
                f"{hit:.2f} CPU s); catalogue target: ratio <= {E2E_TARGET_RATIO}")
    sizes = sorted(peaks)
    small, mid, large = (peaks[size] for size in sizes)
    growth = ((large - mid) / (sizes[2] - sizes[1])) / ((mid - small) / (sizes[1] - sizes[0]))
    rows.append("whole-compile peak MiB: " + ", ".join(
        f"{size} builds {peaks[size] / 2**20:.1f}" for size in sizes) +
        f"; per-build growth 100->1000 vs 10->100 = {growth:.2f}")
    return rows


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
    # An installed kvc has bytecode (pip compiles a wheel's modules on install), as the
    # floor's packages do; a checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise
    # compile every kvc module from source in every timed process.
    compileall.compile_dir(ROOT / "kvc", quiet=1)
    results = [measure(f"examples/{p.parent.name}", p, args.repeats)
               for p in sorted(ROOT.glob("examples/*/kvc.yaml"))]
    with tempfile.TemporaryDirectory(prefix="kvc-bench-") as tmp:
        generated = {size: Path(tmp) / f"generated-{size}.yaml" for size in GENERATED_SIZES}
        for size, path in generated.items():
            path.write_text(generated_spec(size), encoding="utf-8")
            results.append(measure(f"generated-{size}", path, args.repeats))
        print(table(results))
        print()
        print("\n".join(verdict(results)))
        print()
        print("\n".join(end_to_end(Path(tmp), generated, args.repeats)))
        if args.profile:
            print(profile(generated[TARGET_BUILDS]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
