"""Emitted YAML must carry every value byte-for-byte, whatever the spec put in it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kvc.backends.yamlout import Commented, dump

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


def test_version_comment_and_no_anchors() -> None:
    shared = {"x": 1}
    text = dump({"one": shared, "two": shared, "uses": Commented("a/b@" + "0" * 40, "v1.2.3")})
    assert "&" not in text and "*" not in text
    assert "uses: a/b@" + "0" * 40 + "  # v1.2.3" in text
