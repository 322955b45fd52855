"""The command line through click's CliRunner: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from kvc import __version__
from kvc.cli import main
from kvc.commands import validate as validate_command
from tests.conftest import DATA, EXAMPLES, OK_SPECS, ROOT

MINIMAL = ROOT / "examples" / "minimal" / "kvc.yaml"
LAYERING = DATA / "ok" / "layering.yaml"


def test_validate_ok(runner: CliRunner) -> None:
    result = runner.invoke(main, ["validate", str(MINIMAL)])
    assert result.exit_code == 0
    assert result.stdout == f"{MINIMAL}: ok (1 images, 2 image builds, 6 jobs)\n"


def test_validate_missing_file_is_a_clean_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert result.stderr == (f"{tmp_path / 'nope.yaml'}:1:1: cannot read: "
                             "No such file or directory [io]\n")
    assert "Traceback" not in result.output


def test_plan_table(runner: CliRunner) -> None:
    result = runner.invoke(main, ["plan", str(DATA / "ok" / "sysprep-disabled.yaml")])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "BUILD", "RUNNER", "SOURCE", "CHECKSUM", "SYSPREP",
                                "IMAGE", "SIGNED", "TAGS", "FINGERPRINT"]
    row = next(line for line in lines if line.startswith("fedora-coreos/41.20241215.3.0/arm64"))
    assert row.split()[1:2] == ["amd64"]
    assert ("note: fedora-coreos/41.20241215.3.0/arm64 builds on amd64: no guest code runs "
            "during customization") in lines


def test_plan_warns_about_insecure_downloads(runner: CliRunner) -> None:
    result = runner.invoke(main, ["plan", str(DATA / "ok" / "insecure.yaml")])
    assert result.exit_code == 0
    assert "NONE (insecure)" in result.stdout
    assert "warning: debian/sid/amd64 is downloaded WITHOUT checksum verification" in (
        result.stdout)


def test_plan_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["plan", "--json", str(LAYERING)])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["build"] for row in rows] == ["ubuntu/24.04/amd64", "ubuntu/24.04/arm64",
                                              "ubuntu/22.04/amd64", "ubuntu/22.04/arm64"]
    first = rows[0]
    assert first["image_ref"] == "docker.io/containercraft/ubuntu"
    assert first["tags"] == ["24.04", "noble"] and first["latest"] is True
    assert first["url"].endswith("/ubuntu-24.04-server-cloudimg-amd64.img")
    assert first["checksum_algo"] == "sha256"
    assert len(first["fingerprint"]) == 20


def test_explain_shows_values_and_origins(runner: CliRunner,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LAYERING.parent)
    result = runner.invoke(main, ["explain", LAYERING.name, "ubuntu/24.04/arm64"])
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("# ubuntu/24.04/arm64\nimage: docker.io/containercraft/ubuntu\n")
    assert _line(out, "sysprep.update = false").endswith(
        "# layering.yaml:26 (flavor ubuntu per_arch.arm64)")
    assert _line(out, "test.timeout = ").endswith("# layering.yaml:17 (defaults per_arch.arm64)")
    assert _line(out, "sysprep.makefile = false").endswith("# (built-in default)")
    assert 'KVC_UNAME_ARCH="aarch64"' in out.splitlines()


def _line(out: str, prefix: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(prefix))


def test_explain_whole_image_shows_every_arch(runner: CliRunner) -> None:
    result = runner.invoke(main, ["explain", str(LAYERING), "ubuntu/22.04"])
    assert result.exit_code == 0
    assert [ln for ln in result.stdout.splitlines() if ln.startswith("# ubuntu")] == [
        "# ubuntu/22.04/amd64", "# ubuntu/22.04/arm64"]


@pytest.mark.parametrize(("selector", "message"), [
    ("ubunt/24.04", "kvc: error: unknown flavor 'ubunt'; did you mean 'ubuntu'?"),
    ("ubuntu/24.4", "kvc: error: unknown release of ubuntu '24.4'; did you mean '24.04'?"),
    ("ubuntu/24.04/arm", "kvc: error: unknown arch of ubuntu/24.04 'arm'; did you mean 'arm64'?"),
    ("ubuntu", "kvc: error: 'ubuntu' must be flavor/release or flavor/release/arch"),
])
def test_explain_unknown_selector(runner: CliRunner, selector: str, message: str) -> None:
    result = runner.invoke(main, ["explain", str(LAYERING), selector])
    assert result.exit_code == 1
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def _schema(runner: CliRunner) -> dict[str, Any]:
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_schema_is_valid_and_accepts_every_ok_spec_and_example(runner: CliRunner) -> None:
    schema = _schema(runner)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert len(EXAMPLES) >= 2
    for spec in [*OK_SPECS, *EXAMPLES]:
        errors = [e.message for e in validator.iter_errors(_yaml(spec))]
        assert errors == [], spec


@pytest.mark.parametrize("case", ["unknown-key-nested", "release-version-number", "bad-arch"])
def test_schema_rejects_what_validate_rejects(runner: CliRunner, case: str) -> None:
    validator = jsonschema.Draft202012Validator(_schema(runner))
    assert not validator.is_valid(_yaml(DATA / "err" / f"{case}.yaml"))


def test_schema_out_writes_the_same_document(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "kvc.schema.json"
    result = runner.invoke(main, ["schema", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == f"wrote {out}\n"
    assert json.loads(out.read_text()) == _schema(runner)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"kvc, version {__version__}\n"


def test_every_documented_command_exists() -> None:
    assert {"validate", "plan", "explain", "schema"} <= set(main.commands)


@pytest.mark.parametrize("command", [None, *sorted(main.commands)])
def test_help_on_every_command(runner: CliRunner, command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.stderr


def _boom(spec: Path) -> int:
    raise RuntimeError("kaboom")


def test_internal_error_exits_3_without_a_traceback(runner: CliRunner,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate_command, "run", _boom)
    result = runner.invoke(main, ["validate", str(MINIMAL)])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert result.stderr == ("kvc: internal error: RuntimeError: kaboom\n"
                             "kvc: this is a bug in kvc; rerun with --traceback and report it\n")


def test_internal_error_traceback_on_request(runner: CliRunner,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate_command, "run", _boom)
    result = runner.invoke(main, ["--traceback", "validate", str(MINIMAL)])
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: kaboom" in result.stderr
