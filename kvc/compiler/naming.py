"""The one place every name is derived from an image's identity.

Job ids, artifact names, workspace paths, cache keys, bake targets and staging
tags all come from here, so they can never disagree. The character rule is the
strictest any backend imposes (GitHub job ids: ``[A-Za-z0-9_-]``), which makes
every name valid everywhere; two identities that sanitise to the same slug are
rejected by the compiler rather than silently merged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize(text: str) -> str:
    return _UNSAFE.sub("-", text)


@dataclass(frozen=True, slots=True)
class ImageNames:
    """Names for one image (flavor/release_version) and its per-arch builds."""

    flavor: str
    release_version: str

    @property
    def slug(self) -> str:
        return sanitize(f"{self.flavor}-{self.release_version}")

    def job(self, stage: str, arch: str | None = None) -> str:
        return f"{stage}-{self.slug}" + (f"-{arch}" if arch else "")

    @property
    def bake_target(self) -> str:
        return self.slug

    def build_dir(self, arch: str) -> str:
        return f"artifacts/build/{self.slug}/{arch}"

    def build_output(self, arch: str) -> str:
        return f"{self.build_dir(arch)}/disk.qcow2"

    def build_artifact(self, arch: str) -> str:
        return f"build-{self.slug}-{arch}"

    @property
    def context_dir(self) -> str:
        return f"artifacts/build/{self.slug}"

    @property
    def staged_dir(self) -> str:
        return f"artifacts/staged/{self.slug}"

    @property
    def staged_artifact(self) -> str:
        return f"staged-{self.slug}"

    def log_dir(self, arch: str) -> str:
        return f"artifacts/test-logs/{self.slug}-{arch}"

    def log_artifact(self, arch: str) -> str:
        return f"test-logs-{self.slug}-{arch}"

    @property
    def manifest(self) -> str:
        return f".kvc/manifests/{self.slug}.yaml"

    @property
    def user_data(self) -> str:
        return f".kvc/manifests/{self.slug}.user-data"

    def cache_key(self, arch: str, fingerprint: str) -> str:
        return f"kvc-build-{self.slug}-{arch}-{fingerprint}"


def names_for(flavor: str, release_version: str) -> ImageNames:
    return ImageNames(flavor, release_version)
