"""Resolution: defaults -> flavor -> release -> per_arch (flavor, then release)."""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap

import pytest

from kvc.compiler.customize import command_problem
from kvc.compiler.model import ImageBuild
from kvc.compiler.resolve import _guest_variable
from kvc.compiler.templates import TemplateError, expand
from kvc.spec.diagnostics import SpecError
from tests.conftest import resolve_text

SHA = "sha256:" + hashlib.sha256(b"resolve test image").hexdigest()

LAYERED = textwrap.dedent(f"""\
    kvc: 1
    registry: ghcr.io/example
    defaults:
      sysprep:
        install: "qemu-guest-agent"
        operations: [defaults, -ssh-userdir]
        selinux_relabel: true
      test:
        timeout: 20m
      vars:
        where: defaults
      per_arch:
        arm64:
          test: {{timeout: 40m}}
    flavors:
      ubuntu:
        sysprep:
          update: true
          operations: [all]
        vars:
          where: flavor
        per_arch:
          arm64:
            sysprep: {{update: false}}
            vars: {{where: flavor-arm64}}
        releases:
          - release_version: "24.04"
            release_name: noble
            url: "https://example.org/{{release_version}}/{{where}}/ubuntu-{{uname_arch}}.img"
            release_checksum: {{amd64: "{SHA}", arm64: "{SHA}"}}
            vars:
              where: release
            publish:
              tags: ["{{release_version}}", "{{release_name}}-{{flavor}}"]
            per_arch:
              arm64:
                vars: {{where: release-arm64}}
                sysprep:
                  install: [git]
    """)


def _build(arch: str) -> ImageBuild:
    return next(b for b in resolve_text(LAYERED).builds if b.arch == arch)


def test_mappings_merge_key_by_key_across_layers() -> None:
    sysprep = _build("amd64").sysprep
    assert sysprep.install == ("qemu-guest-agent",)   # defaults
    assert sysprep.update is True                     # flavor
    assert sysprep.selinux_relabel is True            # defaults, untouched by the flavor
    assert sysprep.makefile_target == "customize"     # built-in


def test_lists_replace_rather_than_append() -> None:
    assert _build("amd64").sysprep.operations == ("all",)
    assert _build("arm64").sysprep.install == ("git",)


def test_per_arch_applies_flavor_then_release_and_only_to_its_arch() -> None:
    amd64, arm64 = _build("amd64"), _build("arm64")
    assert (amd64.sysprep.update, arm64.sysprep.update) == (True, False)
    assert (amd64.test.timeout, arm64.test.timeout) == ("20m", "40m")
    assert (amd64.vars["where"], arm64.vars["where"]) == ("release", "release-arm64")


def test_templates_use_the_vars_of_the_build() -> None:
    amd64, arm64 = _build("amd64"), _build("arm64")
    assert amd64.url == "https://example.org/24.04/release/ubuntu-x86_64.img"
    assert arm64.url == "https://example.org/24.04/release-arm64/ubuntu-aarch64.img"
    assert amd64.publish.tags == ("24.04", "noble-ubuntu")


def test_origins_name_the_layer_and_the_line_that_wrote_the_value() -> None:
    arm64 = _build("arm64")
    lines = LAYERED.splitlines()
    expect = {
        "sysprep.install": ("release ubuntu/24.04 per_arch.arm64", "install: [git]"),
        "sysprep.update": ("flavor ubuntu per_arch.arm64", "sysprep: {update: false}"),
        "sysprep.selinux_relabel": ("defaults", "selinux_relabel: true"),
        "test.timeout": ("defaults per_arch.arm64", "test: {timeout: 40m}"),
        "vars.where": ("release ubuntu/24.04 per_arch.arm64", "vars: {where: release-arm64}"),
        "sysprep.operations": ("flavor ubuntu", "operations: [all]"),
    }
    for key, (layer, text) in expect.items():
        origin = arm64.origins[key]
        assert origin.layer == layer, key
        assert origin.pos is not None
        assert text in lines[origin.pos.line - 1], key
        assert str(origin) == f"kvc.yaml:{origin.pos.line} ({layer})"
    assert str(arm64.origins["sysprep.makefile_target"]) == "(built-in default)"


def test_resolved_builds_are_immutable() -> None:
    build = _build("amd64")
    with pytest.raises(dataclasses.FrozenInstanceError):
        build.url = "https://evil.example/"  # type: ignore[misc]
    with pytest.raises(TypeError):
        build.vars["where"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        build.origins["url"] = build.origins["url"]  # type: ignore[index]
    assert isinstance(build.sysprep.install, tuple)


def test_explicit_null_disk_size_cancels_an_inherited_resize() -> None:
    text = LAYERED.replace('install: "qemu-guest-agent"',
                           'install: "qemu-guest-agent"\n    disk_size: "+5G"')
    text = text.replace("    sysprep:\n      update: true",
                        "    sysprep:\n      disk_size: null\n      update: true")
    builds = resolve_text(text).builds
    assert {b.sysprep.disk_size for b in builds} == {None}
    assert resolve_text(LAYERED.replace(
        'install: "qemu-guest-agent"', 'install: "qemu-guest-agent"\n    disk_size: "+5G"',
    )).builds[0].sysprep.disk_size == "+5G"


def test_an_explicit_null_is_inherited_and_the_rest_of_its_layer_still_applies() -> None:
    """`key: null` where null means nothing (here the flavor's arches) inherits the value
    below; the layer's other keys, whatever their order, keep their effect."""
    text = LAYERED.replace("  ubuntu:\n    sysprep:\n",
                           "  ubuntu:\n    arches: null\n    sysprep:\n")
    assert text != LAYERED
    builds = resolve_text(text).builds
    assert [b.arch for b in builds] == ["amd64", "arm64"]
    amd64 = next(b for b in builds if b.arch == "amd64")
    assert amd64.sysprep.operations == ("all",)
    assert amd64.sysprep.update is True
    assert amd64.publish.tags == ("24.04", "noble-ubuntu")


def test_builds_come_in_spec_order_with_the_release_arches() -> None:
    text = LAYERED.replace('release_name: noble', 'release_name: noble\n        arches: [arm64]')
    assert [b.build_id for b in resolve_text(text).builds] == ["ubuntu/24.04/arm64"]
    assert [b.build_id for b in resolve_text(LAYERED).builds] == [
        "ubuntu/24.04/amd64", "ubuntu/24.04/arm64"]


def test_locked_url_replaces_a_wildcard_url() -> None:
    text = LAYERED.replace("ubuntu-{uname_arch}.img", "ubuntu-*-{uname_arch}.img").replace(
        "release_name: noble", "release_name: noble\n"
        "        locked_url: {amd64: 'https://example.org/a.img', arm64: 'https://example.org/b.img'}")
    assert [b.url for b in resolve_text(text).builds] == [
        "https://example.org/a.img", "https://example.org/b.img"]


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        resolve_text(text)
    return [d.headline() for d in caught.value.diagnostics]


def test_template_error_column_points_at_the_placeholder() -> None:
    text = LAYERED.replace("{where}/ubuntu", "{wher}/ubuntu")
    line_no, line = next((i, ln) for i, ln in enumerate(text.splitlines(), 1) if "{wher}" in ln)
    col = line.index("{wher}") + 1
    assert _errors(text) == [
        f"kvc.yaml:{line_no}:{col}: unknown placeholder '{{wher}}'; did you mean '{{where}}'? "
        "[template]"]


def test_vars_may_use_built_ins_and_each_other_in_any_order() -> None:
    text = LAYERED.replace("where: release\n", "where: '{first}-{release_name}'\n"
                           "          first: '{second}'\n          second: '{flavor}'\n")
    assert _build_of(text, "amd64").vars["where"] == "ubuntu-noble"


def _build_of(text: str, arch: str) -> ImageBuild:
    return next(b for b in resolve_text(text).builds if b.arch == arch)


def test_a_release_with_errors_never_vanishes_silently() -> None:
    text = LAYERED.replace("where: release\n", "where: '{other}'\n          other: '{where}'\n")
    messages = _errors(text)
    assert any("refers to itself: 'where' -> 'other' -> 'where'" in m for m in messages)


# -- guest shell variables (from surviving mutants, docs/mutation-report.md) ------------------


def _guest_error(value: str) -> TemplateError:
    """What kvc reports for ``value`` in a guest shell command (post_commands)."""
    with pytest.raises(TemplateError) as caught:
        expand(value, {"arch": "amd64"})
    return _guest_variable(value, caught.value)


@pytest.mark.parametrize("value", [
    "${FOO}",                          # at the very start of the command
    "echo ${FOO} ${BAR}",              # the first of two: its own closing brace
    "echo {{a}} ${FOO}",               # a literal brace earlier in the command
])
def test_a_braced_guest_variable_is_explained(value: str) -> None:
    error = _guest_error(value)
    assert (error.offset, error.message) == (
        value.index("${"), "'${FOO}' reads as the kvc placeholder '{FOO}'; for the guest's "
                           "shell variable write '${{FOO}}' or '$FOO'")


@pytest.mark.parametrize("value", ["echo {FOO}", "{FOO} costs $"])
def test_a_placeholder_without_a_dollar_stays_an_unknown_placeholder(value: str) -> None:
    error = _guest_error(value)
    assert (error.offset, error.message) == (value.index("{"), "unknown placeholder '{FOO}'")


def test_an_unknown_customize_command_gets_a_hint_only_when_one_is_close() -> None:
    """From surviving mutants (docs/mutation-report.md)."""
    assert command_problem("run-comand", "x") == (
        "'run-comand' is not a virt-customize command; did you mean 'run-command'?")
    assert command_problem("zzzzzz", None) == "'zzzzzz' is not a virt-customize command"
