"""Emitted YAML must carry every value byte-for-byte, whatever the spec put in it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from kvc.backends import BACKENDS, yamlout
from kvc.backends.yamlout import Commented, _fast, _FastWriter, _ruamel_dump, _Unusual, dump
from kvc.commands.compile import generate
from kvc.compiler.driver import load

values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                 max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,9}", fullmatch=True), values, max_size=5))
def test_any_string_round_trips(data: dict[str, str]) -> None:
    back = YAML(typ="safe", pure=True).load(dump({"env": data}))
    assert back == {"env": data}


def test_yaml11_lookalikes_stay_strings() -> None:
    data = {"a": "yes", "b": "On", "c": "12:30", "d": "0755", "e": "1e3", "f": "null"}
    assert YAML(typ="safe", pure=True).load(dump(data)) == data
    assert "a: 'yes'" in dump(data)


def test_multiline_values_use_literal_blocks_when_exact() -> None:
    text = dump({"run": "set -e\nbash x.sh\n", "cmd": "a\nb"})
    assert "run: |\n  set -e\n  bash x.sh\n" in text
    assert "cmd: |-\n  a\n  b\n" in text


def test_indented_script_lines_stay_in_a_literal_block() -> None:
    """The run commands kvc writes (an if-block around the stage) indent their lines."""
    text = dump({"run": "if [ -f x ]; then\n  echo hit\nfi\n"})
    assert text == "run: |\n  if [ -f x ]; then\n    echo hit\n  fi\n"


@pytest.mark.parametrize("value", [
    "a \nb", "a\n\n", "a\n\nb\n", "a\n \nb", "a\n b\n", " a\nb", "a\tb\nc", "a\n\t\n",
])  # fmt: skip
def test_multiline_edge_values_read_back_exactly_as_ruamel_writes_them(value: str) -> None:
    """Where a literal block would lose or change a character (a second final newline,
    a leading space, a tab) or end a line in a space, which an editor or a
    trailing-whitespace hook would strip from the committed file, the value is quoted."""
    data = {"jobs": {"a": {"env": {"V": value}}}}
    text = dump(data)
    assert YAML(typ="safe", pure=True).load(text) == data
    assert text == _ruamel_dump(data)
    assert [line for line in text.splitlines() if line != line.rstrip()] == []


def test_version_comment_and_no_anchors() -> None:
    shared = {"x": 1}
    text = dump({"one": shared, "two": shared, "uses": Commented("a/b@" + "0" * 40, "v1.2.3")})
    assert "&" not in text and "*" not in text
    assert "uses: a/b@" + "0" * 40 + "  # v1.2.3" in text


# The fast writer must produce exactly ruamel's bytes for every shape emitters build.
_texts = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    st.text(alphabet="ab :#-'\"{}[]&*!|>%@`$,?\n\t yesnotrue0123456789.", max_size=20),
    st.sampled_from(["yes", "No", "12", "1.5", "", "~", "null", "a: b", "a #b", "x\ny\n",
                     "<<", "=", "- x", "${{ a }}", "\\", "é", "x" * 2100]),
)
_scalars = st.one_of(_texts, st.integers(), st.booleans(),
                     st.builds(Commented, st.from_regex(r"[a-z][a-z0-9@/]{0,12}", fullmatch=True),
                               st.from_regex(r"v[0-9.]{1,6}", fullmatch=True)))
_keys = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True), _texts)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=25,
)


@pytest.mark.slow  # 400 generated documents, each also written by ruamel
@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _trees, min_size=1, max_size=5))
def test_fast_writer_matches_ruamel_byte_for_byte(data: dict[str, object]) -> None:
    assert dump(data) == _ruamel_dump(data)


@pytest.mark.parametrize("key", [
    "true", "True", "FALSE", "false", "null", "NULL", "Null", "on", "a b", "a: b", "#x",
    "k" * 127, "k" * 128, "k" * 129,
])  # fmt: skip
@pytest.mark.parametrize("value", [1, "x\ny\n", "x\ny", "tab\there", "bell\x07", "\u2028",
                                   "2024.05.1", "1.5", "12", "1e3", "0x1F", "3d3c42e5",
                                   "a #b", "a#b", "a: b", "a:b", "x ", "x:", None, 1.5, True])
def test_fast_writer_matches_ruamel_on_edge_keys_and_values(key: str, value: object) -> None:
    """The fast subset's share of the (slow) property test above, one edge per document:
    a document with any value the fast writer hands to ruamel is all ruamel's."""
    for data in ({key: value}, {"jobs": {key: {"env": {"A": value}}}}):
        assert dump(data) == _ruamel_dump(data), data


@pytest.mark.parametrize("items", [[{}], [[]], ["a", {}], [Commented("a/b@1", "v1")],
                                   ["x\ny"], ["x\ny\n"]],
                         ids=["empty-map", "empty-list", "string-then-map", "commented",
                              "two-lines", "two-lines-newline"])
def test_fast_writer_matches_ruamel_on_unusual_list_items(items: list[object]) -> None:
    """Empty collections, commented and multi-line items inside a list: the fast
    subset's share of the property test for sequences."""
    data = {"jobs": {"a": {"steps": items}}}
    with pytest.raises(_Unusual):  # handed to ruamel whole, not written wrong or crashed
        _FastWriter().document(data)
    assert dump(data) == _ruamel_dump(data)


def test_fast_writer_writes_any_mapping_type_as_a_mapping() -> None:
    """Not only dicts: a ruamel CommentedMap (or any Mapping) nested in the data."""
    data = {"jobs": {"a": CommentedMap([("x", 1), ("y", "z")])}}
    assert _FastWriter().document(data) == _ruamel_dump(data)


def test_fast_writer_takes_the_fast_path_for_emitter_shapes() -> None:
    """Guards the speed-up itself: ordinary emitter output never needs ruamel."""
    data = {"jobs": {"build-a": {"runs-on": "ubuntu-24.04", "env": {"KVC_X": "12", "B": ""},
                                 "steps": [{"uses": Commented("a/b@" + "0" * 40, "v1"),
                                            "with": {"k": 1}}, {"run": "set -e\nx\n"}]}}}
    assert _fast.document(data) == _ruamel_dump(data)


def _compiled_specs() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return [*sorted(root.glob("examples/*/kvc.yaml")),
            *sorted((root / "tests" / "backends" / "specs").glob("*.yaml"))]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("spec", _compiled_specs(), ids=lambda p: p.parent.name + "/" + p.stem)
def test_every_emitted_document_is_written_as_ruamel_would(
        spec: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    documents: list[Mapping[str, Any]] = []
    real = yamlout.dump

    def recording(data: Mapping[str, Any]) -> str:
        documents.append(data)
        return real(data)

    monkeypatch.setattr(yamlout, "dump", recording)
    generate(load(spec), backend, spec.parent)
    assert documents
    for data in documents:
        assert _fast.document(data) == _ruamel_dump(data)
