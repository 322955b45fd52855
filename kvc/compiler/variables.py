"""User ``vars``: expanded against the built-in names and each other.

Vars may refer to other vars in any order, so they are expanded until nothing
changes; whatever is left either uses an unknown or empty name, or sits on a
cycle, which is named step by step so the user can see where to cut it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kvc.compiler.templates import TemplateError, expand, parse


@dataclass(frozen=True, slots=True)
class VarProblem:
    """Why var ``name`` cannot be expanded; ``offset`` is a character in its template."""

    name: str
    message: str
    kind: str
    offset: int


def expand_vars(builtins: Mapping[str, str], raw: Mapping[str, str],
                where: str) -> tuple[dict[str, str], list[VarProblem]]:
    """Every var expanded, or the problems of those that cannot be (``where`` names
    the image in messages)."""
    names = dict(builtins)
    pending = dict(raw)
    while pending:
        done = {}
        for name, value in pending.items():
            try:  # a var still pending is unknown to `names`: try again next round
                done[name] = expand(value, names)
            except TemplateError:
                continue
        if not done:
            break
        names.update(done)
        pending = {k: v for k, v in pending.items() if k not in done}
    return names, [_problem(name, raw, names, pending, where) for name in pending]


def _problem(name: str, raw: Mapping[str, str], names: Mapping[str, str],
             pending: Mapping[str, str], where: str) -> VarProblem:
    chain = _chain(name, raw, pending)
    if chain is not None:
        return VarProblem(name, _cycle_message(name, chain), "vars", chain[0][1])
    try:
        expand(raw[name], {**names, **raw}, where)
    except TemplateError as exc:
        return VarProblem(name, exc.message, exc.kind, exc.offset)
    raise AssertionError(f"var {name!r} expands yet was left pending")  # pragma: no cover


def _chain(name: str, raw: Mapping[str, str],
           pending: Mapping[str, str]) -> list[tuple[str, int]] | None:
    """Follow unresolved references from ``name`` until one repeats: the path to
    (or around) a cycle, as (var, offset of its placeholder) steps; None when
    ``name`` fails for another reason (an unknown or empty name)."""
    chain: list[tuple[str, int]] = []
    seen = [name]
    current = name
    while True:
        try:
            refs = [p for p in parse(raw[current]) if isinstance(p, tuple) and p[0] in pending]
        except TemplateError:
            return None
        if not refs:
            return None
        chain.append(refs[0])
        current = refs[0][0]
        if current in seen:
            return chain
        seen.append(current)


def _cycle_message(name: str, chain: list[tuple[str, int]]) -> str:
    path = " -> ".join(f"'{step}'" for step in [name, *(var for var, _ in chain)])
    if chain[-1][0] == name:
        return f"vars entry '{name}' refers to itself: {path}"
    return f"vars entry '{name}' depends on a cycle of vars: {path}"
