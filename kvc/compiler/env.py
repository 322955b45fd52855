"""The environment each stage script receives: exactly the values it uses.

This is the contract of docs/stages.md in code. Values are literals resolved
at compile time; nothing is looked up at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvc.compiler.model import ImageBuild
from kvc.compiler.naming import names_for

Env = list[tuple[str, str]]
BAKE_FILE = ".kvc/docker-bake.json"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def common(build: ImageBuild) -> Env:
    return [
        ("KVC_IMAGE_SLUG", names_for(build.flavor, build.release_version).slug),
        ("KVC_FLAVOR", build.flavor),
        ("KVC_RELEASE_VERSION", build.release_version),
        ("KVC_RELEASE_NAME", build.release_name),
    ]


def build_env(build: ImageBuild) -> Env:
    names = names_for(build.flavor, build.release_version)
    env = [*common(build), ("KVC_ARCH", build.arch), ("KVC_UNAME_ARCH", build.uname_arch),
           ("KVC_URL", build.url), ("KVC_CHECKSUM", build.checksum or ""),
           ("KVC_INSECURE_SKIP_CHECKSUM", _flag(build.insecure_skip_checksum)),
           *([("KVC_CHECKSUM_URL", build.checksum_url or "")] if build.verifies_at_build
             else []),
           *_download(build), *_sysprep(build), ("KVC_OUTPUT", names.build_output(build.arch))]
    return env


def _download(build: ImageBuild) -> Env:
    download = build.download
    env = [("KVC_DOWNLOAD_IN", download.in_)]
    if download.in_ == "container":
        env.append(("KVC_DOWNLOAD_CONTAINER", download.container))
    env += [("KVC_DECOMPRESS", download.decompress), ("KVC_CONVERT", _flag(download.convert)),
            ("KVC_DISK_SIZE", build.sysprep.disk_size or "")]
    return env


def _sysprep(build: ImageBuild) -> Env:
    sysprep = build.sysprep
    env = [("KVC_SYSPREP_ENABLED", _flag(sysprep.enabled))]
    if sysprep.enabled:
        env += [
            ("KVC_SYSPREP_OPERATIONS", ",".join(sysprep.operations)),
            ("KVC_SYSPREP_UPDATE", _flag(sysprep.update)),
            ("KVC_SYSPREP_INSTALL", ",".join(sysprep.install)),
            ("KVC_SELINUX_RELABEL", _flag(sysprep.selinux_relabel)),
            ("KVC_POST_COMMANDS_COUNT", str(len(sysprep.post_commands))),
            *((f"KVC_POST_COMMAND_{i}", cmd) for i, cmd in enumerate(sysprep.post_commands, 1)),
            *_commands(build),
        ]
    env.append(("KVC_MAKEFILE", _flag(sysprep.makefile)))
    if sysprep.makefile:
        env += [("KVC_MAKEFILE_DIR", sysprep.makefile_dir),
                ("KVC_MAKEFILE_TARGET", sysprep.makefile_target),
                *((f"KVC_VAR_{name}", value) for name, value in sorted(build.vars.items()))]
    return env


def _commands(build: ImageBuild) -> Env:
    """sysprep.commands: _OP is the command, _ARG (absent for flags) its argument.

    Nothing at all when the list is empty (build.sh reads a missing count as 0),
    so specs without commands compile exactly as before.
    """
    if not build.sysprep.commands:
        return []
    env = [("KVC_COMMANDS_COUNT", str(len(build.sysprep.commands)))]
    for i, (name, argument) in enumerate(build.sysprep.commands, 1):
        env.append((f"KVC_COMMAND_{i}_OP", name))
        if argument is not None:
            env.append((f"KVC_COMMAND_{i}_ARG", argument))
    return env


def containerize_env(builds: Sequence[ImageBuild]) -> Env:
    first = builds[0]
    names = names_for(first.flavor, first.release_version)
    return [*common(first), ("KVC_BAKE_FILE", BAKE_FILE), ("KVC_BAKE_TARGET", names.bake_target),
            ("KVC_IMAGE", first.image), ("KVC_ARCHES", ",".join(b.arch for b in builds)),
            ("KVC_STAGED_DIR", names.staged_dir)]


def test_env(build: ImageBuild) -> Env:
    names = names_for(build.flavor, build.release_version)
    test = build.test
    return [*common(build), ("KVC_ARCH", build.arch), ("KVC_STAGED_DIR", names.staged_dir),
            ("KVC_MANIFEST", names.manifest), ("KVC_KUBEVIRT_VERSION", test.kubevirt),
            ("KVC_CHECKS", ",".join(test.checks)), ("KVC_TIMEOUT", test.timeout),
            ("KVC_LOG_DIR", names.log_dir(build.arch))]


def publish_env(builds: Sequence[ImageBuild]) -> Env:
    first = builds[0]
    names = names_for(first.flavor, first.release_version)
    publish = first.publish
    return [*common(first), ("KVC_STAGED_DIR", names.staged_dir), ("KVC_IMAGE", first.image),
            ("KVC_TAGS", ",".join(publish.tags)), ("KVC_LATEST", _flag(publish.latest)),
            ("KVC_SIGN", _flag(publish.sign)), ("KVC_DATED_TAG_PREFIX", publish.tags[0]
                                                 if publish.tags else first.release_version)]
