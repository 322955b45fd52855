"""apply_pins on the shapes of YAML a spec may take: exact text out, exact errors.

Written from the surviving mutants of kvc/lock/rewrite.py (docs/mutation-report.md):
each case pins down one decision of the splicer (where a value ends, which
indentation a new block takes, which line ending it uses) by the whole text
it must produce, or the message it must refuse with.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from kvc.lock import LockError, Pin, apply_pins
from kvc.lock import rewrite as rewrite_module
from kvc.lock.rewrite import rewrite

A, B, C = (f"sha256:{ch * 64}" for ch in "abc")


def release(body: str, head: str = "") -> str:
    """One fedora/40 release whose lines below ``release_version`` are ``body``."""
    return (f"{head}flavors:\n  fedora:\n    releases:\n      - release_version: \"40\"\n"
            + "".join(f"        {line}\n" for line in body.splitlines()))


def pin(arch: str = "amd64", checksum: str = C, url: str | None = None) -> Pin:
    return Pin("fedora", "40", arch, checksum, url)


def refused(text: str, pins: list[Pin]) -> str:
    with pytest.raises(LockError) as err:
        apply_pins(text, pins)
    return str(err.value)


# --- null values ----------------------------------------------------------------

@pytest.mark.parametrize(("empty", "filled"), [
    ("", f' "{C}"'), (" null", f' "{C}"'), (" ~", f' "{C}"'),
    (" null   # todo", f' "{C}" # todo'), ("   # todo: a # b", f' "{C}"   # todo: a # b'),
])
def test_an_empty_arch_value_is_filled_in_place(empty: str, filled: str) -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64:{empty}\n  arm64: \"{B}\"")
    assert apply_pins(text, [pin()]) == text.replace(f"  amd64:{empty}\n", f"  amd64:{filled}\n")


def test_a_null_release_checksum_gets_the_releases_own_indent() -> None:
    """The release nests by 4 while the document nests by 2: the release wins."""
    text = release("url: https://x/f.qcow2\nsysprep:\n    install: vim\nrelease_checksum: null")
    assert apply_pins(text, [pin()]) == text.replace(
        "release_checksum: null\n", f"release_checksum:\n            amd64: \"{C}\"\n")


def test_a_new_block_gets_the_releases_own_indent() -> None:
    text = release("url: https://x/f.qcow2\nsysprep:\n    install: vim")
    assert apply_pins(text, [pin()]) == text.replace(
        "url: https://x/f.qcow2\n", f"url: https://x/f.qcow2\n        release_checksum:\n"
        f"            amd64: \"{C}\"\n")


def test_a_one_space_indent_is_kept() -> None:
    text = release("url: https://x/f.qcow2\nsysprep:\n install: vim")
    new = apply_pins(text, [pin()])
    assert f"        release_checksum:\n         amd64: \"{C}\"\n" in new


def test_without_url_the_block_goes_after_release_version() -> None:
    text = release("release_name: x")
    assert apply_pins(text, [pin()]) == text.replace(
        '"40"\n', f'"40"\n        release_checksum:\n          amd64: "{C}"\n')


def test_the_last_line_without_a_newline_still_gets_its_insert() -> None:
    text = release("url: https://x/f.qcow2").removesuffix("\n")
    block = f'\n        release_checksum:\n          amd64: "{C}"\n'
    assert apply_pins(text, [pin()]) == text + block


def test_the_first_lines_ending_is_the_documents() -> None:
    text = "# spec\r\n" + release("url: https://x/f.qcow2")
    new = apply_pins(text, [pin()])
    block = f'        release_checksum:\r\n          amd64: "{C}"\r\n'
    assert new.endswith("url: https://x/f.qcow2\n" + block)


def test_classic_mac_line_ends_are_kept_on_new_lines() -> None:
    """A lone CR ends a line in YAML too: new lines end like the document's first."""
    text = release("url: https://x/f.qcow2").replace("\n", "\r")
    block = f'        release_checksum:\r          amd64: "{C}"\r'
    assert apply_pins(text, [pin()]) == text + block


# --- where a value ends ---------------------------------------------------------

def test_a_comment_containing_hash_marks_is_kept_whole() -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64: {A} # one # two")
    assert apply_pins(text, [pin()]) == text.replace(f"{A} # one", f'"{C}" # one')


def test_three_unquoted_flow_entries_keep_the_others() -> None:
    flow = f"{{amd64: {A}, arm64: {B}, s390x: {A}}}"
    text = release(f"url: https://x/f.qcow2\nrelease_checksum: {flow}")
    assert apply_pins(text, [pin()]) == text.replace(f"{{amd64: {A},", f'{{amd64: "{C}",')


@pytest.mark.parametrize("old", ['"https://h/a,b}.qcow2"', "'https://h/it''s,}.qcow2'",
                                 '"https://h/a\\"b,}.qcow2"'])
def test_quoted_flow_values_end_at_their_closing_quote(old: str) -> None:
    text = release(f"url: https://h/*.qcow2\nrelease_checksum: {{amd64: {A}}}\n"
                   f"locked_url: {{amd64: {old}, arm64: \"https://h/b.qcow2\"}}  # pinned")
    new = apply_pins(text, [pin(checksum=A, url="https://h/new.qcow2")])
    assert new == text.replace(old, '"https://h/new.qcow2"')


@pytest.mark.parametrize("old", ["'https://h/it''s # x.qcow2'", '"https://h/a\\" # x.qcow2"'])
def test_quoted_block_values_end_at_their_closing_quote(old: str) -> None:
    text = release(f"url: https://h/*.qcow2\nrelease_checksum:\n  amd64: \"{A}\"\n"
                   f"locked_url:\n  amd64: {old}   # note")
    new = apply_pins(text, [pin(checksum=A, url="https://h/new.qcow2")])
    assert new == text.replace(old, '"https://h/new.qcow2"')


# --- refusals, with their messages --------------------------------------------------

def test_refusals_name_the_problem() -> None:
    url = "url: https://x/f.qcow2\n"
    cases = {
        "flavors: [a]\n": "flavor 'fedora' not found in the spec",
        "- a\n": "flavor 'fedora' not found in the spec",
        "flavors:\n  fedora:\n    releases:\n": "release fedora/40 not found in the spec",
        release(url) + release(url).split("releases:\n")[1]:
            "release fedora/40 listed more than once in the spec",
        "flavors:\n  fedora:\n    releases:\n      - {release_version: '40'}\n":
            "the release is written in flow style {…}; write it as a block mapping",
        release(url + "release_checksum: [a]"):
            "release_checksum must be a mapping of arch to value",
        release(url + "release_checksum: {s390x: x}"):
            "release_checksum is a flow mapping {…}; add amd64, arm64 by hand",
        release("release_name: x").replace('"40"', "'40'\n        url:\n          https://x"):
            "the value of 'url' is not a one-line string",
        release(url + f'release_checksum:\n  amd64: "{A}\n    "'):
            "a quoted value continues over several lines",
        release(url + f"release_checksum:\n  amd64: &a {A}"): f"unsupported value syntax '&a {A}'",
        release(url + "release_checksum:\n  amd64: !!str x"): "unsupported value syntax '!!str x'",
        release(url + "release_checksum:\n  amd64: {x: 1}"): "unsupported value syntax '{x: 1}'",
        release(url + "release_checksum:\n  amd64: [x]"): "unsupported value syntax '[x]'",
        release(url + "release_checksum:\n  amd64: |\n    x"): "unsupported value syntax '|'",
        "flavors:\n  fedora:\n    releases:\n      - release_version: 40\n":
            "the release has no one-line 'url' or 'release_version' to insert after",
    }
    for text, message in cases.items():
        pins = [pin(), pin("arm64")] if "by hand" in message else [pin()]
        got = refused(text, pins)
        assert got.startswith("fedora/40/") and got.endswith(message), (text, got)


def test_every_refusal_is_listed_in_one_error() -> None:
    text = release("url: https://x/f.qcow2")
    got = refused(text, [Pin("a", "1", "amd64", C), Pin("b", "1", "amd64", C)])
    assert got == ("a/1/amd64: flavor 'a' not found in the spec; "
                   "b/1/amd64: flavor 'b' not found in the spec")


def test_an_invalid_arch_is_named() -> None:
    assert "invalid arch 'x y'" in refused(release("url: https://x/f.qcow2"), [pin("x y")])


def test_null_releases_are_not_found() -> None:
    assert "release fedora/40 not found" in refused("flavors:\n  fedora:\n    releases:\n",
                                                    [pin()])


def test_a_splice_that_changes_the_data_is_an_internal_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-read after splicing compares data: a planner writing the wrong value
    (simulated here) is caught and nothing is returned."""
    monkeypatch.setattr(rewrite_module, "_checksum_text", lambda p: json.dumps(A))
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64: \"{B}\"")
    message = "internal error: rewriting the spec went wrong; the spec was not changed"
    assert refused(text, [pin()]) == message
    with pytest.raises(LockError, match=message):
        rewrite(text, [pin()])


# --- more shapes, from the second mutation run ------------------------------------

@pytest.mark.parametrize(("empty", "filled"), [
    (" null   ", f' "{C}"'), (" null # a # b", f' "{C}" # a # b'),
])
def test_null_with_trailing_spaces_or_two_comment_marks(empty: str, filled: str) -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64:{empty}\n")
    assert apply_pins(text, [pin()]) == text.replace(f"  amd64:{empty}\n", f"  amd64:{filled}\n")


@pytest.mark.parametrize("old", ['""', "''", "Xfoo", "fooX", '"x\\\\"', "'it'''"])
def test_any_one_line_old_value_is_replaced_whole(old: str) -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64: {old}   # note")
    assert apply_pins(text, [pin()]) == text.replace(f"amd64: {old}", f'amd64: "{C}"')


def test_a_plain_flow_value_after_a_quoted_brace_is_found() -> None:
    text = release('url: https://h/*.qcow2\nrelease_checksum: {amd64: "x}y", arm64: plain}')
    assert apply_pins(text, [pin("arm64")]) == text.replace("plain}", f'"{C}"}}')


def test_a_null_spelled_with_a_tag_is_refused() -> None:
    text = release("url: https://x/f.qcow2\nrelease_checksum:\n  amd64: !!null ''")
    assert refused(text, [pin()]) == "fedora/40/amd64: cannot find the empty value of 'amd64'"


def test_a_comment_inside_a_multi_line_flow_mapping_is_kept() -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum: {{amd64: {A} # first\n"
                   f"  , arm64: {B}}}")
    assert apply_pins(text, [pin()]) == text.replace(f"{A} # first", f'"{C}" # first')


def test_a_plain_value_ending_the_line_is_replaced_to_its_last_character() -> None:
    text = release("url: https://x/f.qcow2\nrelease_checksum:\n  amd64: fooX")
    assert apply_pins(text, [pin()]) == text.replace("amd64: fooX", f'amd64: "{C}"')


# --- from the run of 2026-12-03 (docs/mutation/lock.md) ---------------------------

OLD, OTHER, NEW = (f"sha256:{hashlib.sha256(word.encode()).hexdigest()}"
                   for word in ("rewrite-old", "rewrite-other", "rewrite-new"))


def test_a_brace_in_the_comment_after_a_flow_mapping_is_not_its_end() -> None:
    text = release(f"url: https://x/f.qcow2\nrelease_checksum: {{arm64: {OTHER}, amd64: {OLD}}}"
                   "  # pinned by hand {see notes}")
    assert apply_pins(text, [pin(checksum=NEW)]) == text.replace(f"{OLD}}}", f'"{NEW}"}}')


def test_a_comment_mark_in_an_earlier_flow_value_is_not_a_comment() -> None:
    flow = f'{{arm64: "{OTHER} #", amd64: {OLD}}}'
    text = release(f"url: https://x/f.qcow2\nrelease_checksum: {flow}")
    assert apply_pins(text, [pin(checksum=NEW)]) == text.replace(f"amd64: {OLD}", f'amd64: "{NEW}"')


@pytest.mark.parametrize("old", ["x\u00a0", "x\u3000", "\u3000"])
def test_a_value_ending_in_a_unicode_space_is_replaced_whole(old: str) -> None:
    """YAML trims spaces and tabs only: a no-break space belongs to the plain value."""
    text = release(f"url: https://x/f.qcow2\nrelease_checksum:\n  amd64: {old}")
    assert apply_pins(text, [pin(checksum=NEW)]) == text.replace(f"amd64: {old}", f'amd64: "{NEW}"')
