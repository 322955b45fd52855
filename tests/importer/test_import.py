"""kvc import on the fixture tree: report, spec shape, and the round trip via explain --json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc.cli import main
from tests.conftest import per_module

DATA = Path(__file__).resolve().parent / "data" / "pipeline"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope=per_module)
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("import") / "kvc.yaml"
    result = invoke("import", str(DATA), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.stderr


@pytest.fixture(scope=per_module)
def builds(imported: tuple[Path, str]) -> dict[str, dict[str, Any]]:
    spec, _ = imported
    assert invoke("validate", str(spec)).exit_code == 0
    result = invoke("explain", str(spec), "--json")
    assert result.exit_code == 0, result.output
    return {item["build"]: item["values"] for item in json.loads(result.stdout)}


def value(builds: dict[str, dict[str, Any]], build: str, key: str) -> Any:
    return builds[build][key]["value"]


def test_report_lists_imported_skipped_and_left_out(imported: tuple[Path, str]) -> None:
    _, report = imported
    assert "imported   ubuntu/22.04 (amd64, arm64)" in report
    assert "imported   router/23 (amd64)" in report
    assert "skipped    images/empty-1: empty image directory" in report
    # an arch needs both a checksum and a download file
    assert ("skipped    images/incomplete-1: no architecture resolves: amd64: no checksum; "
            "arm64: no download file") in report
    assert "left out   images/archived-7: in no workflow of .circleci/config.yml" in report
    assert "testvmi.yaml not imported" in report
    assert "7 images imported, 3 skipped, 1 left out" in report


def test_hostile_env_sh_is_reported_at_each_position_and_skipped(
        imported: tuple[Path, str]) -> None:
    _, report = imported
    for where in ("2:15", "3:17", "4:81", "5:1", "6:4"):
        assert f"images/evil-1/env.sh:{where}: " in report
    assert "DOWNLOAD_FILE=$(curl -fsSL" in report  # the source line is shown
    assert "skipped    images/evil-1:" in report
    assert not Path("/tmp/kvc-import-pwned").exists()


def test_every_build_round_trips(builds: dict[str, dict[str, Any]]) -> None:
    assert sorted(builds) == [
        "almalinux/9/amd64", "almalinux/9/arm64", "coreos/40/amd64", "debian/12/amd64",
        "debian/12/arm64", "router/23/amd64", "twoarch/1/amd64", "ubuntu/22.04/amd64",
        "ubuntu/22.04/arm64", "ubuntu/24.04/amd64", "ubuntu/24.04/arm64"]


def test_per_arch_download_file_fallback(builds: dict[str, dict[str, Any]]) -> None:
    assert value(builds, "ubuntu/22.04/amd64", "url") == (
        "https://images.example.invalid/ubuntu/jammy/current/jammy-server-cloudimg-amd64-disk-kvm.img")
    assert value(builds, "ubuntu/22.04/arm64", "url") == (
        "https://images.example.invalid/ubuntu/jammy/current/jammy-server-cloudimg-arm64.img")


def test_per_arch_base_url_fallback_gz_and_convert(builds: dict[str, dict[str, Any]]) -> None:
    build = "router/23/amd64"
    assert value(builds, build, "url").endswith(
        "/router/23.05.3/targets/x86/64/router-23.05.3-x86-64-generic-squashfs-combined-efi.img.gz")
    assert value(builds, build, "download.convert") is True
    assert value(builds, build, "download.decompress") == "auto"  # .gz by suffix
    assert value(builds, build, "sysprep.enabled") is False
    assert value(builds, build, "test.checks") == ["boot"]
    assert value(builds, build, "publish.latest") is True


def test_per_arch_base_url_fallback_for_both_arches(builds: dict[str, dict[str, Any]]) -> None:
    # debian-12: no BASE_URL, AMD64_BASE_URL / ARM64_BASE_URL, one DOWNLOAD_FILE
    assert value(builds, "debian/12/amd64", "url") == (
        "https://images.example.invalid/debian/bookworm/latest/debian-12-generic-amd64.qcow2")
    assert value(builds, "debian/12/arm64", "url") == (
        "https://arm.images.example.invalid/debian/bookworm/latest/debian-12-generic-arm64.qcow2")


def test_arch_idiom_and_arch_variable(builds: dict[str, dict[str, Any]]) -> None:
    assert "/cloud/aarch64/images/AlmaLinux-9-GenericCloud-latest.aarch64.qcow2" in value(
        builds, "almalinux/9/arm64", "url")
    assert value(builds, "debian/12/arm64", "url").endswith("debian-12-generic-arm64.qcow2")
    assert value(builds, "coreos/40/amd64", "url").endswith("qemu.x86_64.qcow2.xz")
    assert value(builds, "coreos/40/amd64", "download.decompress") == "auto"  # .xz by suffix


def test_sha256_preferred_over_sha512(builds: dict[str, dict[str, Any]]) -> None:
    assert value(builds, "almalinux/9/amd64", "release_checksum") == (
        "sha256:6db11ac13a0bbf56106eee4dfbc9d3e788602b1e5b3818127a421a6a492b4930")
    assert value(builds, "debian/12/amd64", "release_checksum") == (
        "sha512:dfd2ac08229d1738d81f6966161c1d70968f070b796d4c75de8c35893e84cbfd"
        "960106c5ba1eabb973fad75fe61bedf7c07e7bece46ed32bafbd4e0e72aed9a1")


def test_customize_false_and_skip_checks(builds: dict[str, dict[str, Any]]) -> None:
    build = "coreos/40/amd64"
    assert value(builds, build, "sysprep.enabled") is False
    assert value(builds, build, "sysprep.disk_size") is None
    assert value(builds, build, "test.checks") == ["boot"]
    assert value(builds, "almalinux/9/amd64", "test.checks") == ["boot", "guest-agent"]
    assert value(builds, "ubuntu/24.04/amd64", "test.checks") == ["boot", "guest-agent", "ssh"]


def test_simple_keys_when_they_reproduce_the_script(builds: dict[str, dict[str, Any]]) -> None:
    build = "ubuntu/24.04/arm64"
    assert value(builds, build, "sysprep.update") is True
    assert value(builds, build, "sysprep.install") == ["qemu-guest-agent", "cloud-init", "git"]
    assert value(builds, build, "sysprep.post_commands") == [
        "apt-get autoremove -y && apt-get purge -y", "systemctl enable qemu-guest-agent"]
    assert value(builds, build, "sysprep.commands") == []
    assert value(builds, build, "sysprep.operations") == [
        "customize", "logfiles", "machine-id", "tmp-files"]
    assert value(builds, build, "sysprep.disk_size") == "+20G"


def test_ordered_commands_when_they_cannot(builds: dict[str, dict[str, Any]]) -> None:
    build = "almalinux/9/amd64"
    assert value(builds, build, "sysprep.commands") == [
        {"run-command": "dnf -y --best upgrade --exclude=kernel*"},
        "update",
        {"edit": "/etc/selinux/config:\n    s/^SELINUX=.*/SELINUX=permissive/"},
        {"install": "git,vim,qemu-guest-agent"},
        {"write": "/etc/motd:built by {kvc}"},
        {"copy-in": "files/kvc.repo:/etc/yum.repos.d"},
        {"run-command": "systemctl enable qemu-guest-agent"},
        {"delete": "/var/cache/dnf"},
        "selinux-relabel",
    ]
    assert value(builds, build, "sysprep.install") == []
    assert value(builds, build, "sysprep.update") is False


def test_tags_and_registry_from_bake(builds: dict[str, dict[str, Any]],
                                     imported: tuple[Path, str]) -> None:
    assert value(builds, "ubuntu/24.04/amd64", "publish.tags") == ["24.04", "noble"]
    # tag("ubuntu", "jammy") is commented out in bake.hcl
    assert value(builds, "ubuntu/22.04/amd64", "publish.tags") == ["22.04"]
    spec = YAML(typ="safe").load(imported[0].read_text())
    assert spec["registry"] == "quay.io/example-org"
    assert "almalinux" in spec["flavors"]  # flavor from tag("almalinux", "9"), not "alma"


def test_shared_values_are_lifted(imported: tuple[Path, str],
                                  builds: dict[str, dict[str, Any]]) -> None:
    spec = YAML(typ="safe").load(imported[0].read_text())
    assert spec["defaults"]["sysprep"]["update"] is True
    ubuntu = spec["flavors"]["ubuntu"]
    assert ubuntu["sysprep"]["install"] == "qemu-guest-agent,cloud-init,git"
    assert all("install" not in r.get("sysprep", {}) for r in ubuntu["releases"])
    origin = builds["ubuntu/22.04/amd64"]["sysprep.install"]["origin"]
    assert origin.endswith(":" + str(_line_of(imported[0], "install: qemu-guest-agent")))


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_each_release_names_its_source_files(imported: tuple[Path, str]) -> None:
    text = imported[0].read_text()
    assert "# from images/ubuntu-22.04/{env.sh,virt.sysprep}, bake.hcl:19" in text
    assert "# from images/router-23/env.sh, bake.hcl:53" in text
    # what is not imported is named in the spec itself too, not only in the report
    assert "# Left out: images/archived-7: in no workflow of .circleci/config.yml" in text
    assert "# Skipped: images/empty-1: empty image directory" in text


def test_stdout_without_out_and_nothing_written(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(DATA, tree)
    result = invoke("import", str(tree))
    assert result.exit_code == 0
    assert result.stdout.startswith("# Imported by `kvc import`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]
