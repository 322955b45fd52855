"""``kvc lock``: pin release_checksum (and locked_url for wildcards) from checksum_url.

The only command that uses the network, and only without ``--from``. A
failure for one image build never touches its existing pin; the exit status
says whether everything was pinned. Each checksum URL is downloaded once per
run however many arches and releases share it.
"""

from __future__ import annotations

from pathlib import Path

import click

from kvc.compiler.driver import load
from kvc.compiler.model import ImageBuild
from kvc.errors import FatalError
from kvc.lock import Fetcher, HttpFetcher, LockError, LockTarget, lock_text
from kvc.lock.local import LocalResolver, read_files
from kvc.writer import write_atomic

#: From this many distinct downloads on, each is announced (CI logs look alive).
PROGRESS_FROM = 3


def targets(builds: tuple[ImageBuild, ...]) -> list[LockTarget]:
    return [
        LockTarget(
            flavor=b.flavor, release_version=b.release_version, arch=b.arch,
            url=b.url_pattern, checksum_url=b.checksum_url, current_checksum=b.checksum,
            current_locked_url=b.url if b.url != b.url_pattern else None,
            unlockable=_shadowed(b),
        )
        for b in builds if b.checksum_url
    ]


def _shadowed(build: ImageBuild) -> str | None:
    """Why a pin written where kvc lock writes (the release's own release_checksum)
    would not be the build's value: a `per_arch` override of any layer comes after the
    release (kvc/compiler/resolve.py) and would keep its old checksum while lock said
    "pinned". (`locked_url` is a release key only: no override can hold it.)"""
    origin = build.origins.get(f"release_checksum.{build.arch}")
    if origin is None or not _in_per_arch(origin.path):
        return None
    return (f"its release_checksum comes from a per_arch override ({origin}), which a pin "
            f"in the release's own release_checksum would not change: move that value to "
            f"the release's release_checksum.{build.arch}, or update it by hand")


def _in_per_arch(path: tuple[str | int, ...]) -> bool:
    """Whether a spec path lies in `per_arch` of the defaults, a flavor or a release
    (matched by position: a flavor may itself be named `per_arch`)."""
    return (path[:2] == ("defaults", "per_arch")
            or (path[:1] == ("flavors",) and path[2:3] == ("per_arch",))
            or (path[:1] == ("flavors",) and path[2:3] == ("releases",)
                and path[4:5] == ("per_arch",)))


class Progress:
    """Say which checksum file is being downloaded when there are many."""

    def __init__(self, fetcher: Fetcher, urls: list[str]) -> None:
        self._fetcher = fetcher
        self._total = len(set(urls))
        self._seen: list[str] = []

    def get_text(self, url: str) -> str:
        if url not in self._seen:
            self._seen.append(url)
            if self._total >= PROGRESS_FROM:
                click.echo(f"kvc: fetching {len(self._seen)}/{self._total} {url}", err=True)
        return self._fetcher.get_text(url)


def run(spec: Path, dry_run: bool, fetcher: Fetcher | None = None,
        from_files: tuple[Path, ...] = ()) -> int:
    resolved = load(spec, allow_unpinned=True)
    wanted = targets(resolved.builds)
    if not wanted:
        click.echo(f"{spec}: nothing to lock (no release sets checksum_url)")
        return 0
    try:
        local = LocalResolver(read_files(list(from_files))) if from_files else None
    except LockError as err:
        raise FatalError(str(err)) from None
    network = Progress(fetcher or HttpFetcher(), [t.checksum_url for t in wanted])
    new_text, report = lock_text(resolved.doc.text, wanted, network, dry_run=dry_run,
                                 resolve_one=local)
    if not dry_run and new_text != resolved.doc.text:
        write_atomic(spec, new_text)
    click.echo(report.render(), nl=False)
    return report.exit_code
