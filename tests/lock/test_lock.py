"""End to end: real checksum files from a local mirror into a commented spec."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable

import pytest
from ruamel.yaml import YAML

from kvc.lock import HttpFetcher, LockTarget, Status, lock_text
from tests.lock.conftest import Mirror

OLD = "sha256:" + "0" * 64


def sha256(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def sha512(name: str) -> str:
    return "sha512:" + hashlib.sha512(name.encode()).hexdigest()


SPEC = f"""\
kvc: 1
registry: docker.io/containercraft   # images publish here

flavors:
  # Canonical's images
  ubuntu:
    releases:
      - release_version: "24.04"         # LTS
        url: "{{mirror}}/ubuntu/noble-server-cloudimg-{{arch}}.img"
        release_checksum:                # filled by kvc lock
          amd64: "{OLD}"
          arm64: "{sha256("noble-server-cloudimg-arm64.img")}"
        checksum_url: "{{mirror}}/ubuntu/SHA256SUMS"
  debian:
    releases:
      - release_version: "12"
        url: '{{mirror}}/debian/debian-12-generic-{{arch}}.qcow2'
        checksum_url: '{{mirror}}/debian/SHA512SUMS'
  centos:
    releases:
      - release_version: "9"
        url: "{{mirror}}/centos/CentOS-Stream-GenericCloud-9-*.x86_64.qcow2"
        checksum_url: "{{mirror}}/centos/CHECKSUM"
  almalinux:
    releases:
      - release_version: "9"
        url: "{{mirror}}/alma/AlmaLinux-9-GenericCloud-*.x86_64.qcow2"
        release_checksum: {{amd64: "{OLD}"}}   # stale on purpose
        checksum_url: "{{mirror}}/alma/CHECKSUM"
  fedora:
    releases:
      - release_version: "41"
        url: "{{mirror}}/fedora/Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2"
        checksum_url: "{{mirror}}/fedora/Fedora-Cloud-41-1.4-x86_64-CHECKSUM"
  opensuse:
    releases:
      - release_version: "15.6"
        url: "{{mirror}}/suse/openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2"
        checksum_url: "{{mirror}}/suse/openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256"
"""

ROUTES = {
    "/ubuntu/SHA256SUMS": "ubuntu-SHA256SUMS",
    "/debian/SHA512SUMS": "debian-SHA512SUMS",
    "/centos/CHECKSUM": "centos-stream-9-x86_64-CHECKSUM",
    "/alma/CHECKSUM": "almalinux-9-CHECKSUM",
    "/fedora/Fedora-Cloud-41-1.4-x86_64-CHECKSUM": "Fedora-Cloud-41-1.4-x86_64-CHECKSUM",
    "/suse/openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256": (
        "openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256"
    ),
}


@pytest.fixture
def served(mirror: Mirror) -> Mirror:
    for path, name in ROUTES.items():
        mirror.serve_fixture(path, name)
    return mirror


def spec(mirror: Mirror) -> str:
    return SPEC.replace("{mirror}", mirror.base)


def targets(mirror: Mirror, text: str | None = None) -> list[LockTarget]:
    """What the spec loader would hand over, read back crudely from the text."""
    doc = YAML(typ="safe").load(text or spec(mirror))
    found = []
    for flavor, body in doc["flavors"].items():
        for release in body["releases"]:
            for arch in ("amd64", "arm64") if flavor in ("ubuntu", "debian") else ("amd64",):
                pins = release.get("release_checksum") or {}
                locked = release.get("locked_url") or {}
                found.append(
                    LockTarget(
                        flavor,
                        release["release_version"],
                        arch,
                        release["url"].replace("{arch}", arch),
                        release["checksum_url"],
                        pins.get(arch),
                        locked.get(arch),
                    )
                )
    return found


def fetcher() -> HttpFetcher:
    return HttpFetcher(timeout=0.5, attempts=2, sleep=lambda _: None)


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """Removed and added lines, each in file order."""
    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return [d[2:] for d in diff if d[:1] == "-"], [d[2:] for d in diff if d[:1] == "+"]


def test_pins_every_distribution_and_keeps_the_rest(served: Mirror) -> None:
    text = spec(served)
    new, report = lock_text(text, targets(served), fetcher())
    assert report.exit_code == 0, report.render()
    centos = "CentOS-Stream-GenericCloud-9-20241118.0.x86_64.qcow2"
    alma = "AlmaLinux-9-GenericCloud-9.5-20241120.x86_64.qcow2"
    suse = "openSUSE-Leap-15.6-Minimal-VM.x86_64-15.6.0-Cloud-Build16.27.qcow2"
    removed, added = changes(text, new)
    assert removed == [
        f'          amd64: "{OLD}"',
        f'        release_checksum: {{amd64: "{OLD}"}}   # stale on purpose',
    ]
    assert added == [
        f'          amd64: "{sha256("noble-server-cloudimg-amd64.img")}"',
        "        release_checksum:",
        f'          amd64: "{sha512("debian-12-generic-amd64.qcow2")}"',
        f'          arm64: "{sha512("debian-12-generic-arm64.qcow2")}"',
        "        release_checksum:",
        f'          amd64: "{sha256(centos)}"',
        "        locked_url:",
        f'          amd64: "{served.base}/centos/{centos}"',
        "        locked_url:",
        f'          amd64: "{served.base}/alma/{alma}"',
        f'        release_checksum: {{amd64: "{sha256(alma)}"}}   # stale on purpose',
        "        release_checksum:",
        f'          amd64: "{sha256("Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2")}"',
        "        release_checksum:",
        f'          amd64: "{sha256(suse)}"',
    ]
    assert [o.status for o in report.outcomes].count(Status.UNCHANGED) == 1
    assert all(hits == 1 for hits in served.hits.values())  # ubuntu's file: once, two arches


def test_second_run_is_byte_identical(served: Mirror) -> None:
    first, _ = lock_text(spec(served), targets(served), fetcher())
    second, report = lock_text(first, targets(served, first), fetcher())
    assert second is first
    assert {o.status for o in report.outcomes} == {Status.UNCHANGED}
    assert report.lines()[-1] == "0 pinned, 8 unchanged, 0 failed"


def test_dry_run_reports_but_does_not_change(served: Mirror) -> None:
    text = spec(served)
    new, report = lock_text(text, targets(served), fetcher(), dry_run=True)
    assert new is text
    rendered = report.render()
    assert f"would pin ubuntu/24.04/amd64 {OLD} -> " in rendered
    assert "would pin debian/12/arm64 (none) -> sha512:" in rendered
    assert "centos/9/amd64 file: " in rendered
    assert rendered.endswith("7 would change, 1 unchanged, 0 failed\n")


FAILURES: dict[str, tuple[Callable[[Mirror], object], str]] = {
    "404": (lambda m: m.routes.pop("/alma/CHECKSUM"), "HTTP 404"),
    "malformed": (lambda m: m.serve("/alma/CHECKSUM", "<html>oops</html>\n"), "not a checksum"),
    "wrong length": (lambda m: m.serve("/alma/CHECKSUM", "abc123  x.qcow2\n"), "6 hex digits"),
    "missing entry": (
        lambda m: m.serve("/alma/CHECKSUM", f"{'a' * 64}  other.qcow2\n"),
        "no entry matches",
    ),
    "timeout": (
        lambda m: m.serve_fixture("/alma/CHECKSUM", "almalinux-9-CHECKSUM", delay=1.0),
        "timed out",
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_failure_keeps_the_old_pin_and_fails_the_run(served: Mirror, case: str) -> None:
    breaks, message = FAILURES[case]
    breaks(served)
    text = spec(served)
    new, report = lock_text(text, targets(served), fetcher())
    failed = [o for o in report.outcomes if o.status is Status.FAILED]
    assert [o.target.name for o in failed] == ["almalinux/9/amd64"]
    assert message in failed[0].reason
    assert f'release_checksum: {{amd64: "{OLD}"}}   # stale on purpose' in new
    assert f"(kept {OLD})" in report.render()
    assert report.exit_code == 1
    assert "locked_url" in new  # the other releases were still pinned


def test_connection_refused_keeps_pins(closed_port_url: str) -> None:
    text = 'flavors:\n  a:\n    releases:\n      - release_version: "1"\n        url: x\n'
    target = LockTarget("a", "1", "amd64", "https://h/a.img", closed_port_url, OLD)
    new, report = lock_text(text, [target], fetcher())
    assert new is text
    assert report.exit_code == 1
    assert "cannot connect" in report.outcomes[0].reason


def test_retries_recover_a_flaky_mirror(served: Mirror) -> None:
    served.routes["/ubuntu/SHA256SUMS"].fail_first = 1
    _, report = lock_text(spec(served), targets(served), fetcher())
    assert report.exit_code == 0
    assert served.hits["/ubuntu/SHA256SUMS"] == 2


def test_spec_refusal_becomes_a_failed_target(served: Mirror) -> None:
    text = spec(served)
    broken = [t for t in targets(served) if t.flavor == "almalinux"]
    broken = [LockTarget("almalinux", "9", "arm64", b.url, b.checksum_url) for b in broken]
    new, report = lock_text(text, broken, fetcher())
    assert new is text
    assert "add arm64 by hand" in report.outcomes[0].reason
    assert report.outcomes[0].target == broken[0]
    assert report.render().startswith("failed    almalinux/9/arm64: cannot write the pin: ")
    assert report.exit_code == 1
