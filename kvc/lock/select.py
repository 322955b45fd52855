"""Choose which checksum entry a release URL refers to.

Distributions publish dated builds side by side (CentOS Stream's
``...-9-20241118.0...`` next to ``...-9-latest...``), so a URL may carry one
``*`` in its file name and ``kvc lock`` pins the newest real build. Newest is
decided by a version-aware order because lexical order is wrong for these
names (``10`` sorts before ``9``; ``1.14`` before ``1.4``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from kvc.lock.errors import LockError
from kvc.lock.parsers import Checksum

WILDCARD = "*"

#: Words that mark a build as not final yet: it sorts before the same
#: version without the word (``1.0rc1`` < ``1.0``).
PRE_RELEASE_WORDS = frozenset({"alpha", "beta", "pre", "preview", "rc", "dev"})

_TOKEN = re.compile(r"\d+|[^\W\d_]+")
# A token's rank puts these kinds in order: pre-release word < end of name <
# other word (aliases such as "latest") < number.
_PRE, _END, _WORD, _NUMBER = 0, 1, 2, 3

VersionKey = tuple[tuple[int, int | str], ...]


@dataclass(frozen=True)
class UrlPattern:
    """A URL split where its file name starts.

    ``name`` is the file name, percent-decoded. When the name as written holds
    a ``*``, ``around`` is the decoded text before and after it. A ``%2A`` is a
    literal ``*``, as it is to the build, which downloads such a url as written
    (``"*" in url`` in ``kvc.compiler.resolve._url``).
    """

    base: str
    name: str
    tail: str = ""
    around: tuple[str, str] | None = None

    @property
    def has_wildcard(self) -> bool:
        return self.around is not None

    def with_name(self, name: str) -> str:
        """The concrete URL for an entry name, percent-encoded like a URL path."""
        return self.base + quote(name, safe="~!$&'()+,;=:@") + self.tail


@dataclass(frozen=True)
class Selection:
    """The entry chosen for a URL and the concrete URL it stands for."""

    name: str
    checksum: Checksum
    url: str


def split_url(url: str) -> UrlPattern:
    """Split off the file name and reject wildcards it cannot honour."""
    head = url.split("#", 1)[0].split("?", 1)[0]
    base, _, name = head.rpartition("/")
    if not urlsplit(url).path.strip("/") or not name:
        raise LockError(f"{url}: the URL has no file name")
    if WILDCARD in base or WILDCARD in url[len(head) :]:
        raise LockError(f"{url}: '*' is only allowed in the file name")
    if name.count(WILDCARD) > 1:
        raise LockError(f"{url}: at most one '*' is allowed in the file name")
    before, star, after = name.partition(WILDCARD)
    around = (unquote(before), unquote(after)) if star else None
    return UrlPattern(base + "/", unquote(name), url[len(head) :], around)


def version_key(text: str) -> VersionKey:
    """Sort key that orders build names the way a person reads versions."""
    key: list[tuple[int, int | str]] = []
    for token in _TOKEN.findall(text.lower()):
        if token.isdigit():
            key.append((_NUMBER, int(token)))
        elif token in PRE_RELEASE_WORDS:
            key.append((_PRE, token))
        else:
            key.append((_WORD, token))
    key.append((_END, 0))
    return tuple(key)


def newest(candidates: Mapping[str, str]) -> str:
    """Pick the key whose varying part (the value) is newest.

    A part without any digit is an alias (``latest``, ``current``): only
    chosen when no numbered build exists, since aliases move under the pin.
    Equal versions fall back to the name so the choice is deterministic.
    """
    if not candidates:
        raise LockError("no candidates")
    return max(
        candidates,
        key=lambda name: (_has_digit(candidates[name]), version_key(candidates[name]), name),
    )


def select_entry(
    url: str, entries: Mapping[str, Checksum], *, checksum_url: str | None = None
) -> Selection:
    """Resolve ``url`` against a parsed checksum file."""
    pattern = split_url(url)
    by_name = _index_by_file_name(entries)
    if pattern.around is not None:
        name = _newest_match(pattern.around, pattern.name, by_name)
        return Selection(name, by_name[name], pattern.with_name(name))
    name = _exact_match(pattern.name, by_name, checksum_url)
    return Selection(name, by_name[name], url)


def _index_by_file_name(entries: Mapping[str, Checksum]) -> dict[str, Checksum]:
    """Checksum files sometimes list paths; URLs are matched on the last part."""
    index: dict[str, Checksum] = {}
    for listed, checksum in entries.items():
        name = listed.rpartition("/")[2]
        if name in index and index[name] != checksum:
            raise LockError(f"{name!r} appears twice in the checksum file with different hashes")
        index[name] = checksum
    return index


def _newest_match(around: tuple[str, str], pattern: str, by_name: Mapping[str, Checksum]) -> str:
    prefix, suffix = around
    varying = {
        name: name[len(prefix) : len(name) - len(suffix)]
        for name in by_name
        if len(name) >= len(prefix) + len(suffix)
        and name.startswith(prefix)
        and name.endswith(suffix)
    }
    if not varying:
        raise LockError(f"no entry matches {pattern!r} in the checksum file")
    return newest(varying)


def _exact_match(name: str, by_name: Mapping[str, Checksum], checksum_url: str | None) -> str:
    if name in by_name:
        return name
    if _is_per_file_checksum(name, checksum_url) and len(by_name) == 1:
        # openSUSE's per-file .sha256 for an alias names the dated build it
        # points to; the one digest in the file is still the alias's content.
        return next(iter(by_name))
    raise LockError(f"no entry for {name!r} in the checksum file")


def _is_per_file_checksum(name: str, checksum_url: str | None) -> bool:
    if checksum_url is None:
        return False
    checksum_name = unquote(urlsplit(checksum_url).path.rpartition("/")[2])
    return checksum_name.startswith(name + ".")


def _has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)
