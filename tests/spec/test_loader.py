"""Loading keeps the position of every key and value, and refuses hostile input."""

from __future__ import annotations

import warnings

import pytest

from kvc.spec.diagnostics import Diagnostic, Position, SpecError, render
from kvc.spec.loader import load_bytes, load_text

TEXT = 'kvc: 1\nflavors:\n  debian:\n    url: "https://x/{arch}"\n    tags: [a,  b]\n'


def test_positions_of_keys_values_and_list_items() -> None:
    doc = load_text(TEXT, "k.yaml")
    assert doc.keys[("flavors", "debian", "url")] == Position("k.yaml", 4, 5)
    assert doc.values[("flavors", "debian", "url")] == Position("k.yaml", 4, 10)
    assert doc.values[("flavors", "debian", "tags", 1)] == Position("k.yaml", 5, 16)


def test_char_pos_skips_the_opening_quote() -> None:
    doc = load_text(TEXT, "k.yaml")
    assert doc.char_pos(("flavors", "debian", "url"), 10) == Position("k.yaml", 4, 21)
    assert TEXT.splitlines()[3][20] == "{"


def test_pos_falls_back_to_the_nearest_parent() -> None:
    doc = load_text(TEXT, "k.yaml")
    assert doc.pos(("flavors", "debian", "missing", 3)) == Position("k.yaml", 3, 3)


def test_byte_order_mark_is_ignored() -> None:
    assert load_bytes(b"\xef\xbb\xbfkvc: 1\n", "k.yaml").data == {"kvc": 1}


def test_non_string_keys_are_rejected_at_their_position() -> None:
    with pytest.raises(SpecError) as caught:
        load_text("kvc: 1\nvars:\n  1: x\n", "k.yaml")
    assert [d.headline() for d in caught.value.diagnostics] == [
        "k.yaml:3:3: keys must be strings, not number [type]"]


def test_render_shows_the_line_and_a_caret_under_the_column() -> None:
    diag = Diagnostic(Position("k.yaml", 4, 10), "bad", "value")
    assert render([diag], {"k.yaml": TEXT}) == (
        'k.yaml:4:10: bad [value]\n    4 |     url: "https://x/{arch}"\n'
        "                 ^\n")


def test_spec_errors_are_sorted_and_deduplicated() -> None:
    late = Diagnostic(Position("k.yaml", 9, 1), "late", "x")
    early = Diagnostic(Position("k.yaml", 2, 5), "early", "x")
    assert SpecError([late, early, late]).diagnostics == (early, late)


# --- YAML that ruamel loads into its own types (each crashed or misread before) --------


def test_merged_keys_load_and_point_at_the_mapping_they_came_from() -> None:
    doc = load_text("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n", "k.yaml")
    assert doc.data["m"] == {"y": 2, "x": 1}
    assert doc.keys[("m", "x")] == Position("k.yaml", 1, 11)
    assert doc.keys[("m", "y")] == Position("k.yaml", 4, 3)


def test_tagged_collections_load_with_their_own_position_for_each_item() -> None:
    doc = load_text("o: !!omap [{a: 1}, {b: 2}]\ns: !local [1, 2]\n", "k.yaml")
    assert doc.data == {"o": {"a": 1, "b": 2}, "s": [1, 2]}
    assert doc.keys[("o", "b")] == doc.values[("o",)] == Position("k.yaml", 1, 4)
    assert doc.values[("s", 1)] == doc.values[("s",)] == Position("k.yaml", 2, 4)


def test_a_value_its_tag_cannot_read_is_a_positioned_error() -> None:
    with pytest.raises(SpecError) as caught:
        load_text("kvc: 1\nb: !!bool maybe\n", "k.yaml")
    assert [d.headline() for d in caught.value.diagnostics] == [
        "k.yaml:1:1: YAML error: 'maybe' is not a valid value for its tag [syntax]"]


def test_an_anchored_boolean_stays_a_boolean() -> None:
    data = load_text("a: &on true\nb: *on\nc: &off false\n", "k.yaml").data
    assert data == {"a": True, "b": True, "c": False}
    assert all(type(value) is bool for value in data.values())


def test_an_explicit_str_tag_gives_the_string_in_its_quoting() -> None:
    doc = load_text("v: !!str 3\nq: !!str '3'\n!!str 1: x\n", "k.yaml")
    assert doc.data == {"v": "3", "q": "3", "1": "x"}
    assert (doc.string_offsets[("v",)], doc.string_offsets[("q",)]) == (0, 1)


def test_other_tagged_scalars_are_opaque_and_name_their_tag() -> None:
    assert repr(load_text("v: !local 3\n", "k.yaml").data["v"]) == "<value tagged !local>"


def test_a_redefined_anchor_prints_no_python_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_text("x: &a 1\ny: &a 2\nz: *a\n", "k.yaml").data == {"x": 1, "y": 2, "z": 2}


def test_a_complex_key_is_named_as_users_write_it() -> None:
    with pytest.raises(SpecError) as caught:
        load_text("? [a]\n: 1\n", "k.yaml")
    assert [d.headline() for d in caught.value.diagnostics] == [
        "k.yaml:1:3: keys must be strings, not list [type]"]
