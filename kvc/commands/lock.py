"""``kvc lock``: pin release_checksum (and locked_url for wildcards) from checksum_url.

The only command that uses the network. A failure for one image build never
touches its existing pin; the exit status says whether everything was pinned.
"""

from __future__ import annotations

from pathlib import Path

import click

from kvc.compiler.driver import load
from kvc.compiler.model import ImageBuild
from kvc.lock import HttpFetcher, LockTarget, lock_text
from kvc.writer import write_atomic


def targets(builds: tuple[ImageBuild, ...]) -> list[LockTarget]:
    return [
        LockTarget(
            flavor=b.flavor, release_version=b.release_version, arch=b.arch,
            url=b.url_pattern, checksum_url=b.checksum_url, current_checksum=b.checksum,
            current_locked_url=b.url if b.url != b.url_pattern else None,
        )
        for b in builds if b.checksum_url
    ]


def run(spec: Path, dry_run: bool, fetcher: HttpFetcher | None = None) -> int:
    resolved = load(spec, allow_unpinned=True)
    wanted = targets(resolved.builds)
    if not wanted:
        click.echo(f"{spec}: nothing to lock (no release sets checksum_url)")
        return 0
    new_text, report = lock_text(resolved.doc.text, wanted, fetcher or HttpFetcher(),
                                 dry_run=dry_run)
    if not dry_run and new_text != resolved.doc.text:
        write_atomic(spec, new_text)
    click.echo(report.render(), nl=False)
    return report.exit_code
