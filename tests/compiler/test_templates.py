"""``{name}`` templates with ``{{``/``}}`` literals and positioned errors."""

from __future__ import annotations

import pytest

from kvc.compiler.templates import TemplateError, expand, placeholders, shell_style

NAMES = {"flavor": "ubuntu", "arch": "amd64", "release_name": "", "uname_arch": "x86_64"}


@pytest.mark.parametrize(("template", "result"), [
    ("plain", "plain"),
    ("{flavor}-{arch}", "ubuntu-amd64"),
    ("{{flavor}}", "{flavor}"),
    ("{{{flavor}}}", "{ubuntu}"),
    ("a}}b{{c", "a}b{c"),
    ('{{"arch": "{uname_arch}"}}', '{"arch": "x86_64"}'),
])
def test_expand(template: str, result: str) -> None:
    assert expand(template, NAMES) == result


@pytest.mark.parametrize(("template", "offset", "message"), [
    ("x-{archh}", 2, "unknown placeholder '{archh}'; did you mean '{arch}'?"),
    ("{nothing_like_it}", 0, "unknown placeholder '{nothing_like_it}'"),
    ("v/{release_name}", 2, "'{release_name}' is empty for this image; give that release a "
                            "release_name"),
    ("x-{ARCH}", 2, "unknown placeholder '{ARCH}'; did you mean '{arch}'?"),
    ("ab{arch", 2, "unbalanced '{' (write {{ and }} for literal braces)"),
    ("ab}", 2, "unbalanced '}' (write {{ and }} for literal braces)"),
    ("a{two words}", 1, "'{two words}' is not a valid placeholder "
                        "(write {{ and }} for literal braces)"),
    ("a{}", 1, "'{}' is not a valid placeholder (write {{ and }} for literal braces)"),
])
def test_errors_carry_the_offset_of_the_placeholder(template: str, offset: int,
                                                    message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        expand(template, NAMES)
    assert (caught.value.offset, caught.value.message, caught.value.kind) == (
        offset, message, "template")


def test_only_an_empty_release_name_gets_the_release_name_hint() -> None:
    """From surviving mutants (docs/mutation-report.md): the hint is for release_name only."""
    with pytest.raises(TemplateError) as caught:
        expand("a-{suffix}", {"suffix": ""}, "debian/12")
    assert caught.value.message == "'{suffix}' is empty for debian/12"


def test_placeholders_lists_names_in_order() -> None:
    assert placeholders("{a}/{{b}}/{c}{a}") == ("a", "c", "a")


@pytest.mark.parametrize(("template", "offset", "message"), [
    ("v${release_name}", 1, "'${release_name}' is shell syntax, which kvc does not expand here; "
                            "did you mean '{release_name}'?"),
    ("x-$arch.img", 2, "'$arch' is shell syntax, which kvc does not expand here; "
                       "did you mean '{arch}'?"),
    ("$UNAME_ARCH", 0, "'$UNAME_ARCH' is shell syntax, which kvc does not expand here; "
                       "did you mean '{uname_arch}'?"),
    ("a/$HOME", 2, "'$HOME' is shell syntax, which kvc does not expand here; write a "
                   "{placeholder} (a built-in name or a vars entry)"),
])
def test_shell_style_placeholders_are_found_with_the_name_meant(template: str, offset: int,
                                                                message: str) -> None:
    error = shell_style(template, NAMES)
    assert error is not None
    assert (error.offset, error.message, error.kind) == (offset, message, "template")


@pytest.mark.parametrize("template", ["{arch}", "price: 5$", "a$ b", "$1", "{{$}}"])
def test_text_that_is_not_a_shell_placeholder_passes(template: str) -> None:
    assert shell_style(template, NAMES) is None
