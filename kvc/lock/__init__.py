"""Pin upstream image checksums into the spec (``kvc lock``).

The CLI needs :func:`lock_text` with an :class:`HttpFetcher`, and prints the
returned :class:`LockReport`; everything else is exposed for tests and reuse.
"""

from __future__ import annotations

from kvc.lock.core import LockReport, LockTarget, Outcome, Status, lock_text, resolve
from kvc.lock.errors import LockError
from kvc.lock.fetch import Fetcher, HttpFetcher
from kvc.lock.parsers import Checksum, parse_checksums
from kvc.lock.rewrite import Pin, apply_pins
from kvc.lock.select import Selection, select_entry, version_key

__all__ = [
    "Checksum",
    "Fetcher",
    "HttpFetcher",
    "LockError",
    "LockReport",
    "LockTarget",
    "Outcome",
    "Pin",
    "Selection",
    "Status",
    "apply_pins",
    "lock_text",
    "parse_checksums",
    "resolve",
    "select_entry",
    "version_key",
]
