"""The subset of GitHub Actions expressions kvc emits, evaluated strictly.

Literals, context paths, ==, !=, !, &&, ||, parentheses, contains() and the
status functions. Anything else (another function, an unknown context or key)
raises RehearsalError: a construct the rehearsal cannot evaluate must never
be silently taken as true or false.
Semantics follow GitHub's expression docs: strings compare case-insensitively,
mixed types compare as numbers, and falsy is false, 0, "" and null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.rehearsal.world import RehearsalError

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!().,])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
STATUS = ("always", "success", "failure", "cancelled")


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RehearsalError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Evaluator:
    """Evaluate one expression against contexts and a status function."""

    def __init__(self, contexts: Mapping[str, Any], status: Callable[[str], bool]) -> None:
        self.contexts = contexts
        self.status = status
        self.used_status = False

    def evaluate(self, text: str) -> Any:
        self.toks = tokens(text)
        self.pos = 0
        value = self.or_()
        if self.pos != len(self.toks):
            raise RehearsalError(f"trailing input in expression {text!r}")
        return value

    def peek(self) -> str | None:
        return self.toks[self.pos][1] if self.pos < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.toks):
            raise RehearsalError("expression ends too early")
        self.pos += 1
        return self.toks[self.pos - 1]

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.unary()
        while self.peek() == "&&":
            self.take()
            right = self.unary()
            value = right if truthy(value) else value
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        left = self.primary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            equal = loose_equal(left, self.primary())
            return equal if op == "==" else not equal
        return left

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            if self.take()[1] != ")":
                raise RehearsalError("missing ')' in expression")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind != "name":
            raise RehearsalError(f"unexpected {text!r} in expression")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == "(":
            return self.call(text)
        return self.path(text)

    def call(self, name: str) -> Any:
        self.take()
        args: list[Any] = []
        while self.peek() != ")":
            args.append(self.or_())
            if self.peek() == ",":
                self.take()
        self.take()
        if name in FUNCTIONS:
            return FUNCTIONS[name](*args)
        if args or name not in STATUS:
            raise RehearsalError(f"function {name}() is not supported by the rehearsal")
        self.used_status = True
        return self.status(name)

    def path(self, name: str) -> Any:
        if name not in self.contexts:
            raise RehearsalError(f"context {name!r} is not supported by the rehearsal")
        value: Any = self.contexts[name]
        where = name
        while self.peek() == ".":
            self.take()
            key = self.take()[1]
            where += "." + key
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise RehearsalError(f"{where}: not an object")
            if key not in value and not getattr(value, "open", False):
                raise RehearsalError(f"{where} is not known to the rehearsal")
            value = value.get(key)
        return value


def contains(search: Any, item: Any) -> bool:
    """GitHub's contains(): an array element, or a case-insensitive substring."""
    if isinstance(search, list):
        return any(loose_equal(v, item) for v in search)
    return text(item).casefold() in text(search).casefold()


FUNCTIONS: dict[str, Callable[..., Any]] = {"contains": contains}


class Open(dict[str, Any]):
    """A context whose missing keys are null (secrets, env, step outputs)."""

    open = True


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (False, 0, "", None)


def number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    try:
        return float(value.strip()) if value.strip() else 0.0
    except ValueError:
        return math.nan


def loose_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b):
        return bool(a == b)
    return number(a) == number(b)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


INTERP = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value: str, evaluator: Evaluator) -> str:
    return INTERP.sub(lambda m: text(evaluator.evaluate(m.group(1))), value)


def condition(value: Any, evaluator: Evaluator) -> bool:
    """An `if:` value: `${{ }}` optional; success() is implied without a status call."""
    if isinstance(value, bool):
        source = "true" if value else "false"
    else:
        source = str(value).strip()
        m = re.fullmatch(r"\$\{\{(.*)\}\}", source, re.S)
        source = m.group(1) if m else source
    evaluator.used_status = False
    result = truthy(evaluator.evaluate(source))
    if not evaluator.used_status:
        return result and evaluator.status("success")
    return result
