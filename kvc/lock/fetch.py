"""Download checksum files: the only network code in kvc.

Checksum files are small and upstream mirrors are flaky, so each request
has a timeout, transient failures are retried a bounded number of times with
exponential backoff, bodies are capped in size, and each distinct URL is
fetched at most once per run (many arches and releases share one file).
The opener and sleep are injectable so tests need neither waiting nor luck.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from typing import Any, Protocol
from urllib.parse import urlsplit

from kvc import __version__
from kvc.lock.errors import LockError

DEFAULT_TIMEOUT = 20.0
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: Real checksum files are kilobytes; a body this big is not one.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: HTTP statuses worth asking again for; every other error status is final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

Opener = Callable[[urllib.request.Request, float], Any]


class Fetcher(Protocol):
    """What the lock core needs: the text behind a URL, or a LockError."""

    def get_text(self, url: str) -> str: ...


class _Transient(Exception):
    """A failure that another attempt may not repeat."""


class HttpFetcher:
    """HTTP(S) GET with timeout, retries, size cap and a per-run cache."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        max_bytes: int = DEFAULT_MAX_BYTES,
        opener: Opener | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_bytes = max_bytes
        self._open = opener or _default_opener()
        self._sleep = sleep
        self._cache: dict[str, str | LockError] = {}

    def get_text(self, url: str) -> str:
        """Return the decoded body; failures are cached too, so they cost one try."""
        if url not in self._cache:
            try:
                self._cache[url] = self._download(url)
            except LockError as err:
                self._cache[url] = err
        result = self._cache[url]
        if isinstance(result, LockError):
            raise LockError(str(result))
        return result

    def _download(self, url: str) -> str:
        _check_scheme(url)
        last = ""
        for attempt in range(1, self._attempts + 1):
            try:
                return _decode(url, self._get_once(url))
            except _Transient as err:
                last = str(err)
            if attempt < self._attempts:
                self._sleep(min(MAX_BACKOFF, self._backoff * 2 ** (attempt - 1)))
        raise LockError(f"{url}: {last} (gave up after {self._attempts} attempts)")

    def _get_once(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": f"kvc/{__version__}"})
        try:
            with closing(self._open(request, self._timeout)) as response:
                return _read_capped(url, response, self._max_bytes)
        except urllib.error.HTTPError as err:
            err.close()
            raise _http_failure(url, err) from None
        except urllib.error.URLError as err:
            raise _Transient(f"cannot connect: {err.reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise _Transient(_describe(err)) from None
        except OSError as err:
            raise _Transient(_describe(err)) from None


def _default_opener() -> Opener:
    """urllib's opener honours proxy settings from the environment and redirects."""
    director = urllib.request.build_opener()

    def open_url(request: urllib.request.Request, timeout: float) -> Any:
        return director.open(request, timeout=timeout)

    return open_url


def _check_scheme(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise LockError(f"{url}: only http:// and https:// checksum URLs are supported")


def _read_capped(url: str, response: Any, max_bytes: int) -> bytes:
    """Refuse oversized bodies early (Content-Length) and while reading."""
    length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise LockError(f"{url}: response of {length} bytes exceeds the {max_bytes}-byte limit")
    body = response.read(max_bytes + 1)
    if not isinstance(body, bytes):
        raise LockError(f"{url}: unexpected response body")
    if len(body) > max_bytes:
        raise LockError(f"{url}: response exceeds the {max_bytes}-byte limit")
    return body


def _http_failure(url: str, err: urllib.error.HTTPError) -> Exception:
    message = f"HTTP {err.code} {err.reason}"
    if err.code in RETRY_STATUSES:
        return _Transient(message)
    return LockError(f"{url}: {message}")


def _decode(url: str, body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LockError(f"{url}: not a text file (invalid UTF-8)") from None


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__
