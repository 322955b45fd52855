"""The Containerfile for real: a two-arch containerDisk pushed to a registry."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from .conftest import STAGES, Registry, require, run, sha256_file

pytestmark = pytest.mark.integration

ARCHES = ("amd64", "arm64")


def buildah(storage: Path, *args: str) -> str:
    return run(
        ["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run"),
         "--storage-driver", "vfs", *args]
    ).stdout  # fmt: skip


def layer_members(layer: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(layer, "r:*") as tar:
        return tar.getmembers()


def test_multi_arch_containerdisk(registry: Registry, scratch: Path) -> None:
    tmp_path = scratch
    require("buildah", "skopeo", "qemu-img")
    context = tmp_path / "context"
    disk_input = tmp_path / "input.qcow2"
    run(["qemu-img", "create", "-f", "qcow2", str(disk_input), "64M"])
    for arch in ARCHES:
        (context / arch).mkdir(parents=True)
        shutil.copyfile(disk_input, context / arch / "disk.qcow2")
    storage = tmp_path / "buildah"
    ref = f"{registry.host}/kvc/debian:test"
    buildah(storage, "manifest", "create", "kvc-list")
    for arch in ARCHES:
        buildah(storage, "build", "--isolation", "chroot", "--platform", f"linux/{arch}",
                "-f", str(STAGES / "Containerfile"), "--manifest", "kvc-list",
                str(context))  # fmt: skip
    buildah(
        storage, "manifest", "push", "--all", "--tls-verify=false", "kvc-list", f"docker://{ref}"
    )

    index = json.loads(
        run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    )
    platforms = sorted(
        (m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]
    )
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]

    for arch in ARCHES:
        out = tmp_path / f"copy-{arch}"
        run(["skopeo", "copy", "--src-tls-verify=false", "--override-arch", arch,
             f"docker://{ref}", f"dir:{out}"])  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text())
        config = json.loads((out / manifest["config"]["digest"].split(":")[1]).read_text())
        assert config["architecture"] == arch
        (layer,) = manifest["layers"]
        members = layer_members(out / layer["digest"].split(":")[1])
        files = [m for m in members if not m.isdir()]
        dirs = {m.name.rstrip("/") for m in members if m.isdir()}
        assert [m.name for m in files] == ["disk/disk.qcow2"]
        assert dirs <= {"disk"}
        (disk,) = files
        assert disk.isfile() and (disk.uid, disk.gid) == (107, 107)
        with tarfile.open(out / layer["digest"].split(":")[1], "r:*") as tar:
            extracted = tar.extractfile("disk/disk.qcow2")
            assert extracted is not None
            (tmp_path / f"{arch}.qcow2").write_bytes(extracted.read())
        assert sha256_file(tmp_path / f"{arch}.qcow2") == sha256_file(disk_input)
