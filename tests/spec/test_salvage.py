"""One round of diagnostics: what a schema error sets aside, and what it does not."""

from __future__ import annotations

import textwrap

import pytest

from kvc.spec.diagnostics import SpecError
from tests.conftest import resolve_text

SPEC = textwrap.dedent("""\
    kvc: 1
    registry: ghcr.io/example
    flavors:
      debian:
        releases:
          - release_version: "12"
            url: "https://example.org/debian-{arch}.qcow2"
            insecure_skip_checksum: true
      fedora:
        releases:
          - release_version: "41"
            url: "https://example.org/fedora-{arch}.qcow2"
            insecure_skip_checksum: true
    """)


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(SpecError) as caught:
        resolve_text(text)
    return [(d.pos.line, d.kind) for d in caught.value.diagnostics]


def test_a_misspelt_key_that_others_need_withholds_what_its_absence_would_cause() -> None:
    """'ulr' is meant as url: no second message saying the url is missing."""
    assert _problems(SPEC.replace("url: \"https://example.org/debian", "ulr: \"https://x/debian")
                     ) == [(7, "unknown-key")]


def test_an_unknown_key_nothing_depends_on_does_not_hide_other_flavors_problems() -> None:
    text = SPEC.replace("  debian:\n", "  debian:\n    colour: blue\n").replace(
        "fedora-{arch}", "fedora-{arhc}")
    assert _problems(text) == [(5, "unknown-key"), (13, "template")]


def test_a_type_error_sets_its_flavor_aside_but_not_the_others() -> None:
    text = SPEC.replace('release_version: "12"', "release_version: 12").replace(
        "debian-{arch}", "debian-{arhc}").replace("fedora-{arch}", "fedora-{arhc}")
    assert _problems(text) == [(6, "type"), (12, "template")]


def test_a_broken_defaults_stops_after_the_schema() -> None:
    text = SPEC.replace("flavors:\n", "defaults:\n  test: {timeout: 15}\nflavors:\n").replace(
        "fedora-{arch}", "fedora-{arhc}")
    assert _problems(text) == [(4, "type")]


def test_a_key_valid_where_it_stands_is_not_called_dedented() -> None:
    """An empty 'vars' followed by a broken 'test': the problem is the timeout."""
    text = SPEC.replace("flavors:\n", "defaults:\n  vars:\n  test: {timeout: 15}\nflavors:\n")
    assert _problems(text) == [(5, "type")]


def test_keys_dedented_out_of_an_empty_key_are_named_at_their_line() -> None:
    text = SPEC.replace("  debian:\n    releases:", "  debian:\n  releases:")
    with pytest.raises(SpecError) as caught:
        resolve_text(text)
    (only,) = caught.value.diagnostics
    assert (only.pos.line, only.kind) == (5, "indent")
    assert "'releases' must be indented under 'debian' (line 4)" in only.message


# From the surviving mutants of schema_errors (docs/mutation/spec.md).

def test_a_bad_arch_key_sets_aside_only_its_entry_and_what_is_under_it() -> None:
    """The misspelt arch's entry goes (with the unknown key inside it), the flavor
    stays: its template typo is still reported in the same run."""
    text = SPEC.replace("  debian:\n", "  debian:\n    per_arch:\n      amd65:\n"
                        "        colour: blue\n").replace("debian-{arch}", "debian-{arhc}")
    assert _problems(text) == [(6, "value"), (7, "unknown-key"), (10, "template")]


def test_a_flavor_of_the_wrong_type_is_set_aside_alone() -> None:
    text = SPEC.replace("  fedora:\n", "  ubuntu: [noble]\n  fedora:\n").replace(
        "fedora-{arch}", "fedora-{arhc}")
    assert _problems(text) == [(9, "type"), (13, "template")]


def test_a_broken_backends_section_is_set_aside_alone() -> None:
    text = SPEC.replace("flavors:\n", "backends:\n  github: {default_branch: 5}\nflavors:\n"
                        ).replace("fedora-{arch}", "fedora-{arhc}")
    assert _problems(text) == [(4, "type"), (14, "template")]


def test_an_empty_mapping_value_inside_a_command_item_is_a_positioned_problem() -> None:
    """Looking for dedented keys walks every mapping, into a command's mapping too."""
    text = SPEC.replace("  debian:\n", "  debian:\n    sysprep:\n      post_commands:\n"
                        "        - run-command:\n")
    assert _problems(text) == [(7, "type")]
