"""The files kvc ships with its stages, and which stages use each of them.

This one table feeds both the generated tree (every file is written under
``.kvc/``, scripts under ``.kvc/stages/``) and the fingerprints (every file a
stage uses is hashed into that stage's key: build outputs, packaging, tests),
so a new shared file can never be shipped but missed by a cache key, or the
other way round. tests/backends/test_walk.py checks that every file in this
package is in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Final

from kvc.ir import Stage

DIR: Final = ".kvc/stages"
EVERY_STAGE: Final = frozenset(Stage)

# file -> the stages that use it (run it, source it, or build from it), in the order
# each stage's fingerprint hashes them
SCRIPTS: Final[Mapping[str, frozenset[Stage]]] = {
    "Containerfile": frozenset({Stage.CONTAINERIZE}),  # containerize bakes the image with it
    "lib.sh": EVERY_STAGE,
    "build.sh": frozenset({Stage.BUILD}),
    "containerize.sh": frozenset({Stage.CONTAINERIZE}),
    "tools.sh": frozenset({Stage.TEST}),  # pinned downloads (lib.sh's kvc_fetch_pinned)
    "test.sh": frozenset({Stage.TEST}),
    "test-kubevirt.sh": frozenset({Stage.TEST}),
    "test-qemu.sh": frozenset({Stage.TEST}),
    "publish.sh": frozenset({Stage.PUBLISH}),
    "plan.sh": frozenset(),  # the plan job runs it, before any stage
}
# stage -> the script its job runs
ENTRY: Final[Mapping[Stage, str]] = {stage: f"{stage}.sh" for stage in Stage}


# The plan stage (contract 7 of docs/stages.md): its script and its generated input.
PLAN_SCRIPT: Final = f"{DIR}/plan.sh"
PLAN_DATA: Final = ".kvc/plan.tsv"
PLAN_DIR: Final = "artifacts/plan"


CONTAINERFILE: Final = ".kvc/Containerfile"


def path(name: str) -> str:
    """Where ``name`` (a key of SCRIPTS) is written in the generated tree."""
    return CONTAINERFILE if name == "Containerfile" else f"{DIR}/{name}"


def entry(stage: Stage) -> str:
    """The path, in the generated tree, of the script a ``stage`` job runs."""
    return f"{DIR}/{ENTRY[stage]}"


def used_by(stage: Stage) -> tuple[str, ...]:
    return tuple(name for name, stages in SCRIPTS.items() if stage in stages)


def read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
