"""The spec's schema as pydantic models: the contract of SPEC.md in code.

Every layer (defaults, flavor, release, per_arch) accepts the same keys, all
optional, so each is validated on its own and merged later by the resolver;
only keys the user wrote are set, which is what lets the resolver tell which
layer a value came from. Models are strict: YAML's silent coercions (a
release_version of 24.10 read as the number 24.1) are exactly the mistakes
this tool exists to catch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

Arch = Literal["amd64", "arm64"]
ARCHES: tuple[Arch, ...] = ("amd64", "arm64")
Check = Literal["boot", "guest-agent", "ssh"]


def _join_packages(value: Any) -> Any:
    """``install`` is documented as a comma string; a YAML list is accepted too."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return value


def _one_command_each(items: list[Any]) -> list[Any]:
    """A mapping item is one command and its argument; the list gives the order."""
    for number, item in enumerate(items, 1):
        if isinstance(item, dict) and len(item) != 1:
            raise PydanticCustomError(
                "command", "item {number} holds {count} commands; write one item per "
                "command, e.g. {example}", {"number": number, "count": len(item),
                                             "example": "{run-command: '...'}"})
    return items


Commands = Annotated[list[str | dict[str, str]], AfterValidator(_one_command_each)]

# The schema shows what users may write (either form), not the joined string.
PackageList = Annotated[str, BeforeValidator(_join_packages,
                                             json_schema_input_type=str | list[str])]


class Model(BaseModel):
    # defer_build: a model's validator is built when first used, so a compile
    # never builds those it only reaches through Spec (benchmarks/README.md):
    # "defer model validator and serializer construction until the first model
    # validation" (pydantic/pydantic@v2.14.4:pydantic/config.py:798, as installed).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True,
                              defer_build=True)


class DownloadLayer(Model):
    """Where and how the upstream image is fetched and normalised."""

    in_: Literal["host", "container"] | None = Field(
        None, alias="in", description="host | container: where download and customize run")
    container: str | None = Field(None, description="image used when in: container")
    decompress: Literal["auto", "none", "gzip", "xz", "bzip2"] | None = Field(
        None, description="auto picks by suffix (.gz/.xz/.bz2)")
    convert: bool | None = Field(None, description="qemu-img convert the source to qcow2")


class SysprepLayer(Model):
    """Guest customization with libguestfs."""

    enabled: bool | None = Field(None, description="run customization at all")
    operations: list[str] | None = Field(
        None, description="virt-sysprep --operations ('-name' disables one)")
    update: bool | None = Field(None, description="update all guest packages")
    install: PackageList | None = Field(
        None, description="comma-delimited package list (a YAML list is accepted)")
    post_commands: list[str] | None = Field(
        None, description="commands run in the guest, in order")
    commands: Commands | None = Field(
        None, description="ordered virt-customize commands: {run-command: '...'}, "
        "{edit: 'FILE:EXPR'}, {write: 'FILE:CONTENT'}, ... or a bare flag such as update")
    selinux_relabel: bool | None = Field(None, description="virt-customize --selinux-relabel")
    makefile: bool | None = Field(None, description="also run make -C makefile_dir target")
    makefile_dir: str | None = Field(None, description="directory of the Makefile (a template)")
    makefile_target: str | None = Field(None, description="make target to run")
    disk_size: str | None = Field(None, description="grow the disk first, e.g. '+10G'")


class TestLayer(Model):
    """Boot test in kind + KubeVirt."""

    enabled: bool | None = Field(None, description="false: publish right after containerize")
    kubevirt: str | None = Field(None, description="KubeVirt release, e.g. v1.8.2")
    mode: Literal["auto", "kubevirt", "qemu"] | None = Field(
        None, description="how to boot: auto (KubeVirt with KVM or on amd64, else qemu), "
        "kubevirt or qemu")
    checks: list[Check] | None = Field(None, description="what the boot test verifies")
    timeout: str | None = Field(None, description="e.g. 15m, 900s, 1h")


class PublishLayer(Model):
    """Tags the tested image is promoted to."""

    tags: list[str] | None = Field(None, description="moving tags; a dated tag is always added")
    latest: bool | None = Field(None, description="also tag :latest")
    sign: bool | None = Field(None, description="cosign keyless signing")
    refresh: str | None = Field(
        None, description="rebuild when the published image is older than this (7d, 12h); "
        "'0' never")
    attest: bool | None = Field(None, description="SBOM and SLSA provenance attestations "
                                "in the image index, default true")


class ArchLayer(Model):
    """Keys every layer accepts (per_arch overrides cannot nest per_arch)."""

    arches: list[Arch] | None = Field(None, description="architectures to build")
    download: DownloadLayer | None = Field(None, description="see `download` below")
    sysprep: SysprepLayer | None = Field(None, description="see `sysprep` below")
    test: TestLayer | None = Field(None, description="see `test` below")
    publish: PublishLayer | None = Field(None, description="see `publish` below")
    url: str | None = Field(None, description="upstream image URL template")
    release_checksum: dict[Arch, str] | None = Field(
        None, description="per arch '<algo>:<hex>', algo sha256 | sha512")
    checksum_url: str | None = Field(None, description="lets `kvc lock` pin release_checksum")
    vars: dict[str, str] | None = Field(None, description="user template variables")


class Layer(ArchLayer):
    per_arch: dict[Arch, ArchLayer] | None = Field(
        None, description="overrides for one architecture")


class Release(Layer):
    release_version: str = Field(description="a string: '24.04', never a YAML number")
    release_name: str | None = Field(None, description="e.g. noble; usable as {release_name}")
    insecure_skip_checksum: bool = Field(
        False, description="build without verifying the download (shown in the plan)")
    verify_at_build: bool = Field(
        False, description="arches without a release_checksum verify against checksum_url "
        "when the build runs (for specs written offline; a pin is stronger)")
    locked_url: dict[Arch, str] | None = Field(
        None, description="written by `kvc lock` when url has a '*'")


class Flavor(Layer):
    releases: list[Release] = Field(min_length=1, description="one entry per release")


class CircleCIBackend(Model):
    machine_image: str | None = Field(None, description="default ubuntu-2404:current")
    resource_class: dict[Arch, str] | None = Field(
        None, description="default {amd64: medium, arm64: arm.medium}")
    context: list[str] | None = Field(
        None, description="contexts holding push credentials for containerize and publish, "
        "default [kvc-publish]")
    update_context: list[str] | None = Field(
        None, description="contexts of the scheduled update job, holding GH_TOKEN, default "
        "[kvc-update]")
    pull_context: list[str] | None = Field(
        None, description="contexts holding pull-only credentials for test jobs (private "
        "images), default none")
    default_branch: str | None = Field(None, description="the only branch that publishes, "
                                       "default main")


class GitHubBackend(Model):
    runs_on: dict[Arch, str] | None = Field(
        None, description="default {amd64: ubuntu-24.04, arm64: ubuntu-24.04-arm}")
    workflow: str | None = Field(None, description="file name under .github/workflows/")
    environment: str | None = Field(None, description="GitHub environment for publish")
    artifact_retention_days: int | None = Field(
        None, ge=1, le=90, description="days artifacts are kept, default 3, or 31 with an "
        "environment (longer than an approval may wait)")
    default_branch: str | None = Field(None, description="the only branch that publishes, "
                                       "default main")
    attest_provenance: bool | None = Field(
        None, description="also record GitHub artifact attestations (SLSA provenance) for "
        "the published digest, default false")


class GitLabBackend(Model):
    tags: dict[Arch, list[str]] | None = Field(
        None, description="runner tags per arch, default {amd64: [] (the default Linux runner), "
        "arm64: [saas-linux-small-arm64]}")
    image: str | None = Field(None, description="container image every job runs in, default "
                              "ubuntu:24.04")
    environment: str | None = Field(
        None, description="environment of containerize and publish; scope the push credentials "
        "to it, default kvc-publish")
    default_branch: str | None = Field(None, description="the only branch that publishes, "
                                       "default the project's default branch")


class Backends(Model):
    circleci: CircleCIBackend | None = None
    github: GitHubBackend | None = None
    gitlab: GitLabBackend | None = None


class Update(Model):
    schedule: str = Field(description="cron expression for the lock-and-recompile workflow")


class Spec(Model):
    """A kvc.yaml document."""

    model_config = ConfigDict(title="kvc spec", json_schema_extra={
        "$schema": "https://json-schema.org/draft/2020-12/schema"})

    kvc: Literal[1] = Field(description="format version")
    registry: str = Field(description="images publish as {registry}/{flavor}:{tag}")
    image: str | None = Field(None, description="repository template, default {registry}/{flavor}")
    backends: Backends | None = Field(None, description="per-backend settings (runners, "
                                      "contexts, workflow name)")
    update: Update | None = Field(None, description="also emit a scheduled job that runs "
                                  "`kvc lock`, recompiles and opens one pull request")
    defaults: Layer | None = Field(None, description="layer 1: every image inherits these")
    flavors: dict[str, Flavor] = Field(min_length=1, description="distribution flavor name -> "
                                       "its settings and releases")
