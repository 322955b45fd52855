"""Where and why the YAML library failed, for failures it does not word itself.

ruamel's constructors index, dereference and assert what they assume of their
input (`!!int 0x`, `!!float 1ee`, `!!bool maybe`, a mapping that merges itself),
and its scanner converts `\\U` escapes with `chr()`: those failures surface as
Python exceptions in Python's words ("string index out of range") and with no
position. The node being built is still a local of the constructor frame that
failed, so its start mark gives the position and its tag and text the words;
nothing is added to the success path (the parser's recursion depth included).
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import Node, ScalarNode

_ESCAPE = re.compile(r"\\U([0-9A-Fa-f]{8})")
_KINDS = {"int": "integer", "float": "number", "bool": "boolean",
          "timestamp": "date or time", "null": "null", "binary": "base64 value"}
_SHOWN = 40
UNBUILDABLE = "the YAML library cannot build this document"


def explain(exc: BaseException, text: str) -> tuple[int, int, str]:
    """(line, column, message) for a failure that is not a ruamel YAMLError with a mark."""
    if _in_scanner(exc.__traceback__):
        escape = _bad_escape(text)
        if escape is not None:
            return escape
    node, key = _failing_node(exc.__traceback__)
    if node is None:
        said = str(exc).splitlines()
        worded = isinstance(exc, (AssertionError, YAMLError))  # `%YAML 1.3`: the version
        return 1, 1, said[0] if said and worded else UNBUILDABLE
    if key is not None:  # the mapping failed on one of its own keys
        return _at(key, _key_message(node, key))
    return _at(node, _node_message(node))


def _at(node: Node, message: str) -> tuple[int, int, str]:
    return node.start_mark.line + 1, node.start_mark.column + 1, message


def _frames(tb: TracebackType | None) -> list[TracebackType]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def _in_scanner(tb: TracebackType | None) -> bool:
    return any(f.tb_frame.f_code.co_filename.endswith("scanner.py") for f in _frames(tb))


def _failing_node(tb: TracebackType | None) -> tuple[Node | None, Node | None]:
    """The innermost node a frame of the failure was building, and the key of it that
    frame was at (ruamel's mapping constructors name it `key_node`), if any."""
    for frame in reversed(_frames(tb)):
        local = frame.tb_frame.f_locals
        node: Any = local.get("node")
        if isinstance(node, Node) and node.start_mark is not None:
            key: Any = local.get("key_node")
            return node, key if isinstance(key, Node) and key.start_mark is not None else None
    return None, None


def _bad_escape(text: str) -> tuple[int, int, str] | None:
    for found in _ESCAPE.finditer(text):
        if int(found.group(1), 16) > 0x10FFFF:
            start = found.start()
            line = text.count("\n", 0, start) + 1
            col = start - (text.rfind("\n", 0, start) + 1) + 1
            return line, col, (f"'{found.group(0)}' names no character (the largest is "
                               "'\\U0010FFFF')")
    return None


def _node_message(node: Node) -> str:
    tag = str(node.tag).rpartition(":")[2]
    if isinstance(node, ScalarNode):
        return f"'{_shown(str(node.value))}' is not a valid {_KINDS.get(tag, '!!' + tag)}"
    if tag == "map":
        return "this mapping cannot be built: does it merge itself ('<<' of its own anchor)?"
    return f"this !!{tag} cannot be built"


def _key_message(node: Node, key: Node) -> str:
    if isinstance(key, ScalarNode):  # hashable: ruamel asserted the keys are distinct
        tag = str(node.tag).rpartition(":")[2]
        return f"key '{_shown(str(key.value))}' is repeated in this !!{tag}"
    return "a list or a mapping cannot be a key here"


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
