"""A real HTTP server on 127.0.0.1 serving checksum files the way mirrors do."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    delay: float = 0.0
    fail_first: int = 0  # answer 503 to this many requests before succeeding
    send_length: bool = True  # False: no Content-Length, the body ends when the server closes


@dataclass
class Mirror:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    agents: list[str] = field(default_factory=list)  # each request's User-Agent

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | str, **kwargs: float | bool) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def serve_fixture(self, path: str, name: str, **kwargs: float) -> str:
        return self.serve(path, (DATA / name).read_bytes(), **kwargs)


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            mirror.hits[self.path] += 1
            mirror.agents.append(self.headers.get("User-Agent", ""))
            route = mirror.routes.get(self.path)
            if route is None:
                self._reply(404, b"not found")
                return
            if mirror.hits[self.path] <= route.fail_first:
                self._reply(503, b"busy")
                return
            time.sleep(route.delay)
            self._reply(route.status, route.body, route.send_length)

        def _reply(self, status: int, body: bytes, send_length: bool = True) -> None:
            try:
                self.send_response(status)
                if send_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    box = Mirror(base="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    box.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/SHA256SUMS"
