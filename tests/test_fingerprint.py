"""Fingerprints key the build cache: they change exactly when a build's output could."""

from __future__ import annotations

import shutil
from pathlib import Path

from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.ir import Stage

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples/multi-distro/kvc.yaml"


def _fingerprints(spec: Path) -> dict[str, str]:
    pipeline = build_pipeline(load(spec))
    return {job.id: job.fingerprint
            for job in pipeline.jobs if job.stage is Stage.BUILD}


def _copy(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "kvc.yaml"
    spec.write_text(text)
    return spec


def test_changing_one_flavor_changes_exactly_its_fingerprints(tmp_path: Path) -> None:
    original = EXAMPLE.read_text()
    own_install = '      install: "qemu-guest-agent,cloud-init,git,vim,tmux"\n'
    assert original.count(own_install) == 1, "the example's ubuntu flavor sets its own install"
    changed = original.replace(own_install, own_install.replace("tmux", "tmux,htop"))
    before = _fingerprints(_copy(tmp_path, original))
    after = _fingerprints(_copy(tmp_path, changed))
    assert before.keys() == after.keys()
    differ = {job for job in before if before[job] != after[job]}
    assert differ == {job for job in before if job.startswith("build-ubuntu-")}
    assert len(differ) >= 2


def test_comments_and_key_order_do_not_change_fingerprints(tmp_path: Path) -> None:
    original = EXAMPLE.read_text()
    commented = "\n".join(line + "  # note" if line.strip().startswith("release_name:")
                          else line for line in original.splitlines()) + "\n"
    assert _fingerprints(_copy(tmp_path, original)) == _fingerprints(
        _copy(tmp_path, "# a new comment\n" + commented))


def test_makefile_directory_contents_are_part_of_the_fingerprint(tmp_path: Path) -> None:
    spec = tmp_path / "kvc.yaml"
    spec.write_text((ROOT / "examples/minimal/kvc.yaml").read_text().replace(
        "flavors:\n", "defaults:\n  sysprep:\n    makefile: true\nflavors:\n", 1))
    make_dir = tmp_path / "images/debian"
    make_dir.mkdir(parents=True)
    (make_dir / "Makefile").write_text("customize:\n\ttrue\n")
    first = _fingerprints(spec)
    (make_dir / "Makefile").write_text("customize:\n\techo changed\n")
    second = _fingerprints(spec)
    assert all(first[job] != second[job] for job in first)
    shutil.rmtree(make_dir)
    assert _fingerprints(spec) != second



def test_a_change_to_the_tests_alone_changes_the_image_fingerprint(tmp_path: Path) -> None:
    """The plan skips an image whose fingerprint is published: a test-only change must run."""
    spec = Path(__file__).resolve().parents[1] / "examples/minimal/kvc.yaml"
    before = build_pipeline(load(spec)).targets[0].fingerprint
    changed = tmp_path / "kvc.yaml"
    changed.write_text(spec.read_text() + "defaults:\n  test: {timeout: 25m}\n")
    assert build_pipeline(load(changed)).targets[0].fingerprint != before
