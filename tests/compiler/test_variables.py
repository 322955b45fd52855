"""vars expansion on its own: order-independent, cycles named, unknowns located."""

from __future__ import annotations

from kvc.compiler.variables import expand_vars

BUILTINS = {"flavor": "debian", "arch": "amd64", "release_name": ""}


def test_vars_may_refer_to_each_other_in_any_order() -> None:
    names, problems = expand_vars(BUILTINS, {
        "url": "{mirror}/{flavor}-{arch}", "mirror": "https://{host}", "host": "example.org"},
        "debian/12")
    assert problems == []
    assert names["url"] == "https://example.org/debian-amd64"


def test_a_cycle_is_named_from_each_member() -> None:
    _, problems = expand_vars(BUILTINS, {"a": "x{b}", "b": "{a}y", "ok": "{flavor}"},
                               "debian/12")
    assert {p.name for p in problems} == {"a", "b"}
    first = next(p for p in problems if p.name == "a")
    assert first.message == "vars entry 'a' refers to itself: 'a' -> 'b' -> 'a'"
    assert first.kind == "vars" and first.offset == 1


def test_a_var_leading_into_a_cycle_says_so() -> None:
    _, problems = expand_vars(BUILTINS, {"top": "{a}", "a": "{b}", "b": "{a}"}, "debian/12")
    top = next(p for p in problems if p.name == "top")
    assert top.message == "vars entry 'top' depends on a cycle of vars: 'top' -> 'a' -> 'b' -> 'a'"


def test_unknown_and_empty_names_are_located() -> None:
    _, problems = expand_vars(BUILTINS, {"u": "ab{nope}", "e": "{release_name}"},
                               "debian/12")
    by_name = {p.name: p for p in problems}
    assert by_name["u"].offset == 2 and "unknown placeholder '{nope}'" in by_name["u"].message
    assert by_name["e"].offset == 0
    assert by_name["e"].message == ("'{release_name}' is empty for debian/12; give that "
                                    "release a release_name")
