"""Backends: one module per CI system, each turning the IR into files.

Adding a backend means writing one module with an ``Emitter`` subclass (tables,
step renderers, capability flags; see kvc/backends/walk.py and
docs/backends/adding-a-backend.md) and adding one line to ``_MODULES``; the IR
and the compiler never change.

A backend's module is imported when it is looked up, not here: a compile loads
only the emitter it writes with (benchmarks/README.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from kvc.backends.walk import Emitter

Backend: TypeAlias = "type[Emitter]"

# name -> (module, Emitter subclass); the name is the class's NAME.
_MODULES: Mapping[str, tuple[str, str]] = {
    "circleci": ("kvc.backends.circleci", "CircleCI"),
    "github": ("kvc.backends.github", "GitHub"),
    "gitlab": ("kvc.backends.gitlab", "GitLab"),
}


class _Registry(Mapping[str, Backend]):
    """The backends by name, each imported on first lookup."""

    def __getitem__(self, name: str) -> Backend:
        module, cls = _MODULES[name]
        backend: Backend = getattr(importlib.import_module(module), cls)
        return backend

    def __contains__(self, name: object) -> bool:  # a name check imports nothing
        return name in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


BACKENDS: Mapping[str, Backend] = _Registry()
