"""Checksum pins that can never verify, and the verify_at_build mode's rules.

A spec written without network access tends to carry made-up digests (all
zeros, one repeated digit, the digest of "" or of "a"). They pass every format
check and fail an hour into CI, so validation refuses them up front. Real
digests are uniformly random: a sha256 whose most common hex digit fills half
of it has a probability far below 2**-100, so that test has no false alarms.
"""

from __future__ import annotations

import hashlib
import string
from collections import Counter
from collections.abc import Iterator

from kvc.compiler.model import ImageBuild

#: Digests of inputs nobody builds an image from: "" and one ASCII letter.
_WELL_KNOWN = {
    hashlib.new(algo, text.encode()).hexdigest(): repr(text)
    for algo in ("sha256", "sha512")
    for text in ("", *string.ascii_letters)
}

FIX = ("pin the real digest with `kvc lock` (or `kvc lock --from FILE` with a checksum "
       "file downloaded by hand), or set `verify_at_build: true` to check against "
       "checksum_url when the build runs")


def placeholder_reason(value: str) -> str | None:
    """Why ``algo:hex`` cannot be a real digest of an image, or None."""
    hex_digits = value.partition(":")[2].lower()
    if not hex_digits:
        return None
    if hex_digits in _WELL_KNOWN:
        return f"it is the digest of the string {_WELL_KNOWN[hex_digits]}"
    digit, count = Counter(hex_digits).most_common(1)[0]
    if count == len(hex_digits):
        return f"every digit is '{digit}'"
    if 2 * count >= len(hex_digits):
        return f"'{digit}' fills {count} of its {len(hex_digits)} digits"
    return None


def placeholder_message(value: str) -> str | None:
    reason = placeholder_reason(value)
    if reason is None:
        return None
    return f"checksum '{value}' is a placeholder ({reason}) and can never verify: {FIX}"


def at_build_problems(build: ImageBuild) -> Iterator[tuple[str, str]]:
    """(key, message) for a `verify_at_build: true` that cannot work as written."""
    if build.checksum_url is None:
        yield ("verify_at_build", "verify_at_build needs a checksum_url to verify against")
    if build.insecure_skip_checksum:
        yield ("verify_at_build", "verify_at_build and insecure_skip_checksum contradict "
               "each other; keep one")
