"""Whether a backend's test jobs can pull the staged image, and the warning compile prints.

A test job pulls the staged image with pull-only credentials (contract 2 of
docs/stages.md). GitHub hands them the run's own token with ``packages: read`` on
ghcr.io, GitLab the job token on its own registry; everywhere else they come from
the user. On CircleCI that is ``backends.circleci.pull_context``, and kvc knows
when it is unset: then every test pulls anonymously, which fails with
ErrImagePull for a private image. A new ghcr.io package is private ("When you
first publish a package, the default visibility is private":
github/docs@2c326fe:content/packages/working-with-a-github-packages-registry/
working-with-the-container-registry.md:46), so on CircleCI the first push of a
ghcr.io image would fail its tests. ``pull_context: []`` says the images are
public and silences the warning. GitLab's CI/CD variables are invisible to kvc, so
GitLab gets no warning here; the test stage says at run time that it pulled
anonymously (test.sh).
"""

from __future__ import annotations

from kvc.compiler.driver import Resolved
from kvc.compiler.graph import registry_host

# Registries whose new repositories are private (see the module docstring).
PRIVATE_BY_DEFAULT = frozenset({"ghcr.io"})


def circleci_warnings(resolved: Resolved) -> list[str]:
    """One `FILE:LINE:COL: warning: ...` line per registry host CircleCI's tests pull blind."""
    backends = resolved.spec.backends
    circleci = backends.circleci if backends is not None else None
    if circleci is not None and circleci.pull_context is not None:
        return []
    hosts = dict.fromkeys(registry_host(b.image) for b in resolved.builds if b.test.enabled)
    where = resolved.doc.pos(("backends", "circleci") if circleci is not None else ("registry",))
    lines = []
    for host in hosts:
        private = (f" A new {host} package is private, so the first test would fail with "
                   "ErrImagePull." if host in PRIVATE_BY_DEFAULT else "")
        lines.append(
            f"{where}: warning: CircleCI test jobs pull the staged {host} images without "
            f"credentials: backends.circleci.pull_context is not set.{private} Set it to a "
            "context holding read-only KVC_PULL_USER/KVC_PULL_PASSWORD, or to [] when the "
            "images are public (docs/backends/circleci.md) [pull-credentials]")
    return lines
