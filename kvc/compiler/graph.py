"""Resolved builds -> the IR: per image, build per arch -> containerize -> test per arch -> publish.

No job of one image ever needs a job of another image, so a broken image
never blocks the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from kvc import stages
from kvc.compiler import env as stage_env
from kvc.compiler.driver import Resolved
from kvc.compiler.fingerprint import fingerprint, image_fingerprint
from kvc.compiler.model import ImageBuild
from kvc.compiler.naming import ImageNames, names_for
from kvc.ir import (
    BASE_RUNTIME,
    SIGN_RUNTIME,
    Artifact,
    Cache,
    Job,
    Pipeline,
    Registry,
    RegistryAccess,
    Runtime,
    Stage,
    Target,
    TestMode,
    Upstream,
)
from kvc.spec.diagnostics import Position

# The test stage's budget for bringing its cluster or VM host up, before
# test.timeout starts (KVC_UP_TIMEOUT's default in kvc/stages/test.sh); a test
# job gets both plus 15 minutes for tool installs, pulls and log collection.
TEST_UP_MINUTES = 25


def build_pipeline(resolved: Resolved) -> Pipeline:
    spec_dir = Path(resolved.path).parent
    images = resolved.images()
    jobs: list[Job] = []
    targets: list[Target] = []
    for builds in images.values():
        chain = image_jobs(builds, spec_dir)
        jobs += chain
        targets.append(target(builds, chain))
    return Pipeline(source=resolved.path, jobs=tuple(jobs), images=tuple(images),
                    targets=tuple(targets))


def image_jobs(builds: Sequence[ImageBuild], spec_dir: Path) -> list[Job]:
    names = names_for(builds[0].flavor, builds[0].release_version)
    build_jobs = [_build_job(names, b, spec_dir) for b in builds]
    containerize = _containerize_job(names, builds, build_jobs)
    tests = [_test_job(names, b, containerize) for b in builds if b.test.enabled]
    publish = _publish_job(names, builds, tests or [containerize], containerize)
    return [*build_jobs, containerize, *tests, publish]


def target(builds: Sequence[ImageBuild], jobs: Sequence[Job]) -> Target:
    """What the bake file, publish and the plan need of one image, typed (never read back)."""
    first = builds[0]
    names = names_for(first.flavor, first.release_version)
    publish = first.publish
    tags = (*publish.tags, *(("latest",) if publish.latest else ()))
    built = [(j.arch or "", j.fingerprint or "") for j in jobs if j.stage is Stage.BUILD]
    tested = [(j.arch or "", json.dumps(j.inputs)) for j in jobs if j.stage is Stage.TEST]
    return Target(
        image=first.image_id, slug=names.slug, flavor=first.flavor,
        release_version=first.release_version, repository=first.image,
        arches=tuple(b.arch for b in builds),
        tags=tags, context=names.context_dir,
        upstream=tuple(Upstream(b.arch, b.url, b.checksum or "") for b in builds),
        checks=tuple(dict.fromkeys(c for b in builds if b.test.enabled for c in b.test.checks)),
        fingerprint=image_fingerprint(built, tags, tested),
        refresh_seconds=publish.refresh_seconds or 0,
        attest=publish.attest,
    )


def registry_host(image: str) -> str:
    """The host `docker login` needs. A resolved image always starts with it (validation
    requires a host, rules.REPOSITORY: Docker Hub is written docker.io/...), so there is
    no Docker Hub default to guess."""
    return image.split("/", 1)[0]


def build_runner(build: ImageBuild) -> str:
    """Guest code must run on its own arch; pure disk surgery runs anywhere (amd64)."""
    return build.arch if build.sysprep.runs_guest_code else "amd64"


def _origin(build: ImageBuild, key: str | None = None) -> Position:
    """Where the spec asked for what a job does: the key's value, else the release."""
    origin = build.origins.get(key) if key else None
    return origin.pos if origin is not None and origin.pos is not None else build.release_pos


def _build_job(names: ImageNames, build: ImageBuild, spec_dir: Path) -> Job:
    env = stage_env.build_env(build)
    makefile_dir = build.sysprep.makefile_dir if build.sysprep.makefile else None
    digest = fingerprint(env, spec_dir, makefile_dir)[:20]
    artifact = Artifact(names.build_artifact(build.arch), names.build_dir(build.arch))
    return Job(
        id=names.job(Stage.BUILD, build.arch), stage=Stage.BUILD, image=build.image_id,
        arch=build.arch, runner=build_runner(build), needs=(),
        script=stages.entry(Stage.BUILD), inputs=tuple(env), produces=(artifact,),
        cache=Cache(names.cache_key(build.arch, digest), artifact.path,
                    names.build_output(build.arch)),
        fingerprint=digest, timeout_minutes=120, origin=_origin(build),
    )


def _containerize_job(names: ImageNames, builds: Sequence[ImageBuild],
                      build_jobs: Sequence[Job]) -> Job:
    staged = Artifact(names.staged_artifact, names.staged_dir)
    return Job(
        id=names.job(Stage.CONTAINERIZE), stage=Stage.CONTAINERIZE, image=builds[0].image_id,
        arch=None, runner="amd64", needs=tuple(j.id for j in build_jobs),
        script=stages.entry(Stage.CONTAINERIZE),
        inputs=tuple(stage_env.containerize_env(builds)),
        produces=(staged,), consumes=tuple(a for j in build_jobs for a in j.produces),
        timeout_minutes=60, registry=_registry(builds[0], RegistryAccess.PUSH),
        runtime=(*BASE_RUNTIME, Runtime.PUBLISHES),
        tools=("buildx",), origin=_origin(builds[0]),
    )


def _test_job(names: ImageNames, build: ImageBuild, containerize: Job) -> Job:
    logs = Artifact(names.log_artifact(build.arch), names.log_dir(build.arch),
                    handoff=False, keep_on_failure=True)
    return Job(
        id=names.job(Stage.TEST, build.arch), stage=Stage.TEST, image=build.image_id,
        arch=build.arch, runner=build.arch, needs=(containerize.id,),
        script=stages.entry(Stage.TEST), inputs=tuple(stage_env.test_env(build)),
        produces=(logs,), consumes=containerize.produces,
        timeout_minutes=build.test.timeout_minutes + TEST_UP_MINUTES + 15,
        registry=_registry(build, RegistryAccess.PULL), test_mode=TestMode(build.test.mode),
        origin=_origin(build),
    )


def _publish_job(names: ImageNames, builds: Sequence[ImageBuild], needs: Sequence[Job],
                 containerize: Job) -> Job:
    sign = builds[0].publish.sign
    return Job(
        id=names.job(Stage.PUBLISH), stage=Stage.PUBLISH, image=builds[0].image_id,
        arch=None, runner="amd64", needs=tuple(j.id for j in needs),
        script=stages.entry(Stage.PUBLISH), inputs=tuple(stage_env.publish_env(builds)),
        consumes=containerize.produces, timeout_minutes=30,
        registry=_registry(builds[0], RegistryAccess.PUSH),
        runtime=(*BASE_RUNTIME, Runtime.OUTPUT_FILE, *(SIGN_RUNTIME if sign else ())),
        needs_identity_token=sign, default_branch_only=True,
        tools=("buildx", "cosign") if sign else ("buildx",),
        origin=_origin(builds[0], "publish.sign" if sign else None),
    )


def _registry(build: ImageBuild, access: RegistryAccess) -> Registry:
    return Registry(access, registry_host(build.image))
