"""Where and why the YAML library failed, for failures it does not word itself.

ruamel's constructors index, dereference and assert what they assume of their
input (`!!int 0x`, `!!float 1ee`, `!!bool maybe`, a mapping that merges itself),
and its scanner converts `\\U` escapes with `chr()`: those failures surface as
Python exceptions in Python's words ("string index out of range") and with no
position. The constructor frame that failed still holds the node it was
building (`node`, and `key_node` in a mapping's loop), and the scanner frame the
start of the quoted scalar it was reading: their marks give the position, their
tag and text the words. Nothing is added to the success path (nor to the
parser's recursion depth); if ruamel renames those locals, the failure is still a
diagnostic, at 1:1.
"""

from __future__ import annotations

import re
import sys
from types import FrameType, TracebackType
from typing import Any

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import Node, ScalarNode

_KINDS = {"int": "integer", "float": "number", "bool": "boolean",
          "timestamp": "date or time", "null": "null", "binary": "base64 value"}
_SHOWN = 40
_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks, as ruamel reads them
UNBUILDABLE = "the YAML library cannot build this document"


def explain(exc: BaseException, text: str) -> tuple[int, int, str]:
    """(line, column, message) for a failure that is not a ruamel YAMLError with a mark."""
    frames = _frames(exc.__traceback__)
    scanning = [f for f in frames if f.f_code.co_filename.endswith("scanner.py")]
    if scanning:
        return _bad_escape(scanning[-1], text) or (1, 1, UNBUILDABLE)
    building = [f for f in frames if f.f_code.co_filename.endswith("constructor.py")
                and isinstance(f.f_locals.get("node"), Node)]
    if not building:
        said = str(exc).splitlines()
        worded = isinstance(exc, (AssertionError, YAMLError))  # `%YAML 1.3`: the version
        return 1, 1, said[0] if said and worded else UNBUILDABLE
    node: Node = building[-1].f_locals["node"]
    key: Any = building[-1].f_locals.get("key_node")
    if any(f.f_code.co_name == "add_yaml_merge" for f in frames):
        return _at(node, "this mapping cannot be built: does it merge itself ('<<' of "
                         "its own anchor, or of a mapping around it)?")
    if isinstance(key, Node):  # the mapping failed on one of its own keys
        return _at(key, _key_message(node, key))
    return _at(node, _node_message(node))


def _frames(tb: TracebackType | None) -> list[FrameType]:
    out = []
    while tb is not None:
        out.append(tb.tb_frame)
        tb = tb.tb_next
    return out


def _at(node: Node, message: str) -> tuple[int, int, str]:
    return node.start_mark.line + 1, node.start_mark.column + 1, message


def _bad_escape(frame: FrameType, text: str) -> tuple[int, int, str] | None:
    """The first `\\U` escape past U+10FFFF in the double-quoted scalar the scanner
    was reading (its `start_mark` is the opening quote)."""
    start: Any = frame.f_locals.get("start_mark")
    index = getattr(start, "index", None)
    if not isinstance(index, int) or text[index:index + 1] != '"':
        return None
    at = index + 1
    while at < len(text) and text[at] != '"':
        if text[at] == "\\":
            if text[at + 1:at + 2] == "U" and _past_unicode(text[at + 2:at + 10]):
                line, col = _position(start.line, start.column, text[index:at])
                return line, col, (f"'{text[at:at + 10]}' names no character (the largest "
                                   "is '\\U0010FFFF')")
            at += 1  # the escaped character, `\\` and `\"` included
        at += 1
    return None


def _past_unicode(digits: str) -> bool:
    return (len(digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in digits)
            and int(digits, 16) > 0x10FFFF)


def _position(line: int, column: int, before: str) -> tuple[int, int]:
    """1-based line and column after `before`, which starts at 0-based (line, column)."""
    breaks = list(_BREAK.finditer(before))
    if not breaks:
        return line + 1, column + len(before) + 1
    return line + len(breaks) + 1, len(before) - breaks[-1].end() + 1


def _tag(node: Node) -> str:
    """`int` for `tag:yaml.org,2002:int`: as `!!int` reads."""
    return str(node.tag).rpartition(":")[2]


def _node_message(node: Node) -> str:
    tag = _tag(node)
    if isinstance(node, ScalarNode):
        value = str(node.value)
        if tag == "int" and sum(c.isdigit() for c in value) > sys.get_int_max_str_digits():
            return (f"'{_shown(value)}' has more digits than kvc reads "
                    f"({sys.get_int_max_str_digits()})")
        return f"'{_shown(value)}' is not a valid {_KINDS.get(tag, '!!' + tag)}"
    return f"this !!{tag} cannot be built"


def _key_message(node: Node, key: Node) -> str:
    if isinstance(key, ScalarNode):  # hashable: ruamel asserted the keys are distinct
        return f"key '{_shown(str(key.value))}' is repeated in this !!{_tag(node)}"
    return "a list or a mapping cannot be a key here"


def _shown(value: str) -> str:
    """One line however the value was written: line breaks and tabs as escapes."""
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
