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
from collections.abc import Iterator, Mapping, MutableMapping
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


class _Registry(MutableMapping[str, "Backend"]):
    """The backends by name, each imported on first lookup (tests may add their own)."""

    def __init__(self, modules: Mapping[str, tuple[str, str]]) -> None:
        self._modules = dict(modules)
        self._classes: dict[str, Backend] = {}

    def __getitem__(self, name: str) -> Backend:
        found = self._classes.get(name)
        if found is None:
            module, cls = self._modules[name]
            found = self._classes[name] = getattr(importlib.import_module(module), cls)
        return found

    def __setitem__(self, name: str, backend: Backend) -> None:
        self._classes[name] = backend

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._classes.pop(name, None)
        self._modules.pop(name, None)

    def __contains__(self, name: object) -> bool:  # a name check imports nothing
        return name in self._classes or name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._modules), **dict.fromkeys(self._classes)})

    def __len__(self) -> int:
        return len(self._modules.keys() | self._classes.keys())


BACKENDS: MutableMapping[str, Backend] = _Registry(_MODULES)
