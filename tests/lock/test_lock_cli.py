"""`kvc lock` end to end: spec on disk -> local mirror -> pinned spec that validates."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kvc.cli import main
from tests.lock.conftest import Mirror

SPEC = """\
kvc: 1
registry: quay.io/example  # where images go
flavors:
  centos-stream:
    arches: [amd64]
    releases:
      # the newest dated build wins
      - release_version: "9"
        url: "{base}/9-stream/{uname_arch}/images/CentOS-Stream-GenericCloud-9-*.{uname_arch}.qcow2"
        checksum_url: "{base}/9-stream/{uname_arch}/images/CHECKSUM"
"""


def _spec(tmp_path: Path, mirror: Mirror) -> Path:
    path = tmp_path / "kvc.yaml"
    path.write_text(SPEC.replace("{base}", mirror.base))
    return path


def test_lock_pins_the_newest_build_and_the_spec_then_validates(
        tmp_path: Path, mirror: Mirror) -> None:
    mirror.serve_fixture("/9-stream/x86_64/images/CHECKSUM", "centos-stream-9-x86_64-CHECKSUM")
    spec = _spec(tmp_path, mirror)
    runner = CliRunner()

    before = runner.invoke(main, ["validate", str(spec)])
    assert before.exit_code == 1
    assert "run `kvc lock`" in before.output

    locked = runner.invoke(main, ["lock", str(spec)])
    assert locked.exit_code == 0, locked.output
    text = spec.read_text()
    assert "CentOS-Stream-GenericCloud-9-20241118.0.x86_64.qcow2" in text
    assert "sha256:3a7f1a70323361113ca7d2f19bca87d4dea8e8bb425f0954c933fa01940bad15" in text
    assert "# where images go" in text and "# the newest dated build wins" in text

    after = runner.invoke(main, ["validate", str(spec)])
    assert after.exit_code == 0, after.output
    plan = runner.invoke(main, ["plan", str(spec)])
    assert "9-20241118.0.x86_64.qcow2" in plan.output

    again = runner.invoke(main, ["lock", str(spec)])
    assert again.exit_code == 0
    assert spec.read_text() == text


def test_lock_dry_run_and_failure_keep_the_file(tmp_path: Path, mirror: Mirror) -> None:
    spec = _spec(tmp_path, mirror)
    original = spec.read_bytes()
    runner = CliRunner()

    failed = runner.invoke(main, ["lock", str(spec)])  # nothing served: 404
    assert failed.exit_code == 1
    assert spec.read_bytes() == original

    mirror.serve_fixture("/9-stream/x86_64/images/CHECKSUM", "centos-stream-9-x86_64-CHECKSUM")
    dry = runner.invoke(main, ["lock", "--dry-run", str(spec)])
    assert dry.exit_code == 0, dry.output
    assert "20241118.0" in dry.output
    assert spec.read_bytes() == original


def test_lock_without_checksum_url_has_nothing_to_do(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    # The minimal example verifies at build time now, so it has a checksum_url.
    spec.write_text(SPEC.replace("{base}", "https://mirror.invalid").replace(
        '        checksum_url: "https://mirror.invalid/9-stream/{uname_arch}/images/CHECKSUM"\n',
        "        insecure_skip_checksum: true\n").replace("-*.", "-1."))
    result = CliRunner().invoke(main, ["lock", str(spec)])
    assert result.exit_code == 0
    assert "nothing to lock" in result.output
