"""virt-customize ``--commands-from-file`` scripts, read as virt-customize reads them.

The rules are libguestfs's (libguestfs/libguestfs-common@46605b8:
mlcustomize/customize_cmdline.ml ``customize_read_from_file`` and
mlstdutils/std_utils.ml ``lines_split``): a backslash at the end of a line
joins the next line, keeping the newline but dropping the backslash; each
line is left-trimmed; empty lines and lines starting with ``#`` are skipped;
the command is everything before the first space, the argument everything
after it (an empty argument when there is no space).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str
    line: int  # 1-based line where the command starts


def parse(text: str) -> list[Command]:
    commands: list[Command] = []
    for number, raw in _logical_lines(text):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name, _, argument = line.partition(" ")
        commands.append(Command(name, argument, number))
    return commands


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 1
    for number, raw in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1] + "\n")
            continue
        out.append((start, "".join(pending) + raw))
        pending = []
    if pending:
        out.append((start, "".join(pending)))
    return out
