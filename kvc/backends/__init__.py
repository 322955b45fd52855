"""Backends: one module per CI system, each turning the IR into files.

Adding a backend means writing one module with ``NAME``, ``OWNED_DIRS`` and
``emit`` and adding one line to ``BACKENDS``; the IR and the compiler never
change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from kvc.backends import circleci, github
from kvc.backends.base import Backend

BACKENDS: Final[Mapping[str, Backend]] = {
    circleci.NAME: circleci,
    github.NAME: github,
}
