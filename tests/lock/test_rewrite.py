from __future__ import annotations

import difflib

import pytest
from ruamel.yaml import YAML

from kvc.lock import LockError, Pin, apply_pins
from kvc.lock.rewrite import rewrite

A, B, C = (f"sha256:{ch * 64}" for ch in "abc")

SPEC = f"""\
# yaml-language-server: $schema=./kvc.schema.json
kvc: 1
registry: docker.io/containercraft   # where images go

defaults:
  arches: [amd64, arm64]
  sysprep:
    disk_size: null                      # e.g. "+10G"

flavors:
  ubuntu:
    releases:
      - release_version: "24.04"         # LTS
        release_name: noble
        url: "https://cloud-images.ubuntu.com/releases/{{release_version}}/release/ubuntu-{{release_version}}-server-cloudimg-{{arch}}.img"
        release_checksum:                # per arch
          amd64: "{A}"    # keep me
          arm64: '{B}'
        checksum_url: "https://cloud-images.ubuntu.com/releases/{{release_version}}/release/SHA256SUMS"
  centos:
    releases:
    -   release_version: '9'
        url: https://cloud.centos.org/centos/9-stream/{{uname_arch}}/images/CentOS-Stream-GenericCloud-9-*.{{uname_arch}}.qcow2
        checksum_url: https://cloud.centos.org/centos/9-stream/{{uname_arch}}/images/CHECKSUM
  fedora:
    releases:
      - {{release_version: "41", url: "https://x/f.qcow2"}}
      - release_version: "40"
        release_checksum: {{amd64: "{A}"}}
        url: https://x/f40.qcow2
"""


def changed_lines(old: str, new: str) -> list[str]:
    diff = difflib.ndiff(old.splitlines(), new.splitlines())
    return [line for line in diff if line[:1] in "+-"]


def test_replaces_one_value_and_nothing_else() -> None:
    new = apply_pins(SPEC, [Pin("ubuntu", "24.04", "amd64", C)])
    assert changed_lines(SPEC, new) == [
        f'-           amd64: "{A}"    # keep me',
        f'+           amd64: "{C}"    # keep me',
    ]


def test_single_quoted_value_becomes_double_quoted() -> None:
    new = apply_pins(SPEC, [Pin("ubuntu", "24.04", "arm64", C)])
    assert f'          arm64: "{C}"\n' in new


def test_unchanged_pins_return_the_input_object() -> None:
    pins = [Pin("ubuntu", "24.04", "amd64", A), Pin("ubuntu", "24.04", "arm64", B)]
    assert apply_pins(SPEC, pins) is SPEC
    assert apply_pins(SPEC, []) is SPEC


def test_new_mappings_use_the_documents_mapping_indent() -> None:
    pins = [
        Pin("centos", "9", "arm64", B, "https://h/C-9-20241118.0.aarch64.qcow2"),
        Pin("centos", "9", "amd64", A, "https://h/C-9-20241118.0.x86_64.qcow2"),
    ]
    new = apply_pins(SPEC, pins)
    assert changed_lines(SPEC, new) == [
        "+         release_checksum:",
        f'+           amd64: "{A}"',
        f'+           arm64: "{B}"',
        "+         locked_url:",
        '+           amd64: "https://h/C-9-20241118.0.x86_64.qcow2"',
        '+           arm64: "https://h/C-9-20241118.0.aarch64.qcow2"',
    ]
    assert new.index("release_checksum:\n          amd64") > new.index("CentOS-Stream-GenericCloud")


def test_new_arch_is_added_to_an_existing_block_mapping() -> None:
    text = SPEC.replace(f"          arm64: '{B}'\n", "")
    new = apply_pins(text, [Pin("ubuntu", "24.04", "arm64", C)])
    assert changed_lines(text, new) == [f'+           arm64: "{C}"']


def test_flow_mapping_value_is_replaced_in_place() -> None:
    new = apply_pins(SPEC, [Pin("fedora", "40", "amd64", C)])
    assert f'        release_checksum: {{amd64: "{C}"}}\n' in new


def test_empty_release_checksum_is_filled() -> None:
    text = SPEC.replace(
        f"        release_checksum: {{amd64: \"{A}\"}}\n", "        release_checksum:   # todo\n"
    )
    new = apply_pins(text, [Pin("fedora", "40", "amd64", C)])
    assert f"        release_checksum:   # todo\n          amd64: \"{C}\"\n" in new


def test_crlf_line_endings_are_kept() -> None:
    text = SPEC.replace("\n", "\r\n")
    new = apply_pins(text, [Pin("centos", "9", "amd64", A)])
    assert "\n" not in new.replace("\r\n", "")


def test_unwritable_pins_are_reported_and_others_still_applied() -> None:
    pins = [
        Pin("fedora", "41", "amd64", A),  # flow-style release
        Pin("fedora", "40", "arm64", A),  # arm64 missing from a flow mapping
        Pin("nope", "1", "amd64", A),
        Pin("ubuntu", "24.04", "amd64", C),
    ]
    result = rewrite(SPEC, pins)
    reasons = {(r.pin.flavor, r.pin.release_version): r.reason for r in result.rejected}
    assert "flow style" in reasons[("fedora", "41")]
    assert "add arm64 by hand" in reasons[("fedora", "40")]
    assert "flavor 'nope' not found" in reasons[("nope", "1")]
    assert f'amd64: "{C}"' in result.text
    with pytest.raises(LockError, match="fedora/41/amd64"):
        apply_pins(SPEC, pins)


def test_invalid_pins_are_refused() -> None:
    with pytest.raises(LockError, match="not of the form"):
        apply_pins(SPEC, [Pin("ubuntu", "24.04", "amd64", "abc")])
    with pytest.raises(LockError, match="64 hex digits"):
        apply_pins(SPEC, [Pin("ubuntu", "24.04", "amd64", "sha256:abc")])


def test_broken_yaml_is_a_clean_error() -> None:
    with pytest.raises(LockError, match="cannot read the spec"):
        apply_pins("flavors: [\n", [Pin("a", "1", "amd64", A)])


# --- the safety net: flow mappings and verification ---------------------------

FLOW = f"""\
flavors:
  fedora:
    releases:
      - release_version: "40"
        url: https://x/f40-{{arch}}.qcow2
        release_checksum: {{amd64: {A}, arm64: {B}}}   # both pins on one line
"""


def checksums(text: str) -> dict[str, str]:
    release = YAML(typ="safe").load(text)["flavors"]["fedora"]["releases"][0]
    return dict(release["release_checksum"])


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_flow_mapping_keeps_the_other_arch(arch: str) -> None:
    """Unquoted values end at ',' / '}': pinning one arch never swallows the other."""
    new = apply_pins(FLOW, [Pin("fedora", "40", arch, C)])
    assert checksums(new) == {"amd64": A, "arm64": B, arch: C}
    assert new.endswith("}   # both pins on one line\n")


def test_flow_mapping_both_pins_are_written() -> None:
    new = apply_pins(FLOW, [Pin("fedora", "40", "amd64", C), Pin("fedora", "40", "arm64", A)])
    assert checksums(new) == {"amd64": C, "arm64": A}
    assert changed_lines(FLOW, new) == [
        f"-         release_checksum: {{amd64: {A}, arm64: {B}}}   # both pins on one line",
        f'+         release_checksum: {{amd64: "{C}", arm64: "{A}"}}   # both pins on one line',
    ]


MULTI_LINE = f"""\
flavors:
  fedora:
    releases:
      - release_version: "40"
        url: https://x/f40.qcow2
        release_checksum:
          amd64: {A[:40]}
            {A[40:]}
"""


def test_an_edit_that_would_break_the_spec_is_refused_whole() -> None:
    """A plain scalar folded over two lines is where splicing goes wrong: the result
    is re-read (``_verify``) and refused, never returned half-edited."""
    with pytest.raises(LockError):
        apply_pins(MULTI_LINE, [Pin("fedora", "40", "amd64", C)])
    with pytest.raises(LockError):
        rewrite(MULTI_LINE, [Pin("fedora", "40", "amd64", C)])
