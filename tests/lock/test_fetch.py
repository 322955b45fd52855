from __future__ import annotations

import pytest

from kvc import __version__
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


# --- from the surviving mutants of kvc/lock/fetch.py (docs/mutation/lock.md) ------
# Through the injectable opener where a real server cannot stage the case quickly.

class _Response:
    """What an opener returns: ``read(amt)``, and headers unless ``headers`` is None."""

    def __init__(self, body: object, headers: dict[str, str] | None = None) -> None:
        self._body = body
        if headers is not None:
            self.headers = headers

    def read(self, amt: int | None = None) -> object:
        if amt is None:
            raise AssertionError("an unbounded read of a body that may never end")
        return self._body[:amt] if isinstance(self._body, bytes) else self._body

    def close(self) -> None:
        pass


def opened(response: _Response | BaseException, **kwargs: float) -> HttpFetcher:
    def opener(request: object, timeout: float) -> _Response:
        if isinstance(response, BaseException):
            raise response
        return response
    return HttpFetcher(opener=opener, sleep=lambda _: None, **kwargs)  # type: ignore[arg-type]


def test_requests_say_they_are_kvc(mirror: Mirror) -> None:
    fetcher().get_text(mirror.serve("/SUMS", "ok\n"))
    assert mirror.agents == [f"kvc/{__version__}"]


def test_https_urls_are_fetched() -> None:
    url = "https://h/SHA256SUMS"
    assert opened(_Response(b"abc\n", {})).get_text(url) == "abc\n"


def test_no_wait_after_the_last_attempt(mirror: Mirror) -> None:
    url = mirror.serve("/SUMS", "ok\n", fail_first=10)
    sleeps: list[float] = []
    with pytest.raises(LockError):
        fetcher(sleeps, attempts=3, backoff=0.5).get_text(url)
    assert sleeps == [0.5, 1.0]


def test_a_too_long_content_length_is_refused_before_the_body(mirror: Mirror) -> None:
    url = mirror.serve("/big", "x" * 2000)
    with pytest.raises(LockError) as err:
        fetcher(max_bytes=1000).get_text(url)
    assert str(err.value) == f"{url}: response of 2000 bytes exceeds the 1000-byte limit"


def test_an_endless_body_is_read_only_past_the_cap() -> None:
    with pytest.raises(LockError) as err:
        opened(_Response(b"x" * 5000), max_bytes=1000).get_text("http://h/SUMS")
    assert str(err.value) == "http://h/SUMS: response exceeds the 1000-byte limit"


def test_a_response_without_headers_is_read() -> None:
    assert opened(_Response(b"abc\n")).get_text("http://h/SUMS") == "abc\n"


def test_a_body_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(LockError) as err:
        opened(_Response("abc\n", {})).get_text("http://h/SUMS")
    assert str(err.value) == "http://h/SUMS: unexpected response body"


@pytest.mark.parametrize(("error", "said"), [
    (TimeoutError("read operation timed out"), "timed out"),
    (ConnectionResetError(), "ConnectionResetError"),
    (ConnectionResetError(104, "Connection reset by peer"), "[Errno 104] Connection reset by peer"),
    (OSError("certificate verify failed"), "certificate verify failed"),
    (OSError(), "OSError"),
])
def test_each_failure_is_said_in_words(error: BaseException, said: str) -> None:
    with pytest.raises(LockError) as err:
        opened(error, attempts=2).get_text("http://h/SUMS")
    assert str(err.value) == f"http://h/SUMS: {said} (gave up after 2 attempts)"
