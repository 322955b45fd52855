"""Loading keeps the position of every key and value, and refuses hostile input."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from kvc.spec import loader
from kvc.spec.diagnostics import Diagnostic, Position, SpecError, render
from kvc.spec.loader import load_bytes, load_text

TEXT = 'kvc: 1\nflavors:\n  debian:\n    url: "https://x/{arch}"\n    tags: [a,  b]\n'


def _headlines(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_text(text, "k.yaml")
    return [d.headline() for d in caught.value.diagnostics]


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
    assert _headlines("kvc: 1\nvars:\n  1: x\n") == [
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
    assert _headlines("kvc: 1\nb: !!bool maybe\n") == [
        "k.yaml:2:4: YAML error: 'maybe' is not a valid boolean [syntax]"]


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


@pytest.mark.parametrize(("text", "data"), [
    ("x: &a 1\ny: &a 2\nz: *a\n", {"x": 1, "y": 2, "z": 2}),  # a redefined anchor
    ("%YAML 1.1\n---\nx: 1e3\n", {"x": 1000.0}),  # a YAML 1.1 float without a dot
])
def test_what_ruamel_warns_about_prints_no_python_warning(text: str, data: object) -> None:
    """ruamel's warnings speak to Python programmers ("include the following in your
    code"), and would print before kvc's own diagnostics."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_text(text, "k.yaml").data == data


def test_a_warning_that_is_not_the_yaml_library_s_still_shows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ruamel's own warnings are silenced: one from anything else (a dependency's
    deprecation, say) stays visible to whoever maintains kvc."""
    load = loader.YAML.load

    def warning_load(self: Any, stream: Any) -> Any:
        warnings.warn("not ruamel's", DeprecationWarning, stacklevel=1)
        return load(self, stream)

    monkeypatch.setattr(loader.YAML, "load", warning_load)
    with pytest.warns(DeprecationWarning, match="not ruamel's"):
        load_text("x: 1\n", "k.yaml")


def test_a_complex_key_is_named_as_users_write_it() -> None:
    assert _headlines("? [a]\n: 1\n") == [
        "k.yaml:1:3: keys must be strings, not list [type]"]


# From the surviving mutants of loader.py (docs/mutation/spec.md).


def test_a_syntax_error_with_only_a_context_says_that_context_where_it_starts() -> None:
    """ruamel words this block-scalar error as a context without a problem."""
    assert _headlines("kvc: 1\nx: |\n  \n    \n  a\n") == [
        "k.yaml:5:3: YAML syntax error: more indented follow up line than first in a block "
        "scalar [syntax]"]


def test_a_top_level_value_of_no_yaml_kind_is_named_by_its_type() -> None:
    (headline,) = _headlines("!!binary aGVsbG8=\n")
    assert headline.startswith("k.yaml:1:1: the spec must be a mapping of keys (found a ")
    assert headline.endswith(" at the top level) [type]")
    assert "bytes" in headline and "NoneType" not in headline


def test_a_key_starting_with_a_non_breaking_space_counts_from_the_line_start() -> None:
    """Only spaces indent: U+00A0 is part of the key, so its column is the key's."""
    text = "kvc: 1\nflavors:\n  \u00a0debian:\n    a: 1\n   b: 2\n"
    (headline,) = _headlines(text)
    assert "(keys above start at columns 1, 3, 5)" in headline


def test_a_spec_error_reads_as_its_headlines_one_per_line() -> None:
    """What a caller of the Python API sees in a traceback or a log."""
    late = Diagnostic(Position("k.yaml", 9, 1), "late", "x")
    early = Diagnostic(Position("k.yaml", 2, 5), "early", "x")
    assert str(SpecError([late, early])) == "k.yaml:2:5: early [x]\nk.yaml:9:1: late [x]"


def test_render_cuts_a_source_line_only_past_200_characters() -> None:
    text = "a: " + "x" * 197 + "\nb: " + "y" * 198 + "\n"
    diags = [Diagnostic(Position("k.yaml", 1, 1), "m", "k"),
             Diagnostic(Position("k.yaml", 2, 1), "m", "k")]
    shown = render(diags, {"k.yaml": text}).splitlines()
    assert shown[1] == "    1 | a: " + "x" * 197
    assert shown[4] == "    2 | b: " + "y" * 197 + "…"


def test_a_document_past_the_node_limit_without_aliases_is_refused_as_too_large(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain limit (no alias to blame), at a size a fast test can parse."""
    monkeypatch.setattr(loader, "MAX_NODES", 20)
    assert _headlines("kvc: 1\nx: [" + "1, " * 30 + "1]\n") == [
        "k.yaml:2:56: the document has more than 20 nodes [too-large]"]


def test_a_tagged_list_past_the_node_limit_is_no_alias_bomb(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A tagged list records no item positions (each item stands at the list): an item
    at its parent's position is not one that sits before it, as an alias target does."""
    monkeypatch.setattr(loader, "MAX_NODES", 20)
    assert _headlines("kvc: 1\nx: !local [" + "1, " * 30 + "1]\n") == [
        "k.yaml:2:4: the document has more than 20 nodes [too-large]"]


def test_flow_nesting_past_the_limit_is_refused_at_the_bracket_before_parsing() -> None:
    assert _headlines("kvc: 1\nx:\n  " + "[" * 300 + "]" * 300 + "\n") == [
        "k.yaml:3:259: nesting is deeper than 64 levels [too-deep]"]
    assert _headlines("kvc: 1\nx:\n" + "  [\n" * 300 + "]" * 300 + "\n") == [
        "k.yaml:259:3: nesting is deeper than 64 levels [too-deep]"]
    assert _headlines("\n" + "[" * 300 + "]" * 300 + "\n") == [
        "k.yaml:2:257: nesting is deeper than 64 levels [too-deep]"]
    assert _headlines("x: " + "{a: " * 300 + "}" * 300 + "\n") == [
        "k.yaml:1:1028: nesting is deeper than 64 levels [too-deep]"]
    assert _headlines("x: " + "[X, " * 300 + "]" * 300 + "\n") == [
        "k.yaml:1:1028: nesting is deeper than 64 levels [too-deep]"]


def test_many_brackets_that_nest_shallowly_are_loaded() -> None:
    doc = load_text("kvc: 1\nx: [" + "[], " * 300 + "[]]\ny: " + "X" * 300 + "\n", "k.yaml")
    assert doc.data["x"] == [[]] * 301


def test_the_size_limit_refuses_one_byte_more_before_decoding() -> None:
    """At the limit the file is read (here: refused as not UTF-8), one byte past it not."""
    with pytest.raises(SpecError) as at_limit:
        load_bytes(b"\xff" + b" " * (loader.MAX_BYTES - 1), "k.yaml")
    assert [d.kind for d in at_limit.value.diagnostics] == ["encoding"]
    with pytest.raises(SpecError) as past:
        load_bytes(b"\xff" + b" " * loader.MAX_BYTES, "k.yaml")
    assert [d.headline() for d in past.value.diagnostics] == [
        "k.yaml:1:1: file is larger than 4 MiB [too-large]"]


def test_a_byte_that_is_not_utf8_is_named_at_its_line_and_column() -> None:
    with pytest.raises(SpecError) as caught:
        load_bytes(b"kvc: 1\n  x: \xc3\x28\n", "k.yaml")
    assert [d.headline() for d in caught.value.diagnostics] == [
        "k.yaml:2:6: the file is not valid UTF-8 (byte 0xc3) [encoding]"]


def test_bytes_are_loaded_under_their_name_and_without_a_byte_order_mark() -> None:
    """The text kept is what excerpts show: no invisible BOM before line 1."""
    doc = load_bytes(b"\xef\xbb\xbfkvc: 1\n", "k.yaml")
    assert (doc.file, doc.text) == ("k.yaml", "kvc: 1\n")
    with pytest.raises(SpecError) as caught:
        load_bytes(b"kvc: [\n", "k.yaml")
    assert [d.pos.file for d in caught.value.diagnostics] == ["k.yaml"]


def test_pos_of_an_unknown_path_is_its_nearest_known_parent_not_a_grandparent() -> None:
    doc = load_text(TEXT, "k.yaml")
    assert doc.pos(("flavors", "debian", "missing")) == Position("k.yaml", 3, 3)
    assert doc.value_pos(("flavors", "debian", "missing")) == Position("k.yaml", 3, 3)


def test_a_value_its_tag_cannot_convert_is_a_positioned_yaml_error() -> None:
    """ruamel raises a bare ValueError here, without a position: the node it was
    building gives one."""
    assert _headlines("kvc: 1\nx: !!float abc\n") == [
        "k.yaml:2:4: YAML error: 'abc' is not a valid number [syntax]"]


def test_block_nesting_the_parser_cannot_follow_is_refused_as_too_deep() -> None:
    """The parser recurses per level and gives up before kvc's own depth check."""
    text = "kvc: 1\n" + "".join("  " * depth + "a:\n" for depth in range(400))
    with pytest.raises(SpecError) as caught:
        load_text(text, "k.yaml")
    assert [(d.pos.file, d.message, d.kind) for d in caught.value.diagnostics] == [
        ("k.yaml", "nesting is deeper than 64 levels", "too-deep")]


# --- from the review of the loader fixes above ------------------------------------------


def test_a_str_tagged_key_repeating_a_plain_one_is_a_duplicate() -> None:
    assert _headlines("kvc: 1\nregistry: a\n!!str registry: b\n") == [
        "k.yaml:3:1: duplicate key 'registry' [duplicate-key]"]


def test_keys_merged_through_a_merge_point_at_where_they_are_written() -> None:
    doc = load_text("z: &z {registry: 1}\ny: &y {<<: *z}\nx:\n  <<: *y\n", "k.yaml")
    assert doc.data["x"] == {"registry": 1}
    assert (doc.keys[("x", "registry")], doc.values[("x", "registry")]) == (
        Position("k.yaml", 1, 8), Position("k.yaml", 1, 18))


def test_a_key_from_a_later_mapping_of_a_merge_list_points_at_where_it_is_written() -> None:
    doc = load_text("a: &a {x: 1}\nb: &b {y: 2, x: 3}\nm: {<<: [*a, *b]}\n", "k.yaml")
    assert doc.data["m"] == {"x": 1, "y": 2}
    assert doc.keys[("m", "y")] == Position("k.yaml", 2, 8)
    # a key both define: the first mapping of the list wins, its position too
    assert (doc.keys[("m", "x")], doc.values[("m", "x")]) == (
        Position("k.yaml", 1, 8), Position("k.yaml", 1, 11))


def test_a_merged_key_its_mapping_overrides_points_at_the_override() -> None:
    """The value in effect is the nearest one: `m` sets x over the x it merges."""
    doc = load_text("b: &b {x: 1}\nm: &m {<<: *b, x: 2}\nt: {<<: *m}\n", "k.yaml")
    assert doc.data["t"] == {"x": 2}
    assert doc.values[("t", "x")] == Position("k.yaml", 2, 19)


def test_each_merged_mapping_is_searched_once_however_often_it_is_merged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mappings that each merge the one before twice, 16 deep: a search that revisited
    them would look 2**16 times for `z` (a few more lines: for ever)."""
    calls = 0
    search = loader._recorded

    def counted(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return search(*args)

    monkeypatch.setattr(loader, "_recorded", counted)
    chain = [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}]}}" for i in range(1, 17)]
    text = "\n".join(["l0: &l0 {a: 1}", *chain, "k: &k {z: 1}", "last: {<<: [*l16, *k]}"])
    doc = load_text(text + "\n", "k.yaml")
    assert doc.keys[("last", "z")] == Position("k.yaml", 18, 8)
    assert calls < 1000


TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!!str", "!!seq",
        "!!map", "!!omap", "!!pairs", "!!set", "!!merge", "!!value", "!local", "!"]
AWKWARD = ["", "0x", "0b", "0o", "-0x", "_", "+", ":", "1:2", "1::", "1e", "1e+", ".", "0b2",
           "0o9", "0x1p", "2024-", "2024-02-30", "2024-01-01T", "2024-01-01 25:00", "~",
           "[]", "{}", "[1, 2]", "{a: 1}", "<<", "&a 1"]


PYTHON_WORDS = ("int(", "float(", "unpack", "object", "sys.", "timedelta", "index", "chr(",
                "NoneType", "literal")


def test_any_core_tag_on_any_awkward_value_is_loaded_or_a_diagnostic() -> None:
    """ruamel's constructors fail on some tagged values in ways of their own (an
    IndexError for `!!int 0x`): each is a diagnostic in the document's words at the
    value, never an internal error or Python's words."""
    for tag in [*TAGS, ""]:
        for value in [*AWKWARD, '"\\UFFFFFFFF"', '"\\U00110000"', "0x_", "._", "+_"]:
            for text in (f"k: 1\nx: {tag} {value}\n", f"k: 1\nx:\n  - {tag} {value}\n",
                         f"k: 1\n{tag} {value}: 1\n"):
                try:
                    load_text(text, "k.yaml")
                except SpecError as caught:
                    (said,) = [d.headline() for d in caught.diagnostics]
                    assert not any(word in said for word in PYTHON_WORDS), (text, said)
                    assert not said.startswith("k.yaml:1:1: YAML error"), (text, said)


UNBUILDABLE = "the YAML library cannot build this document"
MERGES_ITSELF = ("this mapping cannot be built: does it merge itself ('<<' of its own anchor, "
                 "or of a mapping around it)?")


@pytest.mark.parametrize(("text", "headline"), [
    # ruamel's own failures, Python's words and no position: the node it was building
    # gives both (an assertion with no message; a dereferenced None; an unhashable key)
    ("x: !!omap [{a: 1}, {a: 2}]\n", "1:21: YAML error: key 'a' is repeated in this !!omap"),
    ("x: !!omap [{[1]: 2}]\n", "1:13: YAML error: a list or a mapping cannot be a key here"),
    ("k: 1\n!!pairs []: 1\n", "2:1: YAML error: a list or a mapping cannot be a key here"),
    ("a: 1\nx: &r {<<: *r}\n", f"2:4: YAML error: {MERGES_ITSELF}"),
    ("x: &r\n  a: 1\n  <<: *r\n", f"1:4: YAML error: {MERGES_ITSELF}"),  # not key 'a'
    ("x: &r\n  a: 1\n  y:\n    b: 2\n    <<: *r\n", f"4:5: YAML error: {MERGES_ITSELF}"),
    ("x: !!int 0x\n", "1:4: YAML error: '0x' is not a valid integer"),  # an IndexError
    ("x:\n  - 0b_\n", "2:5: YAML error: '0b_' is not a valid integer"),  # no tag written
    ("x: !!float 1ee\n", "1:4: YAML error: '1ee' is not a valid number"),
    ("x: ._\n", "1:4: YAML error: '._' is not a valid number"),
    ("x: !!timestamp 2024-13-45\n", "1:4: YAML error: '2024-13-45' is not a valid date or time"),
    ("x: " + "1" * 4400 + "\n",
     f"1:4: YAML error: '{'1' * 40}…' has more digits than kvc reads (4300)"),
    ("x: !!int |\n  1\n  2\n", "1:4: YAML error: '1\\n2\\n' is not a valid integer"),
    ("%YAML 1." + "1" * 4301 + "\n---\nx: 1\n", f"1:1: YAML error: {UNBUILDABLE}"),
    ("x: 0x" + "_" * 38 + "\n", f"1:4: YAML error: '0x{'_' * 38}' is not a valid integer"),
    ("x: !!set a\n", "1:4: YAML error: 'a' is not a valid !!set"),  # a tag with no kind
    ("x: !!int a\\b\n", "1:4: YAML error: 'a\\b' is not a valid integer"),  # shown as written
    # the scanner's chr() of an escape: the escape's own position
    ('\na: 1\nx: "ab\\UFFFFFFFF"\nb: 1\nc: 2\n',
     "3:7: YAML error: '\\UFFFFFFFF' names no character (the largest is '\\U0010FFFF')"),
    ('\nx: "\\UFFFFFFFF"\n',
     "2:5: YAML error: '\\UFFFFFFFF' names no character (the largest is '\\U0010FFFF')"),
    # only an escape of a double-quoted scalar is one: not in single quotes, plain,
    # a comment or after an escaped backslash; lines end at a CR too
    ("# \\UFFFFFFFF\na: '\\UFFFFFFFF'\nb: \\UFFFFFFFF\nc: \"\\\\UFFFFFFFF\"\nd: \"\\U00110000\"\n",
     "5:5: YAML error: '\\U00110000' names no character (the largest is '\\U0010FFFF')"),
    ('x: "\\U0010FFFF\\n\\U0011ffff"\n',  # the largest character, an escape, lower case
     "1:17: YAML error: '\\U0011ffff' names no character (the largest is '\\U0010FFFF')"),
    ('x: "\\\\UFFFFFFFF \\U00110000"\n',  # an escaped backslash, then the escape
     "1:17: YAML error: '\\U00110000' names no character (the largest is '\\U0010FFFF')"),
    ('k: 1\rb: "\\U00110000"\r',
     "2:5: YAML error: '\\U00110000' names no character (the largest is '\\U0010FFFF')"),
    ('k: 1\nb: "x\n  y\\U00110000"\n',  # on the quoted scalar's second line
     "3:4: YAML error: '\\U00110000' names no character (the largest is '\\U0010FFFF')"),
    ('x: "\\U0010FFFF"\ny: "\\U00110000"\n',  # the largest one is a character
     "2:5: YAML error: '\\U00110000' names no character (the largest is '\\U0010FFFF')"),
    # no node to blame: ruamel's words, where they speak of the document
    ("%YAML 1.3\n---\nx: 1\n", "1:1: YAML error: version minor part can only be 2 or 1, "
     "got (1, 3)"),
])
def test_documents_the_yaml_library_cannot_construct_are_positioned_yaml_errors(
        text: str, headline: str) -> None:
    assert _headlines(text) == [f"k.yaml:{headline} [syntax]"]


@pytest.mark.parametrize(("text", "where"), [
    ('kvc: 1\nregistry: "x" y\n', "k.yaml:2:15"),  # mid-line: not where a line starts
    ("kvc: 1\n- a\n", "k.yaml:2:1"),  # a list at a key's own column: no indentation fault
])
def test_block_end_errors_that_are_not_indentation_keep_the_syntax_message(
        text: str, where: str) -> None:
    (headline,) = _headlines(text)
    assert headline.startswith(f"{where}: YAML syntax error: expected <block end>")
    assert headline.endswith("[syntax]")
