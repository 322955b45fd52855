"""Real-tool fixtures: a cached bootable Debian image, an HTTP server, a registry.

Every test here runs real libguestfs/qemu/buildah under software emulation
(the machines this runs on may have a /dev/kvm that hangs). Missing tools skip
the tests with the reason, unless KVC_REQUIRE_INTEGRATION=1 makes that a
failure (tests/gate.py; CI installs them with scripts/install-integration-deps.sh).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.gate import require

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STAGES = REPO / "kvc" / "stages"
# Debian 12 packages no docker-buildx: scripts/install-integration-deps.sh unpacks
# Debian 13's plugin binary here (tests/gate.py:installed looks here first).
LOCAL_BUILDX = REPO / ".tools" / "bin" / "docker-buildx"
FIXTURE_SCRIPT = HERE / "fixture" / "build-fixture.sh"
CACHE = Path(os.environ.get("KVC_FIXTURE_CACHE", Path.home() / ".cache" / "kvc-test-fixtures"))

# Software emulation everywhere: never let a tool try KVM here.
TCG_ENV = {
    "LIBGUESTFS_BACKEND": "direct",
    "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg",
    "KVC_FORCE_TCG": "true",
}


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails."""
    env = {**os.environ, **TCG_ENV}
    result = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{cmd[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kvc-it-") as tmp:
        yield Path(tmp)


# Scratch directories removed right after use (pytest's tmp_path keeps the
# last runs around; these hold disk images and container storage).
scratch = pytest.fixture(_scratch)
module_scratch = pytest.fixture(scope="module")(_scratch)
session_scratch = pytest.fixture(scope="session")(_scratch)


def fixture_path() -> Path:
    """Where the fixture for the current recipe is cached."""
    key = hashlib.sha256(FIXTURE_SCRIPT.read_bytes()).hexdigest()[:16]
    return CACHE / key / "debian.img.gz"


@pytest.fixture(scope="session")
def debian_fixture() -> Path:
    """A bootable Debian raw image, gzipped, cached by the recipe's hash.

    A cached image is used by anyone; only building it needs root (debootstrap),
    so CI may build it once as root and run the tests as its own user.
    """
    cached = fixture_path()
    if cached.exists():
        return cached
    require("debootstrap", "virt-make-fs", "guestfish", "extlinux", root=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
        raw = Path(tmp) / "debian.img"
        run(["bash", str(FIXTURE_SCRIPT), str(raw)], timeout=900)
        packed = Path(tmp) / "debian.img.gz"
        with raw.open("rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        packed.rename(cached)
    return cached


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    root: Path
    url: str


@pytest.fixture(scope="session")
def http_server(session_scratch: Path) -> Iterator[Server]:
    """A static file server on 127.0.0.1 with a random port."""
    root = session_scratch
    handler = partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT


@pytest.fixture
def registry(scratch: Path) -> Iterator[Registry]:
    """Debian's docker-registry on 127.0.0.1, plain http, temporary storage."""
    with serve_registry(scratch) as served:
        yield served


@contextlib.contextmanager
def serve_registry(tmp_path: Path, extra_config: str = "") -> Iterator[Registry]:
    """docker-registry with ``extra_config`` (more top-level YAML keys, e.g. ``auth:``)."""
    require("docker-registry")
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n" + extra_config
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for a login
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("docker-registry did not start")
                time.sleep(0.2)
        yield Registry(host=f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
