"""`kvc lock --from FILE` (no network) and one download per checksum URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main
from tests.lock.conftest import Mirror

AMD = hashlib.sha256(b"amd64 image").hexdigest()
ARM = hashlib.sha256(b"arm64 image").hexdigest()
SUMS = (f"{AMD}  ubuntu-24.04-server-cloudimg-amd64.img\n"
        f"{ARM} *ubuntu-24.04-server-cloudimg-arm64.img\n")

SPEC = """\
kvc: 1
registry: ghcr.io/example
flavors:
  ubuntu:
    releases:
      - release_version: "24.04"
        url: "{base}/ubuntu-{release_version}-server-cloudimg-{arch}.img"
        checksum_url: "{base}/SHA256SUMS"
        verify_at_build: true
  debian:
    arches: [amd64]
    releases:
      - release_version: "12"
        url: "{base}/debian-12-genericcloud-{arch}.qcow2"
        checksum_url: "{base}/SHA512SUMS"
"""


def _spec(tmp_path: Path, base: str = "https://mirror.invalid") -> Path:
    path = tmp_path / "kvc.yaml"
    path.write_text(SPEC.replace("{base}", base))
    return path


def test_lock_from_a_hand_downloaded_file_pins_what_it_lists(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(SUMS)
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(sums)])
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert f"amd64: \"sha256:{AMD}\"" in text and f"arm64: \"sha256:{ARM}\"" in text
    assert "skipped   debian/12/amd64: not listed in" in result.output
    assert "2 pinned, 0 unchanged, 0 failed, 1 skipped" in result.output


def test_lock_replaces_a_placeholder_pin(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    zeros = "sha256:" + "0" * 64
    spec.write_text(spec.read_text().replace(
        "        verify_at_build: true\n",
        f'        release_checksum:\n          amd64: "{zeros}"\n          arm64: "{zeros}"\n'))
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(SUMS)
    assert CliRunner().invoke(main, ["validate", str(spec)]).exit_code == 1
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(sums)])
    assert result.exit_code == 0, result.output
    assert f"pinned    ubuntu/24.04/amd64 {zeros} -> sha256:{AMD}" in result.output
    assert zeros not in spec.read_text()


def test_lock_from_files_that_disagree_pins_nothing(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    first, second = tmp_path / "a.sums", tmp_path / "b.sums"
    first.write_text(SUMS)
    second.write_text(f"{ARM}  ubuntu-24.04-server-cloudimg-amd64.img\n")
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(first),
                                       "--from", str(second)])
    assert result.exit_code == 1
    assert "the files disagree" in result.output
    assert AMD not in spec.read_text()


def test_lock_from_an_unreadable_checksum_file_is_one_clean_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    bad = tmp_path / "SUMS"
    bad.write_text("this is not a checksum file\n")
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith(f"kvc: error: {bad}:")
    assert "Traceback" not in result.output


def test_each_checksum_url_is_fetched_once_and_progress_is_shown(
        tmp_path: Path, mirror: Mirror) -> None:
    mirror.serve("/SHA256SUMS", SUMS)
    mirror.serve("/SHA512SUMS", hashlib.sha512(b"x").hexdigest()
                 + "  debian-12-genericcloud-amd64.qcow2\n")
    spec = _spec(tmp_path, mirror.base)
    text = spec.read_text().replace('    arches: [amd64]\n', '')
    text += ('      - release_version: "13"\n'
             f'        url: "{mirror.base}/debian-13-genericcloud-{{arch}}.qcow2"\n'
             f'        checksum_url: "{mirror.base}/missing/SHA512SUMS"\n')
    spec.write_text(text)
    result = CliRunner().invoke(main, ["lock", str(spec)])
    assert result.exit_code == 1  # the missing file fails its two builds
    assert mirror.hits["/SHA256SUMS"] == 1
    assert mirror.hits["/SHA512SUMS"] == 1
    assert mirror.hits["/missing/SHA512SUMS"] == 1  # a failure is not retried per arch
    announced = [line for line in result.output.splitlines() if "kvc: fetching" in line]
    assert announced == [f"kvc: fetching {i}/3 {mirror.base}{path}" for i, path in
                         enumerate(["/SHA256SUMS", "/SHA512SUMS", "/missing/SHA512SUMS"], 1)]


def test_few_downloads_are_not_announced(tmp_path: Path, mirror: Mirror) -> None:
    mirror.serve("/SHA256SUMS", SUMS)
    mirror.serve("/SHA512SUMS", hashlib.sha512(b"x").hexdigest()
                 + "  debian-12-genericcloud-amd64.qcow2\n")
    result = CliRunner().invoke(main, ["lock", str(_spec(tmp_path, mirror.base))])
    assert result.exit_code == 0, result.output
    assert "fetching" not in result.output


def _override(indent: str, checksum: str) -> str:
    return (f"{indent}per_arch:\n{indent}  arm64:\n"
            f'{indent}    release_checksum: {{arm64: "sha256:{checksum}"}}\n')


# (line the override goes next to, its indent, before that line?, the layer named)
OVERRIDES = {
    "release": ("        verify_at_build: true\n", "        ", False,
                "{spec}:12 (release ubuntu/24.04 per_arch.arm64)"),
    "flavor": ("  ubuntu:\n", "    ", False, "{spec}:7 (flavor ubuntu per_arch.arm64)"),
    "defaults": ("flavors:\n", "  ", True, "{spec}:6 (defaults per_arch.arm64)"),
}


@pytest.mark.parametrize("level", sorted(OVERRIDES))
def test_a_pin_a_per_arch_override_would_shadow_is_refused(tmp_path: Path, level: str) -> None:
    """lock writes the release's own release_checksum; a per_arch override of any layer
    comes after it, so pinning there would report "pinned" while the build kept the old
    checksum."""
    anchor, indent, before, layer = OVERRIDES[level]
    spec = _spec(tmp_path)
    old = hashlib.sha256(b"an older arm64 image").hexdigest()
    block = _override(indent, old)
    if before:
        block = "defaults:\n" + block
    spec.write_text(spec.read_text().replace(
        anchor, block + anchor if before else anchor + block))
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(SUMS)
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(sums)])
    assert result.exit_code == 1, result.output
    assert ("failed    ubuntu/24.04/arm64: its release_checksum comes from a per_arch "
            f"override ({layer.format(spec=spec)})") in result.output
    text = spec.read_text()
    assert f"sha256:{AMD}" in text  # the other arch is pinned as usual
    assert ARM not in text and f"sha256:{old}" in text


def test_a_flavor_named_per_arch_is_locked_like_any_other(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    old = hashlib.sha256(b"an older image").hexdigest()
    spec.write_text(spec.read_text().replace("  ubuntu:\n", "  per_arch:\n").replace(
        "        verify_at_build: true\n",
        f'        release_checksum: {{amd64: "sha256:{old}", arm64: "sha256:{old}"}}\n'))
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(SUMS)
    result = CliRunner().invoke(main, ["lock", str(spec), "--from", str(sums)])
    assert result.exit_code == 0, result.output
    assert f"sha256:{AMD}" in spec.read_text() and f"sha256:{ARM}" in spec.read_text()
