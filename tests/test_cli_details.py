"""CLI details a new user meets in the first hour (issue 13, "CLI details")."""

from __future__ import annotations

import hashlib
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvc.backends import BACKENDS
from kvc.cli import main
from kvc.commands import run as run_command

ROOT = Path(__file__).resolve().parent.parent
PROXIES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
           "ALL_PROXY")
DIGEST = hashlib.sha512(b"cli details").hexdigest()
SPEC = f"""\
kvc: 1
registry: ghcr.io/example
flavors:
  debian:
    arches: [amd64]
    publish: {{sign: true}}
    releases:
      - release_version: "12"
        url: "https://HOST/debian-12-genericcloud-{{arch}}.qcow2"
        release_checksum: {{amd64: "sha512:{DIGEST}"}}
"""


def _repo(tmp_path: Path, host: str = "cloud.example.org") -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "ci/kvc.yaml").write_text(SPEC.replace("HOST", host))
    return repo


def test_regenerate_hint_of_a_spec_below_the_root_works_as_printed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["compile", str(repo / "ci/kvc.yaml"), "-b", "github",
                                 "--out", str(repo)])
    assert first.exit_code == 0, first.output
    workflow = (repo / ".github/workflows/kvc.yml").read_text()
    hint = next(line for line in workflow.splitlines() if "Regenerate with:" in line)
    assert hint.endswith("kvc compile ci/kvc.yaml --backend github --out .")
    monkeypatch.chdir(repo)
    again = runner.invoke(main, hint.split("Regenerate with: kvc ", 1)[1].split())
    assert again.exit_code == 0, again.output
    assert "(0 changed)" in again.output
    assert not (repo / "ci/.github").exists()

    check = runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "github", "--check"])
    assert check.exit_code == 0, check.output
    assert check.output.count("\n") == 1
    assert "are current" in check.output


def test_regenerate_hint_quotes_a_path_the_shell_would_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    (repo / "ci").rename(repo / "image specs")
    runner = CliRunner()
    monkeypatch.chdir(repo)
    first = runner.invoke(main, ["compile", "image specs/kvc.yaml", "-b", "github", "--out", "."])
    assert first.exit_code == 0, first.output
    workflow = (repo / ".github/workflows/kvc.yml").read_text()
    hint = next(line for line in workflow.splitlines() if "Regenerate with:" in line)
    assert hint.endswith("kvc compile 'image specs/kvc.yaml' --backend github --out .")
    again = runner.invoke(main, shlex.split(hint.split("Regenerate with: kvc ", 1)[1]))
    assert again.exit_code == 0, again.output
    assert "(0 changed)" in again.output


def test_drift_names_the_exact_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo)
    runner = CliRunner()
    assert runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "circleci",
                                "--out", "."]).exit_code == 0
    config = repo / ".circleci/config.yml"
    config.write_text(config.read_text() + "# hand edit\n")
    check = runner.invoke(main, ["compile", "ci/kvc.yaml", "-b", "circleci", "--check"])
    assert check.exit_code == 1
    assert "run: kvc compile ci/kvc.yaml --backend circleci --out .\n" in check.output


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = CliRunner().invoke(main, ["compile", str(repo / "ci/kvc.yaml"), "-b", "jenkins"])
    assert result.exit_code == 2
    assert "Usage:" in result.output and "'jenkins'" in result.output


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "kvc", "explain", str(repo / "ci/kvc.yaml"),
                             "debian/12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before kvc writes, like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_run_offline_fails_fast_with_one_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, no name resolves: kvc run says so in one line and starts nothing (the
    stage scripts would retry the download for minutes)."""
    repo = _repo(tmp_path, host="kvc-offline-test.invalid")

    def offline(host: str, *args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"kvc run started a process offline: {args}")

    for proxy in PROXIES:
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.setattr(run_command.subprocess, "run", never)
    workdir = tmp_path / "w"
    result = CliRunner().invoke(main, ["run", str(repo / "ci/kvc.yaml"), "debian/12/amd64",
                                       "--stage", "build", "--workdir", str(workdir)])
    assert result.exit_code == 1, result.output
    assert result.output == (
        "kvc: error: cannot resolve kvc-offline-test.invalid (KVC_URL): Name or service not "
        "known; kvc run needs network access for this stage (offline? see "
        "docs/troubleshooting.md)\n")
    assert not workdir.exists()  # nothing written either


@pytest.mark.parametrize(("scheme", "proxy", "checked"), [
    ("https", "HTTPS_PROXY", False), ("https", "https_proxy", False),
    ("https", "ALL_PROXY", False), ("http", "all_proxy", False),
    ("http", "http_proxy", False),
    ("http", "HTTP_PROXY", True),  # curl reads http_proxy in lower case only
    ("https", "http_proxy", True),  # and only for http:// URLs
])  # fmt: skip
def test_run_behind_a_proxy_leaves_name_resolution_to_the_proxy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str, proxy: str,
        checked: bool) -> None:
    repo = _repo(tmp_path, host="images.example.org")
    spec = repo / "ci/kvc.yaml"
    spec.write_text(spec.read_text().replace("https://", f"{scheme}://"))
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(proxy, "http://proxy.example.org:3128")
    asked: list[str] = []

    def local_dns_knows_only_the_proxy(host: str, *args: object) -> list[object]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    started: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", local_dns_knows_only_the_proxy)
    monkeypatch.setattr(run_command.subprocess, "run",
                        lambda *a, **k: started.append(a) or subprocess.CompletedProcess(a, 0))
    result = CliRunner().invoke(main, ["run", str(repo / "ci/kvc.yaml"), "debian/12/amd64",
                                       "--stage", "build", "--workdir", str(tmp_path / "w")])
    assert (asked == ["images.example.org"]) is checked
    assert result.exit_code == (1 if checked else 0), result.output
    assert bool(started) is not checked


def test_plan_shows_image_reference_and_signing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = CliRunner().invoke(main, ["plan", str(repo / "ci/kvc.yaml")])
    header, row = result.output.splitlines()[:2]
    assert "IMAGE " in header and "SIGNED" in header
    assert "ghcr.io/example/debian" in row and " yes " in row


def test_publish_dry_run_lists_the_secrets(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    monkeypatch.delenv("KVC_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("KVC_REGISTRY_USER", "me")
    result = CliRunner().invoke(main, ["run", str(repo / "ci/kvc.yaml"), "debian/12",
                                       "--stage", "publish", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert ("# secrets this job reads from the environment: KVC_REGISTRY_USER, "
            "KVC_REGISTRY_PASSWORD (not set here: KVC_REGISTRY_PASSWORD)") in result.output


def test_compile_help_names_every_backend() -> None:
    shown = CliRunner().invoke(main, ["compile", "--help"]).output
    documented = (ROOT / "docs/cli.md").read_text()
    for name in BACKENDS:
        assert name in shown, name
    usage = "kvc compile SPEC --backend " + "\\|".join(sorted(BACKENDS)) + " "
    assert usage in documented
