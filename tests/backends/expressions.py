"""Small evaluators for the conditions kvc emits, and which jobs a run would start.

GitHub: `if:` conditions through the rehearsal's evaluator (tests/rehearsal/expr.py),
with GitHub's rule that a job whose needed job did not run is skipped. CircleCI: the
logic statements kvc writes in a workflow's `when` (and, or, not, equal,
matches) over `<< pipeline.parameters.X >>` / `<< pipeline.X >>` values.

They decide which jobs start without running any; each
is exercised on hand-written conditions in test_plan_gating.py so that a wrong
evaluator cannot pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.rehearsal.expr import Evaluator, Open
from tests.rehearsal.expr import condition as _condition


def _nested(context: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted names (``needs.plan.outputs.images``) as the nested contexts GitHub has."""
    tree: dict[str, Any] = {}
    for dotted, value in context.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, Open())
        node[leaf] = value
    return tree


def github_if(condition: str, context: Mapping[str, Any]) -> bool:
    """An `if:` as GitHub reads it, for a job or step whose needs all succeeded.

    The rehearsal's strict evaluator: a context the test did not give, or a
    function outside kvc's subset, is an error instead of a silent "".
    """
    evaluator = Evaluator(_nested(context), lambda status: status in ("success", "always"))
    return _condition(condition, evaluator)


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
