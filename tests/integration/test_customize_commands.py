"""kvc's table of virt-customize commands covers the installed virt-customize."""

from __future__ import annotations

import pytest

from kvc.compiler.customize import CUSTOMIZE_COMMANDS
from tests.integration.conftest import TCG_ENV, require, run

pytestmark = pytest.mark.integration

# Options of virt-customize that are not customizations: disks, output,
# appliance settings, the command file itself. Everything else it lists is a
# command sysprep.commands may use.
GENERAL = frozenset({
    "add", "attach", "attach-format", "color", "colors", "colour", "colours",
    "commands-from-file", "connect", "debug-gc", "domain", "dry-run", "dryrun", "echo-keys",
    "format", "help", "key", "keys-from-stdin", "memsize", "network", "no-network", "quiet",
    "smp", "verbose", "version", "wrap", "x", "short-options", "long-options",
})


def test_every_real_command_is_known_to_kvc(monkeypatch: pytest.MonkeyPatch) -> None:
    require("virt-customize")
    for name, value in TCG_ENV.items():
        monkeypatch.setenv(name, value)
    listing = run(["virt-customize", "--long-options"], timeout=60).stdout
    real = {line.strip().removeprefix("--") for line in listing.splitlines() if line.strip()}
    commands = real - GENERAL
    assert {"run-command", "edit", "write", "delete", "copy-in"} <= commands, sorted(real)
    assert commands <= set(CUSTOMIZE_COMMANDS), sorted(commands - set(CUSTOMIZE_COMMANDS))


def test_which_commands_take_an_argument_matches_the_real_help(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--help` shows `--name <ARG>` for commands with an argument, bare flags otherwise."""
    require("virt-customize")
    for name, value in TCG_ENV.items():
        monkeypatch.setenv(name, value)
    helptext = run(["virt-customize", "--help"], timeout=60).stdout
    seen = {}
    for line in helptext.splitlines():
        words = line.split()
        if words and words[0].startswith("--") and words[0][2:] in CUSTOMIZE_COMMANDS:
            seen[words[0][2:]] = len(words) > 1 and words[1].startswith("<")
    assert len(seen) > 20, helptext
    assert {name: CUSTOMIZE_COMMANDS[name] for name in seen} == seen
