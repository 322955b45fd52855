"""build.sh runs sysprep.commands in order, each value one argv element."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kvc.compiler.driver import load_source
from kvc.compiler.env import build_env

from .conftest import Stubs

PAYLOAD = b"QFI\xfb pretend disk image\n" * 64


def _env(stubs: Stubs) -> dict[str, str]:
    src = stubs.root.parent / "upstream.qcow2"
    src.write_bytes(PAYLOAD)
    return {
        "KVC_STUB_CURL_SRC": str(src),
        "KVC_URL": "https://images.example.invalid/alma/disk.qcow2",
        "KVC_CHECKSUM": "sha256:" + hashlib.sha256(PAYLOAD).hexdigest(),
        "KVC_OUTPUT": "artifacts/build/alma-9/amd64/disk.qcow2",
        "KVC_ARCH": "amd64",
        "KVC_FORCE_TCG": "true",
    }


def test_commands_follow_the_simple_keys_in_their_order(stubs: Stubs, hostile: str,
                                                        canary: Path) -> None:
    env = _env(stubs) | {
        "KVC_SYSPREP_UPDATE": "true",
        "KVC_SYSPREP_INSTALL": "git",
        "KVC_POST_COMMANDS_COUNT": "1",
        "KVC_POST_COMMAND_1": "true",
        "KVC_COMMANDS_COUNT": "5",
        "KVC_COMMAND_1_OP": "run-command", "KVC_COMMAND_1_ARG": hostile,
        "KVC_COMMAND_2_OP": "update",
        "KVC_COMMAND_3_OP": "edit", "KVC_COMMAND_3_ARG": "/etc/x:s/a/b/",
        "KVC_COMMAND_4_OP": "write", "KVC_COMMAND_4_ARG": "/etc/motd:",
        "KVC_COMMAND_5_OP": "delete", "KVC_COMMAND_5_ARG": "/var/cache/dnf",
        "KVC_SELINUX_RELABEL": "true",
    }
    result = stubs.run("build.sh", env)
    assert result.returncode == 0, result.stderr
    argv = stubs.calls("virt-customize")[0].argv
    assert argv[2:] == [
        "--update", "--install", "git", "--run-command", "true",
        "--run-command", hostile, "--update", "--edit", "/etc/x:s/a/b/",
        "--write", "/etc/motd:", "--delete", "/var/cache/dnf",
        "--selinux-relabel",
    ]  # fmt: skip
    assert not canary.exists()


def test_an_op_that_is_not_a_command_name_stops_the_build(stubs: Stubs) -> None:
    env = _env(stubs) | {"KVC_COMMANDS_COUNT": "1", "KVC_COMMAND_1_OP": "add /dev/sda"}
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert "is not a virt-customize command" in result.stderr
    assert "virt-customize" not in stubs.tools()


def test_a_missing_op_stops_the_build(stubs: Stubs) -> None:
    env = _env(stubs) | {"KVC_COMMANDS_COUNT": "2", "KVC_COMMAND_1_OP": "update"}
    result = stubs.run("build.sh", env)
    assert result.returncode != 0
    assert "KVC_COMMAND_2_OP" in result.stderr


SPEC = """\
kvc: 1
registry: ghcr.io/example
flavors:
  alma:
    releases:
      - release_version: "9"
        url: "https://example.org/alma-{arch}.qcow2"
        insecure_skip_checksum: true
        sysprep:
          install: ""
          commands:
            - run-command: "echo {flavor} {{literal}}"
            - update
            - write: "/etc/motd:hi"
"""


def test_compiled_environment_carries_commands_in_order() -> None:
    build = load_source(SPEC.encode(), "kvc.yaml").builds[0]
    env = dict(build_env(build))
    assert env["KVC_COMMANDS_COUNT"] == "3"
    assert [env.get(f"KVC_COMMAND_{i}_OP") for i in (1, 2, 3)] == [
        "run-command", "update", "write"]
    assert env["KVC_COMMAND_1_ARG"] == "echo alma {literal}"
    assert "KVC_COMMAND_2_ARG" not in env
    assert env["KVC_COMMAND_3_ARG"] == "/etc/motd:hi"


def test_commands_alone_run_guest_code_so_arm64_builds_on_arm64() -> None:
    spec = SPEC.replace('install: ""', 'install: ""\n          update: false')
    builds = load_source(spec.encode(), "kvc.yaml").builds
    assert all(b.sysprep.runs_guest_code for b in builds)
    bare = SPEC.split("          commands:", maxsplit=1)[0]
    assert not any(b.sysprep.runs_guest_code for b in load_source(bare.encode(), "k").builds)
