from __future__ import annotations

import pytest

from kvc.lock import HttpFetcher, LockError
from tests.lock.conftest import Mirror


def fetcher(sleeps: list[float] | None = None, **kwargs: float) -> HttpFetcher:
    record = sleeps if sleeps is not None else []
    return HttpFetcher(sleep=record.append, **kwargs)  # type: ignore[arg-type]


def test_downloads_text(mirror: Mirror) -> None:
    url = mirror.serve("/SHA256SUMS", "abc\n")
    assert fetcher().get_text(url) == "abc\n"


def test_one_download_per_url_per_run(mirror: Mirror) -> None:
    url = mirror.serve("/SHA256SUMS", "abc\n")
    client = fetcher()
    for _ in range(3):
        client.get_text(url)
    assert mirror.hits["/SHA256SUMS"] == 1


def test_transient_errors_are_retried_with_backoff(mirror: Mirror) -> None:
    url = mirror.serve("/SUMS", "ok\n", fail_first=2)
    sleeps: list[float] = []
    assert fetcher(sleeps, attempts=3, backoff=0.5).get_text(url) == "ok\n"
    assert mirror.hits["/SUMS"] == 3
    assert sleeps == [0.5, 1.0]


def test_retries_are_bounded(mirror: Mirror) -> None:
    url = mirror.serve("/SUMS", "ok\n", fail_first=10)
    with pytest.raises(LockError, match=r"HTTP 503.*gave up after 3 attempts"):
        fetcher(attempts=3).get_text(url)
    assert mirror.hits["/SUMS"] == 3


def test_not_found_is_final_and_cached(mirror: Mirror) -> None:
    client = fetcher()
    for _ in range(2):
        with pytest.raises(LockError, match="HTTP 404"):
            client.get_text(mirror.url("/missing"))
    assert mirror.hits["/missing"] == 1


def test_timeout_is_retried_then_reported(mirror: Mirror) -> None:
    url = mirror.serve("/slow", "late\n", delay=0.6)
    with pytest.raises(LockError, match="timed out"):
        fetcher(attempts=2, timeout=0.15).get_text(url)
    assert mirror.hits["/slow"] == 2


def test_connection_refused(closed_port_url: str) -> None:
    with pytest.raises(LockError, match=r"cannot connect.*gave up after 2 attempts"):
        fetcher(attempts=2).get_text(closed_port_url)


def test_size_cap(mirror: Mirror) -> None:
    url = mirror.serve("/big", "x" * 2000)
    with pytest.raises(LockError, match="exceeds the 1000-byte limit"):
        fetcher(max_bytes=1000).get_text(url)


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "no-length"])
def test_size_cap_is_exact_with_or_without_content_length(mirror: Mirror,
                                                          send_length: bool) -> None:
    """Without a Content-Length the cap holds while reading; a body at the cap is fine."""
    at_cap = mirror.serve("/at", "x" * 1000, send_length=send_length)
    over = mirror.serve("/over", "x" * 1001, send_length=send_length)
    big = mirror.serve("/big", "x" * 50_000, send_length=send_length)
    client = fetcher(max_bytes=1000)
    assert client.get_text(at_cap) == "x" * 1000
    for url in (over, big):
        with pytest.raises(LockError, match="exceeds the 1000-byte limit"):
            client.get_text(url)


def test_binary_body_is_rejected(mirror: Mirror) -> None:
    url = mirror.serve("/bin", b"\xff\xfe\x00garbage")
    with pytest.raises(LockError, match="not a text file"):
        fetcher().get_text(url)


def test_only_http_urls() -> None:
    with pytest.raises(LockError, match="only http"):
        fetcher().get_text("file:///etc/passwd")
