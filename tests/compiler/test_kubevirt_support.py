"""KubeVirt's support table, the pinned test cluster, and the warning validate prints."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from kvc.cli import main
from kvc.compiler import kubevirt_support
from kvc.compiler.layers import BUILTIN

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "examples" / "minimal" / "kvc.yaml"


def test_default_kubevirt_supports_the_pinned_node_and_is_pinned() -> None:
    default = BUILTIN["test.kubevirt"]
    assert kubevirt_support.supports(default, kubevirt_support.node_kubernetes())
    assert default in kubevirt_support.pinned_kubevirt()


def test_node_kubernetes_matches_the_node_image() -> None:
    tools = (REPO / "kvc" / "stages" / "tools.sh").read_text()
    match = re.search(r'^KVC_KIND_NODE_IMAGE="kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}"',
                      tools, re.M)
    assert match is not None
    assert match.group(1) == kubevirt_support.node_kubernetes()


def test_support_table() -> None:
    assert kubevirt_support.supports("v1.8.2", "1.35")
    assert kubevirt_support.supports("v1.9.0-rc.1", "1.36")
    assert not kubevirt_support.supports("v1.6.0", "1.35")
    assert not kubevirt_support.supports("v0.59.0", "1.35")


def validate(tmp_path: Path, extra: str) -> tuple[int, str, str]:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(MINIMAL.read_text() + extra)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    return result.exit_code, result.stdout, result.stderr


def test_validate_warns_when_kubevirt_does_not_support_the_test_cluster(tmp_path: Path) -> None:
    code, out, err = validate(tmp_path, "        test:\n          kubevirt: v1.6.0\n")
    assert code == 0, err
    assert ": ok (" in out
    lines = err.splitlines()
    support = [line for line in lines if "[kubevirt-support]" in line]
    assert len(support) == 1  # once, though two arches use it
    assert re.match(r".*kvc\.yaml:\d+:\d+: warning: test.kubevirt v1\.6\.0 does not support "
                    r"Kubernetes 1\.35", support[0])
    assert any("[kubevirt-pin]" in line for line in lines)


def test_validate_is_quiet_for_the_default(tmp_path: Path) -> None:
    code, _, err = validate(tmp_path, "")
    assert code == 0
    assert "warning" not in err


def test_validate_warns_when_kubevirt_mode_cannot_run_ssh_on_an_arch(tmp_path: Path) -> None:
    """No checksum of virtctl v1.8.2 linux-arm64 could be traced to a source, so a
    forced kubevirt mode cannot run the ssh check there (auto falls back to qemu)."""
    code, _, err = validate(tmp_path, "        test:\n          mode: kubevirt\n"
                                      "          checks: [boot, ssh]\n")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "[virtctl-pin]" in line]
    assert len(lines) == 1, err
    assert "virtctl v1.8.2 for linux-arm64" in lines[0]
    assert re.match(r".*kvc\.yaml:\d+:\d+: warning: test.mode kubevirt", lines[0])
    assert ("v1.8.2", "amd64") in kubevirt_support.pinned_virtctl()
    code, _, err = validate(tmp_path, "        test:\n          checks: [boot, ssh]\n")
    assert "[virtctl-pin]" not in err  # auto: qemu mode runs ssh without virtctl


def test_each_warning_is_one_exact_line_at_the_key(tmp_path: Path) -> None:
    """From surviving mutants (docs/mutation-report.md): message texts and positions."""
    code, _, err = validate(tmp_path, "        test:\n          kubevirt: v1.6.0\n")
    assert code == 0, err
    text = (tmp_path / "kvc.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "kubevirt: v1.6.0" in t)
    where = f"{tmp_path / 'kvc.yaml'}:{line}:{text[line - 1].index('kubevirt') + 1}"
    pinned = ", ".join(sorted(kubevirt_support.pinned_kubevirt()))
    assert err.splitlines() == [
        f"{where}: warning: test.kubevirt v1.6.0 does not support Kubernetes 1.35, which the "
        "test cluster runs (KubeVirt's support table: docs/stages.md) [kubevirt-support]",
        f"{where}: warning: test.kubevirt v1.6.0 has no pinned checksums in "
        f".kvc/stages/tools.sh (pinned: {pinned}); the kubevirt test mode will refuse to "
        "download it [kubevirt-pin]"]


def test_a_release_without_tests_does_not_hide_the_next_ones_warning(tmp_path: Path) -> None:
    second = ('      - release_version: "13"\n'
              '        release_name: trixie\n'
              '        url: "https://example.org/debian-13-{arch}.qcow2"\n'
              '        insecure_skip_checksum: true\n'
              '        test:\n'
              '          kubevirt: v1.6.0\n')
    code, _, err = validate(tmp_path, "        test:\n          enabled: false\n" + second)
    assert code == 0, err
    assert "test.kubevirt v1.6.0 does not support" in err


def test_the_virtctl_warning_is_one_exact_line_at_test_mode(tmp_path: Path) -> None:
    """From a surviving mutant (docs/mutation/compiler.md): the warning's text and its
    `[virtctl-pin]` tag, exactly, at the `mode:` key that forces kubevirt mode."""
    code, _, err = validate(tmp_path, "        test:\n          mode: kubevirt\n"
                                      "          checks: [boot, ssh]\n")
    assert code == 0, err
    text = (tmp_path / "kvc.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "mode: kubevirt" in t)
    where = f"{tmp_path / 'kvc.yaml'}:{line}:{text[line - 1].index('mode') + 1}"
    assert err.splitlines() == [
        f"{where}: warning: test.mode kubevirt with the ssh check needs virtctl v1.8.2 for "
        "linux-arm64, which has no verified sha256 in .kvc/stages/tools.sh: that test stops "
        "before it starts; use test.mode auto or qemu for arm64 (docs/stages.md, "
        "'Pinned tools') [virtctl-pin]"]
