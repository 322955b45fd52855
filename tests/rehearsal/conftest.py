"""Compiled trees for the rehearsal, made once per module.

A bundled example is compiled as shipped except for its checksum pins: the
fake internet cannot serve the real upstream images, so each build's URL
serves a small payload named after its flavor, release and arch (compressed
when the URL says .xz/.gz/.bz2); the copied spec pins that payload's digest,
or, for a `verify_at_build: true` release, its checksum_url serves a checksum
file listing the payloads.
The same holds for the test stage's pinned tool downloads, when the compiled
tree has a pin table (.kvc/stages/tools.sh rows "NAME VERSION ARCH URL
SHA256"): each URL serves the rehearsal's own fake of that tool (or a stub
file) and the copied table pins it. Everything else (jobs, env, steps) is the
example's own compiled output.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.rehearsal.world import HERE as FAKES
from tests.rehearsal.world import TOOLS, World

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SPECS = {
    "minimal": REPO / "examples" / "minimal" / "kvc.yaml",
    "multi-distro": REPO / "examples" / "multi-distro" / "kvc.yaml",
    "sign": HERE / "specs" / "sign.yaml",
    "attest": HERE / "specs" / "attest.yaml",
    "gitlab-tagged": HERE / "specs" / "gitlab-tagged.yaml",
}
BACKENDS = ("github", "circleci", "gitlab")
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".xz": lzma.compress, ".gz": gzip.compress, ".bz2": bz2.compress,
}


@dataclass(frozen=True)
class Compiled:
    """A compiled repository tree and what the fake internet serves for it."""

    tree: Path
    backend: str
    internet: dict[str, bytes]

    def world(self, root: Path) -> World:
        w = World(root, self.tree)
        for url, content in self.internet.items():
            w.serve(url, content)
        return w

    @property
    def pipeline(self) -> Path:
        if self.backend == "github":
            return self.tree / ".github" / "workflows" / "kvc.yml"
        if self.backend == "gitlab":
            return self.tree / ".gitlab-ci.yml"
        return self.tree / ".circleci" / "config.yml"


def compile_spec(spec: Path, out: Path, backend: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "kvc", "compile", str(spec), "--backend", backend, "-o", str(out)],
        check=True, capture_output=True, text=True,
    )


def payload(flavor: str, version: str, arch: str, url: str) -> bytes:
    raw = f"fake image {flavor} {version} {arch}\n".encode()
    for suffix, compress in COMPRESS.items():
        if url.endswith(suffix):
            return compress(raw)
    return raw


def repin(spec: Path, scratch: Path) -> dict[str, bytes]:
    """Pin SPEC's checksums to the fake payloads; return URL -> payload.

    A release pinned in the spec (`release_checksum`) gets the payload's
    digest; a `verify_at_build: true` release (no pin, KVC_CHECKSUM_URL set)
    gets its checksum_url served as a GNU checksum file listing every
    payload that URL covers, in the algorithm its file name says.
    """
    compile_spec(spec, scratch, "github")
    workflow = YAML(typ="safe").load(scratch / ".github" / "workflows" / "kvc.yml")
    yaml = YAML()
    doc = yaml.load(spec)
    internet: dict[str, bytes] = {}
    sums: dict[str, list[str]] = {}
    for job in workflow["jobs"].values():
        env = job.get("env", {})
        if "KVC_URL" not in env:
            continue
        flavor, version, arch = env["KVC_FLAVOR"], env["KVC_RELEASE_VERSION"], env["KVC_ARCH"]
        content = payload(flavor, version, arch, env["KVC_URL"])
        internet[env["KVC_URL"]] = content
        if not env.get("KVC_CHECKSUM") and env.get("KVC_CHECKSUM_URL"):
            url = env["KVC_CHECKSUM_URL"]
            algo = "sha512" if "512" in url.rsplit("/", 1)[-1] else "sha256"
            name = env["KVC_URL"].split("?")[0].rsplit("/", 1)[-1]
            sums.setdefault(url, []).append(f"{hashlib.new(algo, content).hexdigest()}  {name}\n")
            continue
        algo = env["KVC_CHECKSUM"].split(":", 1)[0]
        digest = hashlib.new(algo, content).hexdigest()
        for release in doc["flavors"][flavor]["releases"]:
            if str(release["release_version"]) == version:
                release["release_checksum"][arch] = f"{algo}:{digest}"
    for url, lines in sums.items():
        internet[url] = "".join(sorted(set(lines))).encode()
    yaml.dump(doc, spec)
    return internet


PIN_ROW = re.compile(r'^(\s*")(\S+) (\S+) (\S+) (\S+) ([0-9a-f]{64})("\s*)$', re.M)


def repin_tools(tree: Path, internet: dict[str, bytes]) -> None:
    """Serve a fake for every row of the pin table and pin the fake's sha256."""
    table = tree / ".kvc" / "stages" / "tools.sh"
    if not table.exists():
        return

    def row(m: re.Match[str]) -> str:
        name, url = m.group(2), m.group(5)
        if name in TOOLS:
            content = f'#!/bin/bash\nTOOL={name}\n. "{FAKES}/fake.sh"\n'.encode()
        else:
            content = f"# rehearsal stand-in for {name} {m.group(3)}\n".encode()
        internet[url] = content
        sha = hashlib.sha256(content).hexdigest()
        return f"{m.group(1)}{name} {m.group(3)} {m.group(4)} {url} {sha}{m.group(7)}"

    table.write_text(PIN_ROW.sub(row, table.read_text()))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Compiled]:
    """compiled(spec name, backend) -> Compiled, each made once per module."""
    cache: dict[tuple[str, str], Compiled] = {}
    internets: dict[str, dict[str, bytes]] = {}

    def make(name: str, backend: str) -> Compiled:
        if (name, backend) not in cache:
            base = tmp_path_factory.mktemp(f"{name}-{backend}")
            tree = base / "repo"
            tree.mkdir()
            shutil.copyfile(SPECS[name], tree / "kvc.yaml")
            if name not in internets:
                internets[name] = repin(tree / "kvc.yaml", base / "scratch")
            else:
                shutil.copyfile(cache_spec(cache, name), tree / "kvc.yaml")
            compile_spec(tree / "kvc.yaml", tree, backend)
            internet = dict(internets[name])
            repin_tools(tree, internet)
            cache[(name, backend)] = Compiled(tree, backend, internet)
        return cache[(name, backend)]

    return make


def cache_spec(cache: dict[tuple[str, str], Compiled], name: str) -> Path:
    return next(c.tree / "kvc.yaml" for (n, _), c in cache.items() if n == name)
