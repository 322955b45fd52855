"""Resolved image builds: every value final, typed, and traceable to its layer.

These are plain frozen dataclasses rather than pydantic models because they
are built from values pydantic already validated, thousands of times per
compile; the resolver guarantees their invariants.

A section's fields carry kvc's built-in defaults, so one line here states a
key's resolved type and its default; the flat built-in layer is derived from
these by name (``layers.BUILTIN``). See docs/spec.md, "Adding a spec key".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kvc.compiler.durations import parse_age, parse_duration
from kvc.spec.diagnostics import Position
from kvc.spec.loader import PathKey

UNAME_ARCH: Mapping[str, str] = {"amd64": "x86_64", "arm64": "aarch64"}
DEFAULT_ARCHES: tuple[str, ...] = ("amd64", "arm64")


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
    in_: str = "host"
    container: str = "quay.io/kubevirt/libguestfs-tools:latest"
    decompress: str = "auto"
    convert: bool = False


@dataclass(frozen=True, slots=True)
class Sysprep:
    enabled: bool = True
    operations: tuple[str, ...] = ("defaults",)
    update: bool = False
    install: tuple[str, ...] = ("qemu-guest-agent", "cloud-init")
    post_commands: tuple[str, ...] = ()
    selinux_relabel: bool = False
    makefile: bool = False
    makefile_dir: str = "images/{flavor}"
    makefile_target: str = "customize"
    disk_size: str | None = None
    # Ordered virt-customize commands: (name, argument), argument None for flags.
    commands: tuple[tuple[str, str | None], ...] = ()

    @property
    def runs_guest_code(self) -> bool:
        """Whether customization executes guest binaries (so needs a same-arch runner)."""
        return self.enabled and (self.update or bool(self.install) or bool(self.post_commands)
                                 or self.selinux_relabel or bool(self.commands))


@dataclass(frozen=True, slots=True)
class TestSettings:
    enabled: bool = True
    kubevirt: str = "v1.8.2"
    checks: tuple[str, ...] = ("boot", "guest-agent")
    timeout: str = "15m"
    mode: str = "auto"

    @property
    def timeout_minutes(self) -> int:
        """The timeout rounded up to whole minutes (rules.py has refused bad ones)."""
        return max(1, -(-(parse_duration(self.timeout) or 0) // 60))



@dataclass(frozen=True, slots=True)
class Publish:
    tags: tuple[str, ...] = ("{release_version}",)
    latest: bool = False
    sign: bool = False
    # Rebuild when the published image is older: 7d, 12h, 30m, 90s, 2w; "0" never.
    refresh: str = "0"
    attest: bool = True

    @property
    def refresh_seconds(self) -> int | None:
        """The refresh age in seconds (0: never), or None when it is not an age."""
        return parse_age(self.refresh)


# The spec's section keys and the resolved types they become.
SECTIONS: Mapping[str, type] = {"download": Download, "sysprep": Sysprep, "test": TestSettings,
                                "publish": Publish}


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
    # Keys whose template failed to expand (already reported): they hold their raw
    # text, so rules skip them instead of reporting a second, dependent problem.
    unresolved: frozenset[str] = frozenset()
    # The release's `verify_at_build: true` (see verifies_at_build), and where it is
    # written (None when it is not): its problems point there.
    verify_at_build: bool = False
    verify_at_build_pos: Position | None = None

    @property
    def verifies_at_build(self) -> bool:
        """No pin, so the build job checks the download against checksum_url itself."""
        return self.verify_at_build and self.checksum is None and self.checksum_url is not None

    @property
    def uname_arch(self) -> str:
        return UNAME_ARCH[self.arch]

    @property
    def image_id(self) -> str:
        return f"{self.flavor}/{self.release_version}"

    @property
    def build_id(self) -> str:
        return f"{self.flavor}/{self.release_version}/{self.arch}"
