"""Pins that can never verify are errors; verify_at_build is the honest offline mode."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from kvc.commands.init import starter
from kvc.compiler.checksums import placeholder_reason
from kvc.compiler.driver import load
from kvc.compiler.env import build_env

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64]
    releases:
      - release_version: "12"
        url: "https://cloud.example.org/debian-12-{arch}.qcow2"
        checksum_url: "https://cloud.example.org/SHA512SUMS"
EXTRA
"""


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "kvc.yaml"
    path.write_text(SPEC.replace("EXTRA\n", extra))
    return path


FAKES = [
    "sha256:" + "0" * 64,
    "sha512:" + "f" * 128,
    "sha256:" + "ab" * 32,                                  # one repeated byte
    "sha256:" + "0" * 60 + "240a",                          # zeros with a tag
    "sha256:" + hashlib.sha256(b"").hexdigest(),
    "sha512:" + hashlib.sha512(b"a").hexdigest(),
    "sha256:" + hashlib.sha256(b"Z").hexdigest(),
]


@pytest.mark.parametrize("fake", FAKES)
@pytest.mark.parametrize("command", [["validate"], ["plan"], ["compile", "-b", "github"]],
                         ids=lambda c: c[0])
def test_validate_rejects_digests_that_can_never_verify(tmp_path: Path, fake: str,
                                                        command: list[str]) -> None:
    """Issue 13: validate, plan and compile all refuse them (and compile writes nothing)."""
    spec = _write(tmp_path, f'        release_checksum: {{amd64: "{fake}"}}\n')
    result = CliRunner().invoke(main, [command[0], str(spec), *command[1:]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kvc.yaml"]
    assert result.exit_code == 1
    assert "is a placeholder" in result.output and "kvc lock" in result.output
    assert "verify_at_build" in result.output
    assert f"{spec}:10:" in result.output


def test_real_digests_are_not_placeholders() -> None:
    for n in range(2000):
        digest = hashlib.sha256(str(n).encode()).hexdigest()
        assert placeholder_reason(f"sha256:{digest}") is None, n


def test_verify_at_build_needs_no_pin_and_passes_the_url_to_the_build(tmp_path: Path) -> None:
    spec = _write(tmp_path, "        verify_at_build: true\n")
    assert CliRunner().invoke(main, ["validate", str(spec)]).exit_code == 0
    env = dict(build_env(load(spec).builds[0]))
    assert env["KVC_CHECKSUM"] == ""
    assert env["KVC_CHECKSUM_URL"] == "https://cloud.example.org/SHA512SUMS"
    plan = CliRunner().invoke(main, ["plan", str(spec)])
    assert "at build" in plan.output
    assert "verifies the download against https://cloud.example.org/SHA512SUMS" in plan.output


def test_a_pin_replaces_verify_at_build(tmp_path: Path) -> None:
    digest = hashlib.sha512(b"image").hexdigest()
    spec = _write(tmp_path, "        verify_at_build: true\n"
                            f'        release_checksum: {{amd64: "sha512:{digest}"}}\n')
    env = dict(build_env(load(spec).builds[0]))
    assert env["KVC_CHECKSUM"] == f"sha512:{digest}"
    assert "KVC_CHECKSUM_URL" not in env


@pytest.mark.parametrize(("extra", "message"), [
    ("        verify_at_build: true\n        insecure_skip_checksum: true\n", "contradict"),
])
def test_verify_at_build_conflicts(tmp_path: Path, extra: str, message: str) -> None:
    spec = _write(tmp_path, extra)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 1
    assert message in result.output


def test_verify_at_build_without_checksum_url(tmp_path: Path) -> None:
    spec = _write(tmp_path, "        verify_at_build: true\n")
    spec.write_text(spec.read_text().replace(
        '        checksum_url: "https://cloud.example.org/SHA512SUMS"\n', ""))
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "verify_at_build needs a checksum_url" in result.output


def test_init_writes_no_pin_at_all() -> None:
    assert "release_checksum" not in starter()
    assert "verify_at_build: true" in starter()


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*/kvc.yaml")),
                         ids=lambda p: p.parent.name)
def test_examples_carry_no_placeholder_digest(example: Path) -> None:
    for build in load(example).builds:
        assert build.checksum is not None or build.verifies_at_build, build.build_id
        if build.checksum is not None:
            assert placeholder_reason(build.checksum) is None, build.build_id


def test_a_digit_filling_half_the_digest_is_the_threshold() -> None:
    """From a surviving mutant (docs/mutation-report.md): half is refused, just under is not."""
    rest = "123456789abcdef" * 3  # 45 digits, no '0'
    half = "0" * 32 + rest[:32]
    under = "0" * 31 + rest[:33]
    assert placeholder_reason(f"sha256:{half}") == "'0' fills 32 of its 64 digits"
    assert placeholder_reason(f"sha256:{under}") is None
