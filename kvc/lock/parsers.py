"""Parse the checksum files distributions publish next to their cloud images.

Upstreams disagree on the format (GNU coreutils lines, BSD ``--tag`` lines,
PGP clear-signed wrappers, one-line per-file ``.sha256`` files), so one
tolerant parser reads them all. Anything it does not understand is an error
rather than a skipped line: a pin must never come from a file we misread.
Signatures are stripped, not verified: the pin records what upstream
published, and reviewing the lock pull request is the trust step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, cast

from kvc.lock.errors import LockError

Algo = Literal["sha256", "sha512"]

#: Hex digits per algorithm; also how an untagged hash's algorithm is guessed.
HEX_LENGTHS: Mapping[Algo, int] = MappingProxyType({"sha256": 64, "sha512": 128})
_ALGO_BY_LENGTH: Mapping[int, Algo] = MappingProxyType({n: a for a, n in HEX_LENGTHS.items()})

_BSD_LINE = re.compile(r"^(?P<tag>[A-Za-z][A-Za-z0-9-]*) ?\((?P<name>.+)\) ?= ?(?P<hex>\S+)$")
_GNU_LINE = re.compile(r"^(?P<hex>[0-9A-Fa-f]+) [ *]?(?P<name>\S.*)$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_PIN = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<hex>[0-9A-Fa-f]+)$")

_PGP_MESSAGE = "-----BEGIN PGP SIGNED MESSAGE-----"
_PGP_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_PGP_END = "-----END PGP SIGNATURE-----"


@dataclass(frozen=True)
class Checksum:
    """One published digest; ``str()`` gives the spec's ``algo:hex`` form."""

    algo: Algo
    hex: str

    def __str__(self) -> str:
        return f"{self.algo}:{self.hex}"

    @classmethod
    def of(cls, algo: str, hex_digits: str) -> Checksum:
        """Validate and normalise (lower-case) so equal digests compare equal."""
        name = algo.lower()
        if name not in HEX_LENGTHS:
            raise LockError(f"unsupported checksum algorithm {algo!r} (use sha256 or sha512)")
        known = cast(Algo, name)
        if not _HEX.match(hex_digits) or len(hex_digits) != HEX_LENGTHS[known]:
            raise LockError(
                f"{known} hash must be {HEX_LENGTHS[known]} hex digits, "
                f"got {len(hex_digits)} characters"
            )
        return cls(known, hex_digits.lower())

    @classmethod
    def guess(cls, hex_digits: str) -> Checksum:
        """Untagged formats only tell the algorithm through the hash length."""
        if not _HEX.match(hex_digits):
            raise LockError(f"not a hex hash: {_clip(hex_digits)!r}")
        algo = _ALGO_BY_LENGTH.get(len(hex_digits))
        if algo is None:
            raise LockError(
                f"hash has {len(hex_digits)} hex digits; expected 64 (sha256) or 128 (sha512)"
            )
        return cls(algo, hex_digits.lower())

    @classmethod
    def parse(cls, pin: str) -> Checksum:
        """Read a spec value such as ``sha256:<hex>``."""
        match = _PIN.match(pin.strip())
        if match is None:
            raise LockError(f"checksum {_clip(pin)!r} is not of the form 'sha256:<hex>'")
        return cls.of(match["algo"], match["hex"])


def parse_checksums(text: str, *, default_name: str | None = None) -> Mapping[str, Checksum]:
    """Return file name -> checksum for every entry in a checksum file.

    ``default_name`` names the file a bare one-hash file (``HASH`` alone on
    its line, as some per-file ``.sha256`` files are) refers to.
    """
    entries: dict[str, Checksum] = {}
    for number, line in _body_lines(text):
        try:
            name, checksum = _parse_line(line, default_name)
            _add(entries, name, checksum)
        except LockError as err:
            raise LockError(f"line {number}: {err}") from None
    if not entries:
        raise LockError("no checksum entries found")
    return MappingProxyType(entries)


def _body_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, content) for lines that can hold an entry.

    Blank and ``#`` lines (Fedora's ``# FILE: N bytes``) carry nothing; PGP
    armour and its ``Hash:`` headers are not part of the signed content.
    """
    state = "body"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        state, keep = _pgp_step(state, line)
        if keep and line and not line.startswith("#"):
            yield number, _undash(line)


def _pgp_step(state: str, line: str) -> tuple[str, bool]:
    """Advance the clear-signature state machine; say whether ``line`` is content."""
    if line == _PGP_MESSAGE:
        return "headers", False
    if state == "headers":
        return ("body" if not line else "headers"), False
    if line == _PGP_SIGNATURE:
        return "signature", False
    if state == "signature":
        return ("body" if line == _PGP_END else "signature"), False
    return state, True


def _undash(line: str) -> str:
    """Clear-signed text escapes lines starting with '-' as '- -'."""
    return line[2:] if line.startswith("- ") else line


def _parse_line(line: str, default_name: str | None) -> tuple[str, Checksum]:
    bsd = _BSD_LINE.match(line)
    if bsd is not None and not _HEX.match(bsd["tag"]):
        return _clean_name(bsd["name"]), Checksum.of(bsd["tag"], bsd["hex"])
    escaped = line.startswith("\\")
    gnu = _GNU_LINE.match(line[1:] if escaped else line)
    if gnu is not None:
        name = _unescape(gnu["name"]) if escaped else gnu["name"]
        return _clean_name(name), Checksum.guess(gnu["hex"])
    if _HEX.match(line):
        if default_name is None:
            raise LockError("a bare hash without a file name")
        return default_name, Checksum.guess(line)
    raise LockError(f"not a checksum line: {_clip(line)!r}")


def _clean_name(name: str) -> str:
    """Names are matched against URLs, where a leading './' never appears."""
    cleaned = name.strip()
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if not cleaned:
        raise LockError("empty file name")
    return cleaned


def _unescape(name: str) -> str:
    """coreutils escapes backslash and newline in names and marks the line with '\\'."""
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], name)


def _add(entries: dict[str, Checksum], name: str, checksum: Checksum) -> None:
    """Keep one digest per file; a file listed with two different digests is suspect."""
    old = entries.get(name)
    if old is None or _strength(checksum) > _strength(old):
        entries[name] = checksum
    elif old.algo == checksum.algo and old.hex != checksum.hex:
        raise LockError(f"{name!r} is listed twice with different {checksum.algo} hashes")


def _strength(checksum: Checksum) -> int:
    return HEX_LENGTHS[checksum.algo]


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
