"""Value rules for resolved image builds.

Rules run on resolved values (after templates), because that is what reaches
the runner: a tag template that expands to something Docker rejects must fail
here, at the line that wrote it, not an hour into a CI run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kvc.compiler import checksums
from kvc.compiler.customize import PACKAGE_COMMANDS, command_problem
from kvc.compiler.durations import parse_duration
from kvc.compiler.model import ImageBuild

# `virt-sysprep --list-operations` of libguestfs 1.48 (Debian 12) plus the
# operations newer releases added; `defaults` and `all` are its meta-names.
SYSPREP_OPERATIONS = frozenset({
    "abrt-data", "backup-files", "bash-history", "blkid-tab", "ca-certificates",
    "crash-data", "cron-spool", "customize", "dhcp-client-state", "dhcp-server-state",
    "dovecot-data", "firewall-rules", "flag-reconfiguration", "fs-uuids", "ipa-client",
    "kerberos-data", "kerberos-hostkeytab", "logfiles", "lvm-system-devices", "lvm-uuids",
    "machine-id", "mail-spool", "net-hostname", "net-hwaddr", "net-nmconn", "pacct-log",
    "package-manager-cache", "pam-data", "passwd-backups", "puppet-data-log",
    "rh-subscription-manager", "rhn-systemid", "rpm-db", "samba-db-log", "script",
    "smolt-uuid", "ssh-hostkeys", "ssh-userdir", "sssd-db-log", "tmp-files",
    "udev-persistent-net", "user-account", "utmp", "yum-uuid",
})
SYSPREP_META = frozenset({"defaults", "all"})

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_CHECKSUM = re.compile(r"(sha256|sha512):([0-9a-f]+)\Z")
# Debian, RPM and pacman names; `@group` for dnf groups; `:arch` qualifiers.
_PACKAGE = re.compile(r"@?[A-Za-z0-9_][A-Za-z0-9+._~-]*(:[A-Za-z0-9_-]+)?\Z")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:localhost|{_LABEL}(?:\.{_LABEL})+)(?::[0-9]{{1,5}})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_DOMAIN}(?:/{_COMPONENT})+\Z")
REGISTRY = re.compile(rf"{_DOMAIN}(?:/{_COMPONENT})*\Z")
_CONTAINER = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?\Z")
_DISK_SIZE = re.compile(r"\+?[1-9][0-9]*[KMGT]?\Z")
_KUBEVIRT = re.compile(r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?\Z")
_URL = re.compile(r"https?://[^\s/$.?#][^\s]*\Z")


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    message: str
    kind: str
    index: int | None = None


Rule = Callable[[ImageBuild], Iterable[Problem]]


def check_checksum(build: ImageBuild) -> Iterable[Problem]:
    key = f"release_checksum.{build.arch}"
    if build.verify_at_build:
        yield from (Problem(k, m, "checksum") for k, m in checksums.at_build_problems(build))
    if build.checksum is not None:
        yield from _checksum_format(key, build.checksum)
    elif build.insecure_skip_checksum or build.verifies_at_build:
        return
    elif build.checksum_url is not None:
        yield Problem("checksum_url", f"no checksum is pinned for {build.build_id}; run "
                      "`kvc lock` to pin it from checksum_url", "unpinned")
    else:
        yield Problem("@release", f"no release_checksum for {build.build_id}: add "
                      f"release_checksum.{build.arch}, a checksum_url (then `kvc lock`), or "
                      "insecure_skip_checksum: true", "checksum")


def _checksum_format(key: str, value: str) -> Iterable[Problem]:
    match = _CHECKSUM.match(value)
    if match is None:
        yield Problem(key, f"checksum '{value}' must be '<algo>:<hex>' with algo sha256 or "
                      "sha512 and lowercase hex", "checksum")
    elif len(match.group(2)) != _HEX_LENGTH[match.group(1)]:
        algo = match.group(1)
        yield Problem(key, f"a {algo} checksum has {_HEX_LENGTH[algo]} hex digits, this one "
                      f"has {len(match.group(2))}", "checksum")
    elif (placeholder := checksums.placeholder_message(value)) is not None:
        # "unpinned": what `kvc lock` is there to fix, so lock itself loads the spec.
        yield Problem(key, placeholder, "unpinned")


def check_packages(build: ImageBuild) -> Iterable[Problem]:
    for index, name in enumerate(build.sysprep.install):
        if not _PACKAGE.match(name):
            yield Problem("sysprep.install", f"'{name}' is not a valid package name", "package",
                          index)


def check_post_commands(build: ImageBuild) -> Iterable[Problem]:
    for index, command in enumerate(build.sysprep.post_commands):
        if not command.strip():
            yield Problem("sysprep.post_commands", "a post command must not be empty", "value",
                          index)


def check_operations(build: ImageBuild) -> Iterable[Problem]:
    for index, operation in enumerate(build.sysprep.operations):
        name = operation.removeprefix("-")
        if operation not in SYSPREP_META and name not in SYSPREP_OPERATIONS:
            yield Problem("sysprep.operations", _unknown_operation(name), "operation", index)


def _unknown_operation(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(SYSPREP_OPERATIONS | SYSPREP_META), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"'{name}' is not a virt-sysprep operation{hint}"


def check_disk_size(build: ImageBuild) -> Iterable[Problem]:
    size = build.sysprep.disk_size
    if size is not None and not _DISK_SIZE.match(size):
        yield Problem("sysprep.disk_size", f"disk_size '{size}' must look like '+10G' or "
                      "'20G' (units K, M, G, T; the disk is never shrunk)", "value")


def check_test(build: ImageBuild) -> Iterable[Problem]:
    if not _KUBEVIRT.match(build.test.kubevirt):
        yield Problem("test.kubevirt", f"'{build.test.kubevirt}' is not a KubeVirt release "
                      "such as v1.6.0", "value")
    if parse_duration(build.test.timeout) is None:
        yield Problem("test.timeout", f"timeout '{build.test.timeout}' must look like 15m, "
                      "900s or 1h30m", "value")
    for index, check in enumerate(build.test.checks):
        if check in build.test.checks[:index]:
            yield Problem("test.checks", f"check '{check}' is listed twice", "value", index)


def check_publish(build: ImageBuild) -> Iterable[Problem]:
    for index, tag in enumerate(build.publish.tags):
        if not _TAG.match(tag):
            yield Problem("publish.tags", f"'{tag}' is not a valid image tag (letters, digits, "
                          "'_', '.', '-'; at most 128; not starting with '.' or '-')", "tag",
                          index)
    if build.publish.refresh_seconds is None:
        yield Problem("publish.refresh", f"refresh '{build.publish.refresh}' must look like 7d, "
                      "12h, 30m, 2w or 0 (never)", "value")
    if not REPOSITORY.match(build.image):
        yield Problem("@image", f"'{build.image}' is not a valid image repository "
                      "(registry host, then lowercase path components)", "image")
    elif build.image.startswith(("index.docker.io/", "registry-1.docker.io/")):
        # Docker Hub's other names: docker login stores the credentials under the name
        # it is given (docker/cli@02f89d5c1716:cli/command/registry/login.go, runLogin),
        # but a push looks them up under Docker Hub's own key: index.docker.io is read
        # as docker.io (distribution/reference@4ca14034c406:normalize.go,
        # splitDockerDomain), and BuildKit maps registry-1.docker.io to that key
        # (moby/buildkit: session/auth/authprovider/authprovider.go, credentials).
        yield Problem("@image", f"'{build.image}': write Docker Hub as docker.io/...",
                      "image")
    elif _docker_hub_official(build.image):
        # Docker reads docker.io/NAME as docker.io/library/NAME, the official images
        # (distribution/reference@4ca14034c406:normalize.go, splitDockerDomain), which
        # no account can push to.
        yield Problem("@image", f"'{build.image}' would push to Docker Hub's official "
                      "images (library/); name the account: docker.io/ACCOUNT/...", "image")


def _docker_hub_official(image: str) -> bool:
    account, _, name = image.removeprefix("docker.io/").partition("/")
    return image.startswith("docker.io/") and (not name or account == "library")


def check_urls(build: ImageBuild) -> Iterable[Problem]:
    # A missing url is "" here (and reported as missing), a written one has an origin;
    # checksum_url is None when unset. An empty one written is refused like any non-URL.
    url = build.url if "url" in build.origins else None
    for key, value in (("url", url), ("checksum_url", build.checksum_url)):
        if value is not None and not _URL.match(value):
            yield Problem(key, f"'{value}' is not an http(s) URL", "url")


def check_download(build: ImageBuild) -> Iterable[Problem]:
    if build.download.in_ == "container" and not _CONTAINER.match(build.download.container):
        yield Problem("download.container", f"'{build.download.container}' is not a valid "
                      "container image reference", "image")


def check_makefile(build: ImageBuild) -> Iterable[Problem]:
    directory = build.sysprep.makefile_dir
    if build.sysprep.makefile and (directory.startswith("/") or ".." in directory.split("/")):
        yield Problem("sysprep.makefile_dir", "makefile_dir must be a path inside the "
                      "repository (relative, no '..')", "value")


def check_commands(build: ImageBuild) -> Iterable[Problem]:
    for index, (name, argument) in enumerate(build.sysprep.commands):
        problem = command_problem(name, argument)
        if problem:
            yield Problem("sysprep.commands", problem, "command", index)
        elif name in PACKAGE_COMMANDS and argument is not None:
            for package in argument.split(","):
                if not _PACKAGE.match(package.strip()):
                    yield Problem("sysprep.commands", f"'{package}' is not a valid package "
                                  "name", "package", index)


RULES: tuple[Rule, ...] = (
    check_checksum, check_packages, check_post_commands, check_operations, check_disk_size,
    check_test, check_publish, check_urls, check_download, check_makefile, check_commands,
)
