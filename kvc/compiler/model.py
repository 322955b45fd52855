"""Resolved image builds: every value final, typed, and traceable to its layer.

These are plain frozen dataclasses rather than pydantic models because they
are built from values pydantic already validated, thousands of times per
compile; the resolver guarantees their invariants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kvc.spec.diagnostics import Position
from kvc.spec.loader import PathKey

UNAME_ARCH: Mapping[str, str] = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resolved value was written: a layer of the spec, or kvc itself."""

    layer: str
    pos: Position | None = None
    path: PathKey = ()

    def __str__(self) -> str:
        if self.pos is None:
            return f"({self.layer})"
        return f"{self.pos.file}:{self.pos.line} ({self.layer})"


@dataclass(frozen=True, slots=True)
class Download:
    in_: str
    container: str
    decompress: str
    convert: bool


@dataclass(frozen=True, slots=True)
class Sysprep:
    enabled: bool
    operations: tuple[str, ...]
    update: bool
    install: tuple[str, ...]
    post_commands: tuple[str, ...]
    selinux_relabel: bool
    makefile: bool
    makefile_dir: str
    makefile_target: str
    disk_size: str | None

    @property
    def runs_guest_code(self) -> bool:
        """Whether customization executes guest binaries (so needs a same-arch runner)."""
        return self.enabled and (self.update or bool(self.install) or bool(self.post_commands)
                                 or self.selinux_relabel)


@dataclass(frozen=True, slots=True)
class TestSettings:
    enabled: bool
    kubevirt: str
    checks: tuple[str, ...]
    timeout: str


_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Publish:
    tags: tuple[str, ...]
    latest: bool
    sign: bool
    refresh: str = "0"  # a duration (7d, 12h, 30m, 90s, 2w); "0" never refreshes

    @property
    def refresh_seconds(self) -> int | None:
        """The refresh age in seconds (0: never), or None when it is not a duration."""
        match = _DURATION.fullmatch(self.refresh.strip())
        if match is None:
            return None
        return int(match[1]) * _UNIT_SECONDS[match[2] or "s"]


@dataclass(frozen=True, slots=True)
class ImageBuild:
    """One flavor/release_version/arch with every value resolved."""

    flavor: str
    release_version: str
    release_name: str
    arch: str
    arches: tuple[str, ...]  # every arch of this image, this one included
    registry: str
    image: str
    url: str
    # The url as written (templates expanded); differs from url when it has a
    # '*' that `kvc lock` resolved to a concrete file (locked_url).
    url_pattern: str
    checksum: str | None
    checksum_url: str | None
    insecure_skip_checksum: bool
    download: Download
    sysprep: Sysprep
    test: TestSettings
    publish: Publish
    vars: Mapping[str, str]
    origins: Mapping[str, Origin]
    release_pos: Position

    @property
    def uname_arch(self) -> str:
        return UNAME_ARCH[self.arch]

    @property
    def image_id(self) -> str:
        return f"{self.flavor}/{self.release_version}"

    @property
    def build_id(self) -> str:
        return f"{self.flavor}/{self.release_version}/{self.arch}"
