"""Docker Hub images are docker.io/ACCOUNT/NAME: the other spellings validate would
let through could not be pushed as written (kvc/compiler/rules.py, check_publish)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.cli import main

MINIMAL = Path(__file__).resolve().parents[2] / "examples/minimal/kvc.yaml"
OFFICIAL = ("would push to Docker Hub's official images (library/); name the account: "
            "docker.io/ACCOUNT/...")
LEGACY = "write Docker Hub as docker.io/..."


@pytest.mark.parametrize(("registry", "says"), [
    ("docker.io", OFFICIAL),  # docker.io/debian is library/debian
    ("docker.io/library", OFFICIAL),
    ("index.docker.io/acme", LEGACY),
    ("registry-1.docker.io/acme", LEGACY),
    ("docker.io/acme", None),
    ("docker.io/libraryx", None),
    ("quay.io/library", None),  # only Docker Hub has the official namespace
])  # fmt: skip
def test_docker_hub_spellings(tmp_path: Path, registry: str, says: str | None) -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("registry:"))
    spec = tmp_path / "kvc.yaml"
    spec.write_text("\n".join(f"registry: {registry}" if i == line else row
                              for i, row in enumerate(text.splitlines(), 1)) + "\n",
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    if says is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    assert f"{spec}:{line}:11: '{registry}/debian'" in result.output, result.output
    assert f"{says} [image]" in result.output
