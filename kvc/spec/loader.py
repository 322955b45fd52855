"""Load a spec file into plain data while remembering where every node was.

ruamel.yaml's round-trip loader keeps line/column for each key and value; we
copy the document into plain Python values (so pydantic sees ordinary types)
and keep a side table of positions keyed by the node's path. Hostile input
(huge files, alias bombs, deep nesting, bad encodings) is refused with a
positioned diagnostic instead of a hang or a traceback.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from kvc.spec import yaml_failures
from kvc.spec.diagnostics import Diagnostic, Position, SpecError

PathKey = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64
FLOW_LIMIT = 4 * MAX_DEPTH


@dataclass
class Document:
    """A loaded spec: plain data plus the positions of its keys and values."""

    file: str
    text: str
    data: Any
    keys: dict[PathKey, Position] = field(default_factory=dict)
    values: dict[PathKey, Position] = field(default_factory=dict)
    # Column offset of a string's first character relative to its value
    # position: 1 for quoted scalars, 0 for plain ones, None for block scalars.
    string_offsets: dict[PathKey, int | None] = field(default_factory=dict)

    def pos(self, path: PathKey) -> Position:
        """Best position for a path: its key, its value, else its nearest parent."""
        probe = path
        while probe:
            found = self.keys.get(probe) or self.values.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return self.values.get((), Position(self.file, 1, 1))

    def value_pos(self, path: PathKey) -> Position:
        return self.values.get(path) or self.pos(path)

    def char_pos(self, path: PathKey, index: int) -> Position:
        """Position of character ``index`` inside the string at ``path``."""
        base = self.value_pos(path)
        offset = self.string_offsets.get(path)
        if offset is None or "\n" in str(self._get(path))[:index]:
            return base
        return Position(base.file, base.line, base.col + offset + index)

    def _get(self, path: PathKey) -> Any:
        node = self.data
        for part in path:
            node = node[part]
        return node


def load_file(path: Path) -> Document:
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        where = Position(name, 1, 1)
        raise SpecError([Diagnostic(where, f"cannot read: {exc.strerror}", "io")]) from exc
    return load_bytes(raw, name)


def load_bytes(raw: bytes, name: str) -> Document:
    if len(raw) > MAX_BYTES:
        _fail(name, 1, 1, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", "too-large")
    text = _decode(raw, name)
    return load_text(text, name)


def load_text(text: str, name: str) -> Document:
    _refuse_deep_flow(text, name)
    root = _parse(text, name)
    doc = Document(file=name, text=text, data=None)
    if root is None:
        _fail(name, 1, 1, "the spec is empty; start with 'kvc: 1'", "empty")
    if not isinstance(root, CommentedMap):
        _fail(name, 1, 1, "the spec must be a mapping of keys (found a "
              f"{_kind(root)} at the top level)", "type")
    doc.values[()] = Position(name, 1, 1)
    doc.data = _Copier(doc).copy(root, ())
    return doc


def _refuse_deep_flow(text: str, name: str) -> None:
    """The YAML parser recurses per flow bracket: refuse absurd depth before it starts.

    Brackets inside quoted strings are counted too; a spec never comes close
    to the limit, so the over-count cannot reject a real one.
    """
    if text.count("[") + text.count("{") <= FLOW_LIMIT:
        return
    depth = 0
    for offset, char in enumerate(text):
        depth += (char in "[{") - (char in "]}")
        if depth > FLOW_LIMIT:
            line = text.count("\n", 0, offset) + 1
            col = offset - (text.rfind("\n", 0, offset) + 1) + 1
            _fail(name, line, col, f"nesting is deeper than {MAX_DEPTH} levels", "too-deep")


def _decode(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start]
        line = head.count(b"\n") + 1
        col = exc.start - (head.rfind(b"\n") + 1) + 1
        _fail(name, line, col, f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
              "encoding")
    return text.removeprefix("\ufeff")


def _parse(text: str, name: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            # ruamel's warnings speak to Python programmers ("include the following
            # in your code") and would print before kvc's diagnostics: a redefined
            # anchor is valid YAML (an alias means the latest one), and ruamel reads
            # a YAML 1.1 `1e3` as the float 1000.0 while warning that 1.1 wants a dot.
            warnings.simplefilter("ignore", YAMLWarning)
            return yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = _duplicate_key_name(exc)
        _fail(name, mark.line + 1, mark.column + 1, f"duplicate key {key}", "duplicate-key")
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        indent = _indentation_message(exc, text, line, col)
        if indent is not None:
            _fail(name, line, col, *indent)
        _fail(name, line, col, f"YAML syntax error: {_syntax_message(exc)}", "syntax")
    except RecursionError:
        _fail(name, 1, 1, f"nesting is deeper than {MAX_DEPTH} levels", "too-deep")
    except (YAMLError, ValueError, LookupError, AssertionError, TypeError, AttributeError,
            OverflowError) as exc:
        line, col, message = yaml_failures.explain(exc, text)
        _fail(name, line, col, f"YAML error: {message}", "syntax")


def _syntax_message(exc: MarkedYAMLError) -> str:
    """ruamel's problem plus its context ("while scanning a quoted scalar") and where
    that started: for an unclosed quote the problem is at the end of the file."""
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.context_mark
    if not exc.problem or not exc.context or mark is None or mark is exc.problem_mark:
        return problem
    return (f"{problem} ({exc.context} that starts at line {mark.line + 1}, "
            f"column {mark.column + 1})")


def _indentation_message(exc: MarkedYAMLError, text: str, line: int,
                         col: int) -> tuple[str, str] | None:
    """Say what to do for the indentation mistakes ruamel words as parser states:
    (message, kind), or None for other syntax errors."""
    problem = exc.problem or ""
    if "'\\t'" in problem:
        if text.splitlines()[line - 1][:col - 1].strip():
            return "a tab character, which YAML does not allow here; use spaces", "syntax"
        return "a tab in the indentation, which YAML does not allow; indent with spaces", "indent"
    above = _columns_above(text, line)
    # Only an error where a line starts, at a column no enclosing key starts at, is one
    # of indentation: `registry: "x" y` and a list under a mapping's key column are not.
    if (problem.startswith("expected <block end>") and above and col not in above
            and not text.splitlines()[line - 1][:col - 1].strip()):
        columns = ", ".join(str(c) for c in above)
        return (f"bad indentation: this line starts at column {col}, where no key above it "
                f"starts (keys above start at columns {columns}); indent it with spaces to "
                "line up with the keys it belongs with", "indent")
    return None


def _columns_above(text: str, line: int) -> list[int]:
    """1-based columns where the keys enclosing ``line`` start (its indentation stack)."""
    columns: set[int] = set()
    limit = None
    for source in reversed(text.splitlines()[:line - 1]):
        stripped = source.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(source) - len(stripped)
        if limit is not None and indent >= limit:
            continue
        columns.add(indent + 1)
        if stripped.startswith("- "):
            columns.add(indent + 1 + len(stripped) - len(stripped[1:].lstrip(" ")))
        limit = indent
        if indent == 0:
            break
    return sorted(columns)


def _duplicate_key_name(exc: DuplicateKeyError) -> str:
    found = re.search(r'key ("[^"]*"|\S+)', exc.problem or "")
    return found.group(1).replace('"', "'") if found else "key"


class _Copier:
    """Copies ruamel nodes to plain data, bounding node count and depth."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0

    def copy(self, node: Any, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            self._too_many(path)
        if len(path) > MAX_DEPTH:
            pos = self.doc.pos(path)
            _fail(pos.file, pos.line, pos.col, f"nesting is deeper than {MAX_DEPTH} levels",
                  "too-deep")
        if isinstance(node, CommentedMap):
            return self._mapping(node, path)
        if isinstance(node, CommentedSeq):
            return self._sequence(node, path)
        return self._scalar(node, path)

    def _too_many(self, path: PathKey) -> None:
        """Point at the value whose aliases passed the limit, not at 1:1.

        An alias refers back to an anchor defined earlier, so the first node on
        the path that sits before its parent is an alias target: its parent is
        the value that repeats it.
        """
        for depth in range(1, len(path)):
            parent, child = self.doc.values.get(path[:depth]), self.doc.values.get(
                path[:depth + 1])
            if parent is not None and child is not None and child < parent:
                pos = self.doc.value_pos(path[:depth])
                name = next(str(p) for p in reversed(path[:depth]) if isinstance(p, str))
                _fail(pos.file, pos.line, pos.col, f"'{name}' expands to more than "
                      f"{MAX_NODES} nodes through aliases (alias bomb?)", "too-large")
        pos = self.doc.value_pos(path)
        _fail(pos.file, pos.line, pos.col, f"the document has more than {MAX_NODES} nodes",
              "too-large")

    def _mapping(self, node: CommentedMap, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            kpos, vpos = self._entry_pos(node, key, path)
            key = _plain_string(key)  # noqa: PLW2901 - `!!str 1: x` has the key "1"
            if not isinstance(key, str):
                raise SpecError([Diagnostic(kpos, f"keys must be strings, not {_kind(key)}",
                                            "type")])
            if key in out:  # ruamel's own check saw `!!str name` and `name` as two keys
                _fail(kpos.file, kpos.line, kpos.col, f"duplicate key '{key}'",
                      "duplicate-key")
            child = (*path, str(key))
            self.doc.keys[child] = kpos
            self.doc.values[child] = vpos
            out[str(key)] = self.copy(value, child)
        return out

    def _entry_pos(self, node: CommentedMap, key: Any, path: PathKey,
                   ) -> tuple[Position, Position]:
        """Where a key and its value are. ruamel records them per mapping, except for
        keys a merge (`<<: *base`) brought in, which stand in the merged mapping, and
        for tagged collections such as `!!omap`, which record none: those point at the
        mapping itself."""
        entry = (node.lc.data or {}).get(key)  # nearly always: one lookup per key
        if entry is None:
            entry = _recorded(node, key, set())
        if entry is not None:
            return (Position(self.doc.file, entry[0] + 1, entry[1] + 1),
                    Position(self.doc.file, entry[2] + 1, entry[3] + 1))
        where = self.doc.value_pos(path)
        return where, where

    def _sequence(self, node: CommentedSeq, path: PathKey) -> list[Any]:
        out: list[Any] = []
        items = node.lc.data or {}  # a tagged sequence (`!local [1]`) records none
        for index, value in enumerate(node):
            child = (*path, index)
            entry = items.get(index)
            self.doc.values[child] = (Position(self.doc.file, entry[0] + 1, entry[1] + 1)
                                      if entry is not None else self.doc.value_pos(path))
            out.append(self.copy(value, child))
        return out

    def _scalar(self, node: Any, path: PathKey) -> Any:
        node = _plain_string(node)
        if isinstance(node, str):
            self.doc.string_offsets[path] = _string_offset(node)
            return str(node)
        if isinstance(node, ScalarBoolean):  # an anchored boolean (`&on true`): an int to ruamel
            return bool(node)
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, datetime.date):
            return node
        if isinstance(node, TaggedScalar):
            return _Opaque(f"value tagged {node.tag}")
        return _Opaque(type(node).__name__)


def _recorded(node: Any, key: Any, seen: set[int]) -> list[int] | None:
    """ruamel's [key line, key col, value line, value col] for ``key``: in the mapping
    itself, else in the mappings it merges (which may merge others in turn)."""
    if not isinstance(node, CommentedMap) or id(node) in seen:
        return None
    seen.add(id(node))
    entry: list[int] | None = (node.lc.data or {}).get(key)
    for merged in getattr(node, "merge", ()) if entry is None else ():
        entry = _recorded(merged[1] if isinstance(merged, tuple) else merged, key, seen)
        if entry is not None:
            break
    return entry


class _Opaque:
    """A YAML value of a type no spec key accepts (binary, sets, ...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_STR_TAG = "tag:yaml.org,2002:str"
_QUOTED = {'"': DoubleQuotedScalarString, "'": SingleQuotedScalarString,
           "|": LiteralScalarString, ">": FoldedScalarString}


def _plain_string(node: Any) -> Any:
    """`!!str 3` as the string it is (ruamel keeps an explicitly tagged scalar as a
    TaggedScalar), in the quoting style it was written in; anything else unchanged."""
    if not isinstance(node, TaggedScalar) or str(node.tag) != _STR_TAG:
        return node
    style = _QUOTED.get(node.style or "")
    return style(node.value) if style is not None else str(node.value)


def _string_offset(node: str) -> int | None:
    if isinstance(node, LiteralScalarString | FoldedScalarString):
        return None
    if isinstance(node, DoubleQuotedScalarString | SingleQuotedScalarString):
        return 1
    return 0


# Checked in order: bool before number, since True is an int in Python.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"), ((int, float), "number"), (datetime.date, "date"),
    (Mapping, "mapping"), ((list, tuple), "list"), (str, "string"), (type(None), "null"),
)


def kind_of(value: Any) -> str | None:
    """The YAML-level noun for a value, as users would name it."""
    return next((name for types, name in _KINDS if isinstance(value, types)), None)


def _kind(value: Any) -> str:
    return kind_of(value) or type(value).__name__


def _fail(file: str, line: int, col: int, message: str, kind: str) -> Any:
    raise SpecError([Diagnostic(Position(file, line, col), message, kind)])
