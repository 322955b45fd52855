"""Every variable a job's environment carries is in docs/stages.md's contract.

The stage scripts read their inputs only from KVC_* variables, and users read
docs/stages.md to know what a job received (and to run a stage by hand with
`kvc run`). A variable added to kvc/compiler/env.py without a line there is an
interface nobody can find: this test names it. Numbered and user-named families
are documented once (`KVC_COMMAND_<i>_OP`, `KVC_POST_COMMAND_1` …
`KVC_POST_COMMAND_N`, `KVC_VAR_<name>`).
"""

from __future__ import annotations

import re
from pathlib import Path

from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline

from ..backends.conftest import SPECS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "stages.md"

# (pattern of a family member, the name the family is documented under)
FAMILIES = (
    (re.compile(r"KVC_COMMAND_\d+_(OP|ARG)"), r"KVC_COMMAND_<i>_\1"),
    (re.compile(r"KVC_POST_COMMAND_\d+"), "KVC_POST_COMMAND_N"),
    (re.compile(r"KVC_VAR_\w+"), "KVC_VAR_<name>"),
)


def documented_name(name: str) -> str:
    for pattern, family in FAMILIES:
        if pattern.fullmatch(name):
            return pattern.sub(family, name)
    return name


def job_variables() -> set[str]:
    """Every variable name any job of any example or fixture spec sets."""
    names: set[str] = set()
    for spec in SPECS:
        for job in build_pipeline(load(spec)).jobs:
            names |= set(job.env_dict())
    return names


def test_every_job_variable_is_documented_in_the_stage_contract() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    names = job_variables()
    assert {"KVC_ARCH", "KVC_CHECKSUM", "KVC_TEST_MODE"} <= names  # the specs reach the env
    missing = sorted({documented_name(n) for n in names}
                     - set(re.findall(r"`(KVC_[^`]+)`", text)))
    assert not missing, f"add these to {CONTRACT.relative_to(ROOT)}: {missing}"


def test_families_are_recognised_only_in_their_own_shape() -> None:
    assert documented_name("KVC_COMMAND_12_ARG") == "KVC_COMMAND_<i>_ARG"
    assert documented_name("KVC_POST_COMMAND_3") == "KVC_POST_COMMAND_N"
    assert documented_name("KVC_VAR_motd") == "KVC_VAR_<name>"
    assert documented_name("KVC_COMMAND_X_OP") == "KVC_COMMAND_X_OP"
