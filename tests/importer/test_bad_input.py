"""Bad trees end in a clean message (exit 1) or a skipped image, never a traceback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kvc.cli import main

DIGEST = hashlib.sha256(b"good-1").hexdigest()
GOOD = ("BASE_URL=https://images.example.invalid/x\nDOWNLOAD_FILE=x-${ARCH}.qcow2\n"
        "AMD64_SHA256SUM=" + DIGEST + "\n")
BAKE = ('function "tag" {\n  result = "quay.io/org/${image}:${tag}"\n}\n'
        'target "good-1" {\n  tags = [tag("good", "1")]\n}\n')


def tree(root: Path, images: dict[str, dict[str, str | bytes]], bake: str = BAKE) -> Path:
    for name, files in images.items():
        (root / "images" / name).mkdir(parents=True)
        for file, content in files.items():
            path = root / "images" / name / file
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "bake.hcl").write_text(bake)
    return root


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def test_missing_directory(tmp_path: Path) -> None:
    result = invoke("import", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "not a directory" in result.stderr


def test_no_images_directory(tmp_path: Path) -> None:
    result = invoke("import", str(tmp_path))
    assert result.exit_code == 1
    assert "no images/ directory" in result.stderr


def test_no_registry_anywhere(tmp_path: Path) -> None:
    root = tree(tmp_path, {"good-1": {"env.sh": GOOD + "CUSTOMIZE=false\n"}}, bake="")
    result = invoke("import", str(root))
    assert result.exit_code == 1
    assert "--registry" in result.stderr
    result = invoke("import", str(tmp_path), "--registry", "ghcr.io/me")
    assert result.exit_code == 0, result.output
    assert "registry: ghcr.io/me" in result.stdout


def test_nothing_importable_is_an_error(tmp_path: Path) -> None:
    result = invoke("import", str(tree(tmp_path, {"bad-1": {"env.sh": "A=$(id)\n"}})))
    assert result.exit_code == 1
    assert "images/bad-1/env.sh:1:3: command substitution" in result.stderr
    assert "no image could be imported" in result.stderr
    assert result.stdout == ""


def test_each_bad_image_is_skipped_and_the_rest_imports(tmp_path: Path) -> None:
    out = tmp_path / "out" / "kvc.yaml"
    images: dict[str, dict[str, str | bytes]] = {
        "good-1": {"env.sh": GOOD, "virt.sysprep": "update\n"},
        "latin-1": {"env.sh": b"BASE_URL=caf\xe9\n"},
        "nosysprep-1": {"env.sh": GOOD},
        "badskip-1": {"env.sh": GOOD + "CUSTOMIZE=false\nSKIP='(ssh'\n"},
        "badsum-1": {"env.sh": GOOD.replace(DIGEST, "xyz") + "CUSTOMIZE=false\n"},
        "badpkg-1": {"env.sh": GOOD, "virt.sysprep": "install ok,no;thing\n"},
        "archdiff-1": {"env.sh": GOOD + "CUSTOMIZE=${ARCH}\n"},
        "dup-1": {"env.sh": GOOD + "CUSTOMIZE=false\n"},
    }
    bake = BAKE + 'target "dup-1" {\n  tags = [tag("good", "1")]\n}\n'
    result = invoke("import", str(tree(tmp_path / "t", images, bake)), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = result.stderr
    assert "images/latin-1/env.sh:1:13: not UTF-8 text" in report
    assert "images/nosysprep-1: CUSTOMIZE is true but there is no virt.sysprep" in report
    assert "images/badskip-1: SKIP='(ssh' is not a regular expression" in report
    assert "images/badsum-1: AMD64_SHA256SUM is not a sha256 hex digest" in report
    assert "images/archdiff-1: CUSTOMIZE differs per architecture" in report
    assert "images/good-1: good/1 is already imported from images/dup-1" in report
    assert "images/badpkg-1: kvc rejects its values: 'no;thing' is not a valid package" in report
    assert "1 images imported" in report
    assert "imported   good/1 (amd64) from images/dup-1/env.sh" in report
    assert out.is_file() and not list(out.parent.glob(".*kvc-tmp"))


def test_bz2_is_left_compressed_like_the_original_script(tmp_path: Path) -> None:
    env = GOOD.replace("x-${ARCH}.qcow2", "x.qcow2.bz2") + "CUSTOMIZE=false\n"
    root = tree(tmp_path / "t", {"good-1": {"env.sh": env}})
    spec = tmp_path / "kvc.yaml"
    assert invoke("import", str(root), "--out", str(spec)).exit_code == 0
    result = invoke("explain", str(spec), "good/1/amd64", "--json")
    values = json.loads(result.stdout)[0]["values"]
    assert values["download.decompress"]["value"] == "none"


def test_broken_circleci_config_counts_every_image_active(tmp_path: Path) -> None:
    root = tree(tmp_path, {"good-1": {"env.sh": GOOD + "CUSTOMIZE=false\n"}})
    (root / ".circleci").mkdir()
    (root / ".circleci" / "config.yml").write_text("workflows: [\n")
    result = invoke("import", str(root))
    assert result.exit_code == 0, result.output
    assert ".circleci/config.yml:2:1: not valid YAML" in result.stderr


def test_skip_matching_every_test_disables_the_test(tmp_path: Path) -> None:
    env = GOOD + "CUSTOMIZE=false\nSKIP='vm pods|agent|ssh'\n"
    spec = tmp_path / "kvc.yaml"
    root = tree(tmp_path / "t", {"good-1": {"env.sh": env}})
    assert invoke("import", str(root), "--out", str(spec)).exit_code == 0
    values = json.loads(invoke("explain", str(spec), "good/1/amd64", "--json").stdout)[0]["values"]
    assert values["test.enabled"]["value"] is False
