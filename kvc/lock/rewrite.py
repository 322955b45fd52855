"""Write pins into the spec text while keeping everything else as written.

The spec is read with ruamel.yaml's round-trip loader, which records where
every key and value sits, and the pins are then spliced into the original
text at those positions. Dumping the round-trip tree instead was measured to
reflow comment columns, re-indent sequences and drop an explicit ``null`` in
the SPEC example: a lock pull request must show only the pins. Every splice
is checked by re-reading the result and comparing it to the intended data;
a mismatch is an error and the text is never returned half-edited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from kvc.lock.errors import LockError
from kvc.lock.parsers import Checksum

CHECKSUM_KEY = "release_checksum"
LOCKED_URL_KEY = "locked_url"
#: Keys after whose (one-line) value new keys are inserted, in preference order.
ANCHOR_KEYS = ("url", "release_version")
DEFAULT_INDENT = 2

_ARCH = re.compile(r"^[A-Za-z0-9_-]+$")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(frozen=True)
class Pin:
    """One value ``kvc lock`` decided to write for one image build."""

    flavor: str
    release_version: str
    arch: str
    checksum: str
    locked_url: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A pin that could not be written, and why."""

    pin: Pin
    reason: str


@dataclass(frozen=True)
class RewriteResult:
    text: str
    rejected: tuple[Rejected, ...] = ()


def apply_pins(text: str, pins: Sequence[Pin]) -> str:
    """Return ``text`` with ``pins`` applied; the input itself when nothing changes."""
    result = rewrite(text, pins)
    if result.rejected:
        raise LockError("; ".join(_describe(r) for r in result.rejected))
    return result.text


def rewrite(text: str, pins: Sequence[Pin]) -> RewriteResult:
    """Apply what can be applied and report the rest, release by release."""
    doc = _load(text)
    editor = _Editor(text)
    planner = _Planner(doc, text.splitlines(keepends=True))
    accepted: list[Pin] = []
    rejected: list[Rejected] = []
    for _, group in groupby(sorted(pins, key=_release_id), key=_release_id):
        batch = list(group)
        try:
            editor.extend(planner.plan_release(batch))
            accepted.extend(batch)
        except LockError as err:
            rejected.extend(Rejected(pin, str(err)) for pin in batch)
    new_text = editor.render()
    if new_text != text:
        _verify(doc, new_text, accepted)
    return RewriteResult(new_text if new_text != text else text, tuple(rejected))


# --- locating ---------------------------------------------------------------


def _load(text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as err:
        raise LockError(f"cannot read the spec: {err}") from None


def _release_id(pin: Pin) -> tuple[str, str]:
    return pin.flavor, pin.release_version


def find_release(doc: Any, flavor: str, release_version: str) -> Any:
    """The mapping of one release; works on round-trip and plain data alike."""
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get(flavor), dict):
        raise LockError(f"flavor {flavor!r} not found in the spec")
    releases = flavors[flavor].get("releases")
    found = [
        r
        for r in (releases if isinstance(releases, list) else [])
        if isinstance(r, dict) and str(r.get("release_version")) == release_version
    ]
    if len(found) != 1:
        problem = "not found" if not found else "listed more than once"
        raise LockError(f"release {flavor}/{release_version} {problem} in the spec")
    return found[0]


# --- planning edits ---------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    """Replace ``line[start:end]``, or with ``start`` None insert ``lines`` after it."""

    line: int
    start: int | None = None
    end: int = 0
    text: str = ""
    lines: tuple[str, ...] = ()


class _Planner:
    """Turns pins into text edits, using the loader's positions and the raw lines."""

    def __init__(self, doc: Any, lines: list[str]) -> None:
        self.doc = doc
        self.lines = lines

    def plan_release(self, pins: list[Pin]) -> list[_Edit]:
        release = find_release(self.doc, pins[0].flavor, pins[0].release_version)
        if not isinstance(release, CommentedMap) or release.fa.flow_style():
            raise LockError("the release is written in flow style {…}; write it as a block mapping")
        values = {
            CHECKSUM_KEY: {p.arch: _checksum_text(p) for p in pins},
            LOCKED_URL_KEY: {p.arch: json.dumps(p.locked_url) for p in pins if p.locked_url},
        }
        edits: list[_Edit] = []
        new_blocks: list[str] = []
        for key, by_arch in values.items():
            if not by_arch:
                continue
            if key in release:
                edits.extend(self._update_mapping(release, key, by_arch))
            else:
                new_blocks.extend(self._new_block(release, key, by_arch))
        if new_blocks:
            edits.append(_Edit(self._anchor_line(release), lines=tuple(new_blocks)))
        return edits

    def _update_mapping(
        self, release: CommentedMap, key: str, by_arch: dict[str, str]
    ) -> list[_Edit]:
        mapping = release[key]
        if mapping is None:
            line, column = release.lc.key(key)
            children = _entry_lines(column + self._indent_step(release), by_arch)
            return [self._clear_null(release, key), _Edit(line, lines=children)]
        if not isinstance(mapping, CommentedMap):
            raise LockError(f"{key} must be a mapping of arch to value")
        edits = [self._set_value(mapping, a, v) for a, v in by_arch.items() if a in mapping]
        missing = {a: v for a, v in by_arch.items() if a not in mapping}
        if missing and mapping.fa.flow_style():
            raise LockError(f"{key} is a flow mapping {{…}}; add {', '.join(missing)} by hand")
        if missing:
            edits.append(self._append_entries(mapping, missing))
        return [e for e in edits if e is not None]

    def _new_block(self, release: CommentedMap, key: str, by_arch: dict[str, str]) -> list[str]:
        column = int(release.lc.key("release_version")[1])
        children = _entry_lines(column + self._indent_step(release), by_arch)
        return [f"{' ' * column}{key}:", *children]

    def _append_entries(self, mapping: CommentedMap, by_arch: dict[str, str]) -> _Edit:
        last = list(mapping)[-1]
        line = self._one_line_value(mapping, last)
        return _Edit(line, lines=_entry_lines(int(mapping.lc.key(last)[1]), by_arch))

    def _set_value(self, mapping: CommentedMap, arch: str, new: str) -> _Edit | None:
        current = mapping[arch]
        if current is not None and json.dumps(str(current)) == new:
            return None
        if current is None:
            return self._clear_null(mapping, arch, replacement=f" {new}")
        line, column = mapping.lc.value(arch)
        end = self._scalar_end(line, column, bool(mapping.fa.flow_style()))
        return _Edit(line, start=column, end=end, text=new)

    def _clear_null(self, node: CommentedMap, key: str, replacement: str = "") -> _Edit:
        """Rewrite the value part of ``key:`` / ``key: null`` to ``replacement``."""
        line, column = node.lc.key(key)
        text = self.lines[line]
        colon = text.find(":", column)
        rest = text[colon + 1 :].rstrip("\r\n")
        value = "" if rest.lstrip().startswith("#") else rest.split(" #", 1)[0]
        if colon < 0 or value.strip() not in _NULLS:
            raise LockError(f"cannot find the empty value of {key!r}")
        return _Edit(line, start=colon + 1, end=colon + 1 + len(value), text=replacement)

    def _anchor_line(self, release: CommentedMap) -> int:
        for key in ANCHOR_KEYS:
            if key in release and isinstance(release[key], str):
                return self._one_line_value(release, key)
        raise LockError("the release has no one-line 'url' or 'release_version' to insert after")

    def _one_line_value(self, mapping: CommentedMap, key: str) -> int:
        line, column = mapping.lc.value(key)
        if not isinstance(mapping[key], str) or line != mapping.lc.key(key)[0]:
            raise LockError(f"the value of {key!r} is not a one-line string")
        self._scalar_end(line, column, flow=False)
        return int(line)

    def _indent_step(self, release: CommentedMap) -> int:
        """Reuse the indentation the author chose for nested mappings."""
        for parent in (release, self.doc):
            step = _nested_step(parent)
            if step > 0:
                return step
        return DEFAULT_INDENT

    def _scalar_end(self, line: int, column: int, flow: bool) -> int:
        """End column of the one-line scalar starting at ``column``."""
        text = self.lines[line].rstrip("\r\n")
        quote = text[column : column + 1]
        if quote in ('"', "'"):
            end = _closing_quote(text, column, quote)
            if end is None:
                raise LockError("a quoted value continues over several lines")
            return end
        if not quote or quote in "!&*|>[{":
            raise LockError(f"unsupported value syntax {text[column:]!r}")
        stops = [text.find(" #", column)]
        if flow:
            stops += [text.find(",", column), text.find("}", column)]
        end = min([i for i in stops if i >= 0], default=len(text))
        # YAML's white space is only space and tab (s-white, yaml/yaml-spec@1.2.2:
        # spec/1.2.2/spec.md:2034); a no-break space at a plain value's end is part of it.
        return column + len(text[column:end].rstrip(" \t"))


def _checksum_text(pin: Pin) -> str:
    if not _ARCH.match(pin.arch):
        raise LockError(f"invalid arch {pin.arch!r}")
    return json.dumps(str(Checksum.parse(pin.checksum)))


def _entry_lines(column: int, by_arch: dict[str, str]) -> tuple[str, ...]:
    return tuple(f"{' ' * column}{arch}: {value}" for arch, value in sorted(by_arch.items()))


def _nested_step(parent: Any) -> int:
    if not isinstance(parent, CommentedMap) or parent.fa.flow_style():
        return 0
    for key, child in parent.items():
        if isinstance(child, CommentedMap) and child and not child.fa.flow_style():
            return int(child.lc.key(next(iter(child)))[1]) - int(parent.lc.key(key)[1])
    return 0


def _closing_quote(text: str, column: int, quote: str) -> int | None:
    i = column + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return None


# --- applying edits ---------------------------------------------------------


@dataclass
class _Editor:
    text: str
    edits: list[_Edit] = field(default_factory=list)

    def extend(self, edits: Iterable[_Edit]) -> None:
        self.edits.extend(edits)

    def render(self) -> str:
        if not self.edits:
            return self.text
        lines = self.text.splitlines(keepends=True)
        first = lines[0] if lines else ""
        newline = first[len(first.rstrip("\r\n")) :] or "\n"  # CRLF, LF or a lone CR
        return "".join(self._render_lines(lines, newline))

    def _render_lines(self, lines: list[str], newline: str) -> Iterator[str]:
        for index, line in enumerate(lines):
            mine = [e for e in self.edits if e.line == index]
            replaced = _replace(line, [e for e in mine if e.start is not None])
            inserts = [s for e in mine if e.start is None for s in e.lines]
            if inserts and not replaced.endswith(("\n", "\r")):
                replaced += newline
            yield replaced
            yield from (s + newline for s in inserts)


def _replace(line: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start or 0, reverse=True):
        start = edit.start or 0
        line = line[:start] + edit.text + line[edit.end :]
    return line


# --- verifying --------------------------------------------------------------


def _verify(doc: Any, new_text: str, pins: list[Pin]) -> None:
    """Re-read the result: it must equal the old data plus exactly the pins."""
    expected = _plain(doc)
    for pin in pins:
        release = find_release(expected, pin.flavor, pin.release_version)
        _put(release, CHECKSUM_KEY, pin.arch, str(Checksum.parse(pin.checksum)))
        if pin.locked_url:
            _put(release, LOCKED_URL_KEY, pin.arch, pin.locked_url)
    if _plain(_load(new_text)) != expected:
        raise LockError("internal error: rewriting the spec went wrong; the spec was not changed")


def _put(release: dict[str, Any], key: str, arch: str, value: str) -> None:
    if release.get(key) is None:
        release[key] = {}
    release[key][arch] = value


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _describe(rejected: Rejected) -> str:
    pin = rejected.pin
    return f"{pin.flavor}/{pin.release_version}/{pin.arch}: {rejected.reason}"

