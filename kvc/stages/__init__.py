"""The stage scripts kvc ships, and which stages run each of them.

This one table feeds both the generated tree (every script is written under
``.kvc/stages/``) and the build fingerprint (every script the build stage
runs is hashed into the cache key), so a new shared file can never be
shipped but missed by the cache key, or the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Final

from kvc.ir import Stage

DIR: Final = ".kvc/stages"
EVERY_STAGE: Final = frozenset(Stage)

# script -> the stages that run it (directly, or by sourcing it)
SCRIPTS: Final[Mapping[str, frozenset[Stage]]] = {
    "lib.sh": EVERY_STAGE,
    "build.sh": frozenset({Stage.BUILD}),
    "containerize.sh": frozenset({Stage.CONTAINERIZE}),
    "test.sh": frozenset({Stage.TEST}),
    "test-qemu.sh": frozenset({Stage.TEST}),
    "publish.sh": frozenset({Stage.PUBLISH}),
}
# stage -> the script its job runs
ENTRY: Final[Mapping[Stage, str]] = {stage: f"{stage}.sh" for stage in Stage}


def entry(stage: Stage) -> str:
    """The path, in the generated tree, of the script a ``stage`` job runs."""
    return f"{DIR}/{ENTRY[stage]}"


def used_by(stage: Stage) -> tuple[str, ...]:
    return tuple(name for name, stages in SCRIPTS.items() if stage in stages)


def read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
