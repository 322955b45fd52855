"""Backends: one module per CI system, each turning the IR into files.

Adding a backend means writing one module with an ``Emitter`` subclass (tables,
step renderers, capability flags; see kvc/backends/walk.py and
docs/backends/adding-a-backend.md) and adding one line to ``BACKENDS``; the IR
and the compiler never change.
"""

from __future__ import annotations

from kvc.backends.circleci import CircleCI
from kvc.backends.github import GitHub
from kvc.backends.gitlab import GitLab
from kvc.backends.walk import Emitter

Backend = type[Emitter]

BACKENDS: dict[str, Backend] = {
    CircleCI.NAME: CircleCI,
    GitHub.NAME: GitHub,
    GitLab.NAME: GitLab,
}
