"""``kvc run``: one job locally, with exactly the script and environment CI uses.

The shared generated files (stage scripts, Containerfile, bake file,
manifests) are written into the work directory first, as `kvc compile` would,
so the script that runs is byte-for-byte the one CI runs.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import click

from kvc.backends import buildfiles
from kvc.backends.base import EmitInput
from kvc.commands.common import select_builds
from kvc.commands.compile import default_root, relative_name
from kvc.compiler import dag
from kvc.compiler.driver import Resolved, load
from kvc.compiler.graph import build_pipeline
from kvc.errors import FatalError
from kvc.ir import Job, Pipeline, Stage
from kvc.output import Scope, write_tree
from kvc.spec.models import Backends


def find_job(pipeline: Pipeline, image_id: str, stage: Stage, arch: str | None) -> Job:
    job = pipeline.find(image_id, stage, arch)
    if job is not None:
        return job
    raise FatalError(f"{image_id} has no {stage} job" + (f" for {arch}" if arch else "")
                     + (" (test.enabled is false)" if stage is Stage.TEST else ""))


def _job(resolved: Resolved, selector: str, stage: Stage) -> tuple[Pipeline, Job]:
    builds = select_builds(resolved, selector)
    per_arch = stage in {Stage.BUILD, Stage.TEST}
    if per_arch and len(builds) != 1:
        raise FatalError(f"the {stage} stage runs per arch: name one, e.g. {selector}/"
                         f"{builds[0].arch}")
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    return pipeline, find_job(pipeline, builds[0].image_id, stage,
                              builds[0].arch if per_arch else None)


def check_hosts_resolve(job: Job) -> None:
    """Fail in a second, not after minutes of retries, when a host cannot be resolved.

    The stage scripts retry downloads generously, which is right for a flaky
    mirror and wrong for a laptop that is offline: a name that does not
    resolve now will not resolve on the fifth attempt either.
    """
    for name, value in job.inputs:
        host = urlsplit(value).hostname if value.startswith(("http://", "https://")) else None
        if host is None or _proxied(value):
            continue
        try:
            socket.getaddrinfo(host, None)
        except (socket.gaierror, UnicodeError) as error:
            raise FatalError(f"cannot resolve {host} ({name}): {error.args[-1]}; kvc run needs "
                             "network access for this stage (offline? see "
                             "docs/troubleshooting.md)") from None


def _proxied(url: str) -> bool:
    """Whether curl sends ``url`` through a proxy from the environment, which resolves
    the name itself (the machine's own DNS may know only the proxy).

    curl reads `http_proxy` (lower case only), `https_proxy`/`HTTPS_PROXY` and
    `all_proxy`/`ALL_PROXY` (curl/curl@e7cb4a85befe0e87830c2559d77c3474d618efad:
    docs/cmdline-opts/_ENVIRONMENT.md:4-23). NO_PROXY is not consulted: a skipped
    check costs only the early failure.
    """
    names = ["http_proxy"] if url.startswith("http://") else ["https_proxy", "HTTPS_PROXY"]
    return any(os.environ.get(name) for name in [*names, "all_proxy", "ALL_PROXY"])


def command_line(job: Job) -> str:
    env = " ".join(f"{name}={shlex.quote(value)}" for name, value in job.env_dict().items())
    return f"env {env} bash {shlex.quote(job.script)}"


def run(spec: Path, selector: str, stage: str, workdir: Path | None, dry_run: bool) -> int:
    resolved = load(spec)
    pipeline, job = _job(resolved, selector, Stage(stage))
    if dry_run:
        click.echo(f"# job {job.id} (runner: {job.runner})")
        secrets = job.registry.credentials
        if secrets:
            missing = [name for name in secrets if name not in os.environ]
            click.echo(f"# secrets this job reads from the environment: {', '.join(secrets)}"
                       + (f" (not set here: {', '.join(missing)})" if missing else ""))
        click.echo(command_line(job))
        return 0
    check_hosts_resolve(job)
    # The tree `kvc compile` wrote for this spec (at the repository root for a
    # spec below it), so run never starts a second .kvc/ beside the spec.
    root = workdir if workdir is not None else default_root(spec)
    # Named exactly as `kvc compile` names it, so the files stay byte-identical.
    name = relative_name(spec, root)
    source = EmitInput(pipeline=pipeline, spec_name=name, backends=Backends())
    write_tree(root, buildfiles.emit(source), Scope((), name))
    env = {**os.environ, **job.env_dict()}
    click.echo(f"kvc: running {job.id} in {root}", err=True)
    return subprocess.run(["bash", job.script], cwd=root, env=env, check=False).returncode
