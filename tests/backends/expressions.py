"""Small evaluators for the conditions kvc emits, and which jobs a run would start.

GitHub: the `if:` expression subset kvc writes (string literals, dotted context
names, ==, !=, !, &&, ||, parentheses, contains()), with GitHub's rules that
contains() ignores case and that a job whose needed job did not run is skipped
(a condition without a status function implies success()). CircleCI: the
logic statements kvc writes in a workflow's `when` (and, or, not, equal,
matches) over `<< pipeline.parameters.X >>` / `<< pipeline.X >>` values.

These stand in for the platforms until the rehearsal harness runs them; each
is exercised on hand-written conditions in test_plan_gating.py so that a wrong
evaluator cannot pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match is not None and match.end() > pos, f"cannot read {text[pos:]!r}"
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _GitHub:
    def __init__(self, text: str, context: Mapping[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.context = context
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        assert self.i == len(self.tokens), self.tokens[self.i:]
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            value = value and right
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() in {"==", "!="}:
            op = self.take()[1]
            right = self.unary()
            equal = str(value).lower() == str(right).lower()
            value = equal if op == "==" else not equal
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            assert self.take()[1] == ")"
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        assert kind == "name", text
        if self.peek() == "(":
            self.take()
            args = [] if self.peek() == ")" else [self.or_()]
            while self.peek() == ",":
                self.take()
                args.append(self.or_())
            assert self.take()[1] == ")"
            return self.call(text, args)
        return self.context.get(text, "")

    @staticmethod
    def call(name: str, args: list[Any]) -> Any:
        if name == "contains":
            haystack, needle = args
            return str(needle).lower() in str(haystack).lower()
        raise AssertionError(f"function {name} is not in the evaluated subset")


def github_if(condition: str, context: Mapping[str, Any]) -> bool:
    return bool(_GitHub(condition, context).parse())


def github_started(document: Mapping[str, Any], context: Mapping[str, Any],
                   outputs: Mapping[str, Mapping[str, str]]) -> set[str]:
    """The jobs of a workflow that would start: needs ran, and `if:` holds.

    ``outputs`` maps a job id to the outputs it produced (the plan's).
    """
    started: set[str] = set()
    jobs = document["jobs"]
    pending = list(jobs)
    decided: set[str] = set()
    while pending:
        for job_id in list(pending):
            needs = jobs[job_id].get("needs", [])
            needs = [needs] if isinstance(needs, str) else list(needs)
            if not set(needs) <= decided:
                continue
            pending.remove(job_id)
            decided.add(job_id)
            if not set(needs) <= started:
                continue  # an implicit success(): a skipped need skips this job
            scope = dict(context)
            for need in needs:
                for key, value in outputs.get(need, {}).items():
                    scope[f"needs.{need}.outputs.{key}"] = value
            condition = jobs[job_id].get("if")
            if condition is None or github_if(str(condition), scope):
                started.add(job_id)
    return started


def _circleci_value(text: str, parameters: Mapping[str, str]) -> str:
    def lookup(match: re.Match[str]) -> str:
        return parameters[match[1]]
    return re.sub(r"<<\s*([A-Za-z0-9_.-]+)\s*>>", lookup, text)


def circleci_when(statement: Any, values: Mapping[str, str]) -> bool:
    """A CircleCI logic statement; ``values`` maps pipeline.parameters.X etc. to strings."""
    if isinstance(statement, bool):
        return statement
    if isinstance(statement, str):
        return _circleci_value(statement, values) not in {"", "false"}
    ((op, arg),) = statement.items()
    if op == "and":
        return all(circleci_when(s, values) for s in arg)
    if op == "or":
        return any(circleci_when(s, values) for s in arg)
    if op == "not":
        return not circleci_when(arg, values)
    if op == "equal":
        first, *rest = [_circleci_value(str(a), values) for a in arg]
        return all(first == other for other in rest)
    if op == "matches":
        return re.fullmatch(arg["pattern"], _circleci_value(arg["value"], values)) is not None
    raise AssertionError(f"logic statement {op} is not in the evaluated subset")


def circleci_started(document: Mapping[str, Any], values: Mapping[str, str]) -> set[str]:
    """The jobs of every workflow whose `when` holds (no `when`: it runs)."""
    started: set[str] = set()
    for name, workflow in document["workflows"].items():
        if name == "version":  # `workflows: {version: 2}` in a version 2 config
            continue
        if "when" in workflow and not circleci_when(workflow["when"], values):
            continue
        for entry in workflow["jobs"]:
            started.add(entry if isinstance(entry, str) else next(iter(entry)))
    return started
