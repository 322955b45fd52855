"""Spec keys reach the resolved model by name, and the front half reports every
independent problem in one run."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import typing
from typing import Any

import pytest

from kvc.compiler.durations import parse_age, parse_duration
from kvc.compiler.layers import BUILTIN, spec_key
from kvc.compiler.model import SECTIONS
from kvc.compiler.model import TestSettings as ResolvedTest
from kvc.compiler.resolve import resolve
from kvc.spec.diagnostics import Collector, SpecError
from kvc.spec.loader import load_text
from kvc.spec.models import ArchLayer, Spec
from tests.conftest import resolve_text

SPEC = textwrap.dedent("""\
    kvc: 1
    registry: ghcr.io/example
    flavors:
      debian:
        sysprep:
          post_commands: ['echo "$arch {arch}" > /etc/motd']
        test: {timeout: 1h1s}
        releases:
          - release_version: "12"
            url: "https://example.org/debian-{arch}.qcow2"
            insecure_skip_checksum: true
    """)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_spec_key_of_a_section_is_a_field_of_its_resolved_type(section: str) -> None:
    """The one place a new key is declared twice (spec model, resolved model):
    a key in one but not the other fails here, naming it."""
    layer = ArchLayer.model_fields[section].annotation
    spec_type = next(arg for arg in layer.__args__ if arg is not type(None))  # type: ignore[union-attr]
    spec_keys = {field.alias or name for name, field in spec_type.model_fields.items()}
    resolved = {spec_key(field.name) for field in dataclasses.fields(SECTIONS[section])}
    assert spec_keys == resolved


def test_the_built_in_layer_is_the_resolved_models_defaults() -> None:
    assert BUILTIN["test.timeout"] == ResolvedTest().timeout == "15m"
    assert BUILTIN["download.in"] == "host"
    assert BUILTIN["sysprep.install"] == ["qemu-guest-agent", "cloud-init"]
    built = resolve_text(SPEC).builds[0]
    assert built.test.kubevirt == ResolvedTest().kubevirt
    assert str(built.origins["test.kubevirt"]) == "(built-in default)"


def test_guest_shell_keeps_its_own_variables() -> None:
    commands = {b.arch: b.sysprep.post_commands for b in resolve_text(SPEC).builds}
    assert commands == {"amd64": ('echo "$arch amd64" > /etc/motd',),
                        "arm64": ('echo "$arch arm64" > /etc/motd',)}


def test_job_timeouts_use_the_same_parser_as_validation() -> None:
    assert parse_duration("1h1s") == 3601
    assert resolve_text(SPEC).builds[0].test.timeout_minutes == 61
    assert [parse_duration(t) for t in ("15m", "900s", "1h30m", "", "15 m", "1d")] == [
        900, 900, 5400, None, None, None]


def test_refresh_ages_have_their_own_units_in_the_same_module() -> None:
    assert [parse_age(t) for t in ("0", "90", "90s", "30m", "12h", "7d", "2w", " 7d ")] == [
        0, 90, 90, 1800, 43200, 604800, 1209600, 604800]
    assert [parse_age(t) for t in ("", "7 d", "1h30m", "-1d", "7y")] == [None] * 5
    assert parse_duration("7d") is None  # a test timeout takes no days (test.sh reads it)


def test_independent_problems_of_every_phase_arrive_in_one_run() -> None:
    text = SPEC.replace("kvc: 1\n", "kvc: 1\nbackend: {}\n").replace(
        "insecure_skip_checksum: true", "checksum_url: 'https://example.org/SUMS'").replace(
        "timeout: 1h1s", "timeout: soon").replace("debian-{arch}", "debian-{archh}")
    with pytest.raises(SpecError) as caught:
        resolve_text(text)
    kinds = sorted({d.kind for d in caught.value.diagnostics})
    assert kinds == ["template", "unknown-key", "unpinned", "value"]


def test_a_value_whose_template_failed_is_not_checked_again() -> None:
    text = SPEC.replace("url: \"https://example.org/debian-{arch}.qcow2\"",
                        "url: \"ftp:/{archh}\"")
    with pytest.raises(SpecError) as caught:
        resolve_text(text)
    assert [d.kind for d in caught.value.diagnostics] == ["template"]


def _other_value(annotation: Any, default: Any, name: str) -> Any:
    """A schema-valid value for a key that differs from its built-in default."""
    if name == "commands":
        return ["update", {"run-command": "true"}]
    inner = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if inner is bool:
        return not default
    if origin is typing.Literal:
        return next(a for a in args if a != default)
    if origin is list:
        item = args[0]
        if typing.get_origin(item) is typing.Literal:
            return [next(a for a in typing.get_args(item) if [a] != default)]
        return [f"x-{name}"]
    return f"x-{name}"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_key_set_in_the_spec_reaches_its_resolved_field(section: str) -> None:
    """Forgetting a key's line in the resolver fails here (its default would win)."""
    spec_type = typing.get_args(ArchLayer.model_fields[section].annotation)[0]
    written = {}
    for name, field in spec_type.model_fields.items():
        key = field.alias or name
        written[key] = _other_value(field.annotation, BUILTIN[f"{section}.{key}"], key)
    text = SPEC.replace("insecure_skip_checksum: true",
                        f"insecure_skip_checksum: true\n        {section}: {json.dumps(written)}")
    doc = load_text(text, "kvc.yaml")
    spec = Spec.model_validate(doc.data)
    build = resolve(doc, spec, Collector())[0]
    resolved = getattr(build, section)
    for key, value in written.items():
        got = getattr(resolved, "in_" if key == "in" else key)
        expect = tuple(value.split(",")) if key == "install" else value
        if key == "commands":
            expect = (("update", None), ("run-command", "true"))
        assert (list(got) if isinstance(got, tuple) else got) == (
            list(expect) if isinstance(expect, tuple) else expect), f"{section}.{key}"
