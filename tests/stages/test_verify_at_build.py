"""build.sh's verify_at_build mode against a real HTTP server on 127.0.0.1.

The download and the checksum file both come over real curl from a local
server, so retries, redirects and parsing meet real HTTP; only the
libguestfs tools are stubs.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Stubs

PAYLOAD = b"QFI\xfb pretend disk image\n" * 64
NAME = "debian-12-genericcloud-amd64.qcow2"
OUTPUT = "artifacts/build/debian-12/amd64/disk.qcow2"
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
SHA512 = hashlib.sha512(PAYLOAD).hexdigest()
OTHER = hashlib.sha256(b"another file").hexdigest()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a fresh directory."""
    root = tmp_path / "upstream"
    root.mkdir()
    (root / NAME).write_bytes(PAYLOAD)
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(stubs: Stubs, base: str, checksum_file: str) -> tuple[int, str]:
    stubs.add("curl", 'exec /usr/bin/curl "$@"\n')
    env = {"KVC_URL": f"{base}/{NAME}", "KVC_CHECKSUM": "",
           "KVC_CHECKSUM_URL": f"{base}/{checksum_file}", "KVC_OUTPUT": OUTPUT,
           "KVC_ARCH": "amd64", "KVC_UNAME_ARCH": "x86_64", "KVC_FORCE_TCG": "true",
           "KVC_DOWNLOAD_ATTEMPTS": "2"}
    result = stubs.run("build.sh", env)
    return result.returncode, result.stderr


def built(stubs: Stubs) -> bool:
    return (stubs.root / OUTPUT).exists()


@pytest.mark.parametrize("body", [
    f"{OTHER}  other.qcow2\n{SHA256}  {NAME}\n",                       # GNU
    f"{SHA512} *images/{NAME}\r\n",                                     # GNU binary, CRLF, path
    f"SHA256 ({NAME}) = {SHA256.upper()}\nSHA256 (other) = {OTHER}\n",  # BSD
    "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
    f"# comment\nSHA256 ({NAME}) = {SHA256}\n-----BEGIN PGP SIGNATURE-----\nabc\n"
    "-----END PGP SIGNATURE-----\n",                                    # Fedora style
    f"{SHA256}  {NAME}\n{SHA256}  {NAME}\n",                            # same entry twice
], ids=["gnu", "gnu-binary-crlf", "bsd", "pgp", "duplicate-same"])  # fmt: skip
def test_good_checksum_files_verify(stubs: Stubs, server: tuple[str, Path], body: str) -> None:
    base, root = server
    (root / "SUMS").write_text(body)
    code, err = run(stubs, base, "SUMS")
    assert code == 0, err
    assert "verifying at build time" in err
    assert built(stubs)


def test_per_file_checksum_naming_the_dated_build(stubs: Stubs,
                                                  server: tuple[str, Path]) -> None:
    base, root = server
    (root / f"{NAME}.sha256").write_text(f"{SHA256}  debian-12-20250101.qcow2\n")
    code, err = run(stubs, base, f"{NAME}.sha256")
    assert code == 0, err


@pytest.mark.parametrize(("body", "message"), [
    (f"{OTHER}  {NAME}\n", "checksum mismatch"),
    (f"{SHA256}  other.qcow2\n", f"has no entry for {NAME}"),
    (f"{SHA256}  {NAME}\n{OTHER}  mirror/{NAME}\n", "twice with different digests"),
    ("<html>not a checksum file</html>\n", f"has no entry for {NAME}"),
], ids=["bad", "missing", "conflicting", "garbage"])  # fmt: skip
def test_bad_checksum_files_fail_and_leave_nothing(stubs: Stubs, server: tuple[str, Path],
                                                   body: str, message: str) -> None:
    base, root = server
    (root / "SUMS").write_text(body)
    code, err = run(stubs, base, "SUMS")
    assert code != 0
    assert message in err
    assert not built(stubs)
    assert "virt-customize" not in stubs.tools()


def test_unreachable_checksum_file_fails_after_retries(stubs: Stubs,
                                                       server: tuple[str, Path]) -> None:
    base, _ = server
    code, err = run(stubs, base, "MISSING-SUMS")
    assert code != 0
    assert "cannot download the checksum file" in err
    assert "attempt 1 failed" in err
    assert not built(stubs)


def test_a_pin_wins_over_the_checksum_url(stubs: Stubs, server: tuple[str, Path]) -> None:
    base, root = server
    (root / "SUMS").write_text(f"{OTHER}  {NAME}\n")
    stubs.add("curl", 'exec /usr/bin/curl "$@"\n')
    result = stubs.run("build.sh", {
        "KVC_URL": f"{base}/{NAME}", "KVC_CHECKSUM": f"sha256:{SHA256}",
        "KVC_CHECKSUM_URL": f"{base}/SUMS", "KVC_OUTPUT": OUTPUT, "KVC_ARCH": "amd64",
        "KVC_UNAME_ARCH": "x86_64", "KVC_FORCE_TCG": "true"})
    assert result.returncode == 0, result.stderr
    assert "verifying at build time" not in result.stderr
