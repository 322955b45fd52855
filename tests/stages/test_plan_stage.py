"""plan.sh's registry token flow, against a small registry that demands bearer tokens.

Debian's docker-registry (tests/integration/test_plan_registry.py) serves
without auth; public ghcr.io and Docker Hub answer 401 and name a token
service instead. This stand-in does the same, so the anonymous token flow,
the credential scoping and the fail-open path are exercised for real by
bash, curl and jq.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kvc import stages
from tests.gate import require

STAGES = Path(stages.__file__).parent
FINGERPRINT = "0123456789abcdef0123"
CONFIG = json.dumps({"config": {"Labels": {"dev.kvc.fingerprint": FINGERPRINT}}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": CONFIG_DIGEST}}).encode()

@pytest.fixture(autouse=True)
def _plan_tools() -> None:
    require("jq", "curl")  # plan.sh reads registries with them


@dataclass
class TokenRegistry:
    host: str
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refuse_tokens: bool = False
    tags: tuple[str, ...] = ("1",)  # the tags that name MANIFEST
    digest_header: bool = True  # Docker-Content-Digest is only a SHOULD
    failing: tuple[str, ...] = ()  # tags whose manifest answers HTTP 403 (not retried)
    header_digest: str = ""  # a Docker-Content-Digest other than the body's sha256
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)


def _manifest_headers(state: TokenRegistry) -> dict[str, str]:
    if not state.digest_header:
        return {}
    return {"Docker-Content-Digest": state.header_digest
            or "sha256:" + hashlib.sha256(MANIFEST).hexdigest()}


def _body(method: str, body: bytes) -> bytes:
    return b"" if method == "HEAD" else body


def _token_answer(state: TokenRegistry) -> tuple[int, bytes]:
    if state.refuse_tokens:
        return 401, b"{}"
    return 200, json.dumps({"token": "tok"}).encode()


def _registry_answer(state: TokenRegistry, path: str) -> tuple[int, bytes, dict[str, str]]:
    """An authorised request's status, body and headers."""
    if path in {f"/v2/kvc/img/manifests/{tag}" for tag in state.failing}:
        return 403, b"{}", {}
    if path in {f"/v2/kvc/img/manifests/{tag}" for tag in state.tags}:
        return 200, MANIFEST, _manifest_headers(state)
    if path == f"/v2/kvc/img/blobs/{CONFIG_DIGEST}":
        return 200, CONFIG, {}
    return 404, b"{}", {}


def _handler(state: TokenRegistry) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(_body(self.command, body))

        def do_GET(self) -> None:
            state.requests.append((self.command, self.path))
            if self.path.startswith("/token"):
                state.token_requests.append({"path": self.path,
                                             "auth": self.headers.get("Authorization", "")})
                self.send(*_token_answer(state))
                return
            if self.headers.get("Authorization") != "Bearer tok":
                realm = f"http://{state.host}/token"
                self.send(401, b"{}", {"WWW-Authenticate":
                                       f'Bearer realm="{realm}",service="test-registry",'
                                       'scope="repository:kvc/img:pull"'})
                return
            self.send(*_registry_answer(state, self.path))

        do_HEAD = do_GET  # the same answer, without the body (send)
    return Handler


@pytest.fixture
def token_registry() -> Iterator[TokenRegistry]:
    state = TokenRegistry(host="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def plan(tmp_path: Path, registry: TokenRegistry, tags: str = "1",
         **env: str) -> list[dict[str, Any]]:
    data = tmp_path / "plan.tsv"
    data.write_text(
        f"# header\nimg-1\timg/1\t{registry.host}/kvc/img\t{FINGERPRINT}\t0\t{tags}\n",
        encoding="utf-8")
    out = tmp_path / "out"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KVC_")}
    result = subprocess.run(
        ["bash", str(STAGES / "plan.sh")], capture_output=True, text=True, check=False,
        env={**clean, "KVC_PLAN_DATA": str(data), "KVC_PLAN_DIR": str(out), **env},
        timeout=120)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    return rows


def test_public_images_are_read_with_an_anonymous_token(tmp_path: Path,
                                                        token_registry: TokenRegistry) -> None:
    (row,) = plan(tmp_path, token_registry)
    assert row == {"image": "img/1", "slug": "img-1", "run": False,
                   "reason": "unchanged: published fingerprint matches",
                   "fingerprint": FINGERPRINT}
    (request,) = token_registry.token_requests
    assert request["auth"] == ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["path"]).query)
    assert query == {"scope": ["repository:kvc/img:pull"], "service": ["test-registry"]}


@pytest.mark.parametrize(("tags", "reason"), [
    (("1", "latest"), "unchanged: published fingerprint matches"),
    (("1",), "last publish incomplete: "),
])
def test_the_other_tags_are_compared_by_head_requests(
        tmp_path: Path, token_registry: TokenRegistry, tags: tuple[str, ...],
        reason: str) -> None:
    """Docker Hub counts a manifest GET as a pull, not a HEAD: the moving tags are
    compared by the Docker-Content-Digest of a HEAD, the first tag's body is read."""
    token_registry.tags = tags
    (row,) = plan(tmp_path, token_registry, tags="1,latest")
    assert row["reason"].startswith(reason)
    manifests = [r for r in token_registry.requests if "/manifests/" in r[1]]
    assert ("GET", "/v2/kvc/img/manifests/latest") not in manifests
    assert ("HEAD", "/v2/kvc/img/manifests/latest") in manifests
    assert ("GET", "/v2/kvc/img/manifests/1") in manifests


def test_a_head_without_a_digest_falls_back_to_the_body(
        tmp_path: Path, token_registry: TokenRegistry) -> None:
    token_registry.tags = ("1", "latest")
    token_registry.digest_header = False
    (row,) = plan(tmp_path, token_registry, tags="1,latest")
    assert row["reason"] == "unchanged: published fingerprint matches"
    assert ("GET", "/v2/kvc/img/manifests/latest") in token_registry.requests


def test_the_tags_are_compared_by_the_registry_s_own_digest(
        tmp_path: Path, token_registry: TokenRegistry) -> None:
    """The first tag's digest and the others' come from the same source: a registry
    whose Docker-Content-Digest is not the sha256 of the bytes it sends would
    otherwise make every plan see a half-finished publish and rebuild forever."""
    token_registry.tags = ("1", "latest")
    token_registry.header_digest = "sha256:" + hashlib.sha256(b"canonical form").hexdigest()
    (row,) = plan(tmp_path, token_registry, tags="1,latest")
    assert row["reason"] == "unchanged: published fingerprint matches"


def test_an_unreadable_other_tag_says_why_the_image_runs(
        tmp_path: Path, token_registry: TokenRegistry) -> None:
    """The reason of a failed tag comparison reaches the plan's row and log."""
    token_registry.tags = ("1",)
    token_registry.failing = ("latest",)
    (row,) = plan(tmp_path, token_registry, tags="1,latest")
    assert row["run"] is True
    assert row["reason"] == ("registry unreadable, running (fail open): "
                             "registry answered HTTP 403 for manifests/latest")


def test_pull_credentials_go_only_to_their_registry(tmp_path: Path,
                                                    token_registry: TokenRegistry) -> None:
    secret = 'us"er\\:pa ss'
    plan(tmp_path, token_registry, KVC_PULL_USER="bot", KVC_PULL_PASSWORD=secret)
    expected = "Basic " + base64.b64encode(f"bot:{secret}".encode()).decode()
    assert token_registry.token_requests[-1]["auth"] == expected
    plan(tmp_path, token_registry, KVC_PULL_USER="bot", KVC_PULL_PASSWORD=secret,
         KVC_PULL_REGISTRY="ghcr.io")
    assert token_registry.token_requests[-1]["auth"] == ""
    plan(tmp_path, token_registry, KVC_PULL_USER="bot", KVC_PULL_PASSWORD=secret,
         KVC_PULL_REGISTRY=token_registry.host)
    assert token_registry.token_requests[-1]["auth"] == expected


def test_a_refused_token_runs_the_image(tmp_path: Path, token_registry: TokenRegistry) -> None:
    token_registry.refuse_tokens = True
    (row,) = plan(tmp_path, token_registry, KVC_SUMMARY_FILE=str(tmp_path / "summary.md"))
    assert row["run"] is True
    assert row["reason"].startswith("registry unreadable, running (fail open): token service")
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| img/1 | run | registry unreadable" in summary
    assert (tmp_path / "out" / "run.txt").read_text(encoding="utf-8") == "img-1\n"


def test_forced_and_refresh_due_images_are_rebuilt_without_the_cache(
        tmp_path: Path, token_registry: TokenRegistry) -> None:
    """rebuild.txt: a refresh exists to pick up new upstream images and updates, and a
    forced run to redo a build; both would get the old disk back from the build cache,
    which is keyed by the unchanged fingerprint. A changed or unpublished image has a
    new fingerprint, so its cache misses anyway."""
    host = token_registry.host
    data = tmp_path / "plan.tsv"
    data.write_text(
        f"img-1\timg/1\t{host}/kvc/img\t{FINGERPRINT}\t3600\t1\n"  # due: no created label
        f"img-2\timg/2\t{host}/kvc/img\t{FINGERPRINT}\t0\t1\n"  # forced
        f"img-3\timg/3\t{host}/kvc/new\t{FINGERPRINT}\t0\t1\n"  # not published yet
        f"img-4\timg/4\t{host}/kvc/img\t{FINGERPRINT}\t0\t1\n"  # unchanged
        # last publish incomplete (tag 2 is missing): the build that publishes again
        # must not restore the disk cached before the refresh that half-published
        f"img-5\timg/5\t{host}/kvc/img\t{FINGERPRINT}\t0\t1,2\n"
        # registry unreadable: the plan cannot tell whether a refresh replaced the
        # published disk since the cache was written, so it fails open without it
        f"img-6\timg/6\t127.0.0.1:1/kvc/img\t{FINGERPRINT}\t0\t1\n",
        encoding="utf-8")
    out = tmp_path / "out"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KVC_")}
    result = subprocess.run(
        ["bash", str(STAGES / "plan.sh")], capture_output=True, text=True, check=False,
        env={**clean, "KVC_PLAN_DATA": str(data), "KVC_PLAN_DIR": str(out),
             "KVC_FORCE": "img-2"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "run.txt").read_text(encoding="utf-8") == (
        "img-1\nimg-2\nimg-3\nimg-5\nimg-6\n")
    assert (out / "rebuild.txt").read_text(encoding="utf-8") == "img-1\nimg-2\nimg-5\nimg-6\n"
