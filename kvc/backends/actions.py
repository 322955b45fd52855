"""Pinned third-party GitHub Actions used by generated workflows.

Pinning policy
--------------
Every ``uses:`` line that kvc emits refers to an action by its full 40-hex
commit SHA, never by a tag or branch. Tags are mutable: a release tag (and
especially a floating major tag such as ``v4``) can be moved to different code
at any time, so a tag pin does not protect generated pipelines from a
compromised or broken upstream release. A commit SHA is immutable. The
human-readable release is kept next to it and emitted as a trailing
``# vX.Y.Z`` comment so that reviewers, Dependabot and zizmor can tell which
release the SHA is meant to be.

Updating
--------
This table is updated deliberately, by hand, in a reviewed change; kvc never
resolves tags at run time, so the output of a given kvc version is fully
reproducible. When bumping an entry, pick the newest release of the intended
major, read its ``action.yml`` for changed inputs or runtime (all of these use
``node24`` or are composite, which needs a recent runner), and update the
``sha`` and ``version`` together.

Re-resolving a tag
------------------
Peel the tag to the commit it names (``^{commit}`` also dereferences
annotated tags, whose own object id is *not* the commit id)::

    git ls-remote https://github.com/OWNER/REPO 'refs/tags/vX.Y.Z^{}' 'refs/tags/vX.Y.Z'
    # or, in a local clone:
    git fetch --tags origin && git rev-parse 'vX.Y.Z^{commit}'

With ``ls-remote``, prefer the ``^{}`` line when present (annotated tag);
otherwise the plain line is already the commit. Confirm the commit is on the
project's default or release branch before using it.

The values below were resolved with ``git rev-parse 'vX.Y.Z^{commit}'``
against snapshots of each upstream repository taken in 2026; the newest
release of the chosen major present in each snapshot was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = ["ACTIONS", "Action"]


@dataclass(frozen=True, slots=True)
class Action:
    """A GitHub Action pinned to a commit.

    ``repo`` is ``owner/name`` (optionally ``owner/name/path`` for actions in a
    subdirectory), ``sha`` the full 40-hex commit, ``version`` the release tag
    that the commit was resolved from.
    """

    repo: str
    sha: str
    version: str

    def __post_init__(self) -> None:
        if len(self.sha) != 40 or any(c not in "0123456789abcdef" for c in self.sha):
            raise ValueError(f"{self.repo}: sha must be 40 lowercase hex digits, got {self.sha!r}")

    def uses(self) -> str:
        """Return the value for a step's ``uses:`` key."""
        return f"{self.repo}@{self.sha}"

    def comment(self) -> str:
        """Return the release tag to emit as a trailing comment after ``uses:``."""
        return self.version


ACTIONS: Final[Mapping[str, Action]] = MappingProxyType(
    {
        "checkout": Action(
            "actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"
        ),
        # v7 adds `archive: false` (upload a single file without zipping it).
        "upload-artifact": Action(
            "actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"
        ),
        # v8 supports `pattern` / `merge-multiple`, does not unzip non-zipped
        # artifacts, and fails on digest mismatch by default (`digest-mismatch`).
        "download-artifact": Action(
            "actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"
        ),
        "cache": Action("actions/cache", "27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
        "setup-buildx": Action(
            "docker/setup-buildx-action", "37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"
        ),
        "cosign-installer": Action(
            "sigstore/cosign-installer", "6f9f17788090df1f26f669e9d70d6ae9567deba6", "v4.1.2"
        ),
        "create-pull-request": Action(
            "peter-evans/create-pull-request", "5f6978faf089d4d20b00c7766989d076bb2fc7f1", "v8.1.1"
        ),
        # Mints a short-lived GitHub App token, so the update pull request triggers CI
        # (a pull request opened with GITHUB_TOKEN starts no workflow). Resolved with
        # git rev-parse 'v3.1.1^{commit}' in actions/create-github-app-token.
        "create-github-app-token": Action(
            "actions/create-github-app-token", "1b10c78c7865c340bc4f6099eb2f838309f1e8c3",
            "v3.1.1"
        ),
        # GitHub artifact attestations (backends.github.attest_provenance); v4 is a
        # wrapper over actions/attest. Resolved with git rev-parse 'v4.1.0^{commit}'.
        "attest-build-provenance": Action(
            "actions/attest-build-provenance", "a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32",
            "v4.1.0"
        ),
        "setup-python": Action(
            "actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"
        ),
    }
)
