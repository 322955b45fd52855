"""``kvc explain --json``: every resolved value by dotted spec path, with its origin."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from kvc.cli import main

# Real-looking digests: validate refuses placeholder ones such as all ones.
AMD = hashlib.sha256(b"amd64").hexdigest()
ARM = hashlib.sha256(b"arm64").hexdigest()

SPEC = """\
kvc: 1
registry: ghcr.io/example
defaults:
  sysprep:
    install: "git"
flavors:
  debian:
    test:
      checks: [boot]
    releases:
      - release_version: "12"
        url: "https://example.org/debian-{arch}.qcow2"
        release_checksum:
          amd64: "sha256:AMD"
          arm64: "sha256:ARM"
        sysprep:
          commands:
            - update
            - write: "/etc/motd:{release_version}"
""".replace("AMD", AMD).replace("ARM", ARM)


def explain(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(main, ["explain", str(spec), *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def test_one_object_per_build_with_values_and_origins(tmp_path: Path) -> None:
    builds = explain(tmp_path)
    assert [b["build"] for b in builds] == ["debian/12/amd64", "debian/12/arm64"]
    values = builds[1]["values"]
    assert isinstance(values, dict)
    spec = str(tmp_path / "kvc.yaml")
    assert values["url"] == {"value": "https://example.org/debian-arm64.qcow2",
                             "origin": f"{spec}:12"}
    assert values["release_checksum"] == {"value": "sha256:" + ARM,
                                          "origin": f"{spec}:15"}
    assert values["sysprep.install"] == {"value": ["git"], "origin": f"{spec}:5"}
    assert values["test.checks"] == {"value": ["boot"], "origin": f"{spec}:9"}
    assert values["sysprep.commands"] == {
        "value": ["update", {"write": "/etc/motd:12"}], "origin": f"{spec}:17"}
    assert values["sysprep.enabled"] == {"value": True, "origin": "built-in default"}
    assert values["publish.tags"]["value"] == ["12"]


def test_selector_narrows_to_one_build(tmp_path: Path) -> None:
    assert [b["build"] for b in explain(tmp_path, "debian/12/amd64")] == ["debian/12/amd64"]


def test_text_output_still_needs_an_image(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(main, ["explain", str(spec)])
    assert result.exit_code == 1
    assert "--json" in result.stderr
