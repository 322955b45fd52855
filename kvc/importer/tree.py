"""A hand-written pipeline tree -> the releases to import, and why others are not.

Reads ``images/<dir>/`` (see image.py), ``bake.hcl`` for each image's flavor,
release, tags and the registry, and ``.circleci/config.yml`` for which images
and arches are active. Produces one ImportedRelease per importable image and
a report line for everything left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kvc.errors import FatalError
from kvc.importer import bake as bake_file
from kvc.importer import circleci
from kvc.importer.image import ImageResult, SourceProblem, read

_PLATFORM = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
# Files of an image directory whose content kvc has no key for.
_UNMAPPED = {"testvmi.yaml": "custom test VM (kvc boots its own VM with cloud-init "
                             "user-data)"}


@dataclass
class ImportedRelease:
    flavor: str
    release: str
    result: ImageResult
    origin: str  # e.g. "images/ubuntu-22.04/{env.sh,virt.sysprep}, bake.hcl:31"


@dataclass
class Tree:
    root: Path
    registry: str
    releases: list[ImportedRelease] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)       # "<dir>: why"
    left_out: list[str] = field(default_factory=list)      # inactive in CI
    notes: list[str] = field(default_factory=list)         # tree-wide
    problems: list[SourceProblem] = field(default_factory=list)


def read_tree(root: Path, registry: str | None) -> Tree:
    images = root / "images"
    if not images.is_dir():
        raise FatalError(f"{root}: no images/ directory (expected images/<name>/env.sh)")
    bake = _bake(root)
    workflows = _workflows(root)
    found_registry = registry or (bake.registry if bake else None)
    if not found_registry:
        raise FatalError(f"{root}: no registry found in bake.hcl's tag function; pass "
                         "--registry")
    tree = Tree(root, found_registry)
    if bake:
        tree.notes += bake.notes
        if bake.tag_suffix_vars:
            tree.notes.append("bake.hcl tags end in " + ", ".join(
                f"${{{v}}}" for v in bake.tag_suffix_vars) + " (a staging suffix); kvc "
                "stages by digest and publishes the plain tags")
    if workflows:
        tree.notes += workflows.notes
    for path in sorted(p for p in images.iterdir() if p.is_dir()):
        _image(tree, path, bake, workflows)
    return tree


def _bake(root: Path) -> bake_file.Bake | None:
    path = root / "bake.hcl"
    return bake_file.parse(path.read_text(encoding="utf-8", errors="replace")) \
        if path.is_file() else None


def _workflows(root: Path) -> circleci.Workflows | None:
    path = root / ".circleci" / "config.yml"
    if not path.is_file():
        return None
    return circleci.parse(path.read_text(encoding="utf-8", errors="replace"),
                          ".circleci/config.yml")


def _image(tree: Tree, path: Path, bake: bake_file.Bake | None,
           workflows: circleci.Workflows | None) -> None:
    label = f"images/{path.name}"
    if (workflows is not None and not workflows.notes and path.name not in workflows.arches
            and (path / "env.sh").is_file()):
        tree.left_out.append(f"{label}: in no workflow of .circleci/config.yml "
                             "(commented out there), so not imported")
        return
    result = read(path, label)
    tree.problems += result.problems
    if result.skip is not None:
        tree.skipped.append(f"{label}: {result.skip}")
        return
    target = bake.target_for(path.name) if bake else None
    flavor, release, where = _identity(tree, path.name, target, result)
    _publish(result, target, release)
    _arches(result, bake, target, workflows, path.name)
    if not result.arches:
        tree.skipped.append(f"{label}: no architecture left to build: "
                            + "; ".join(result.notes))
        return
    for name, why in _UNMAPPED.items():
        if (path / name).is_file():
            result.notes.append(f"{label}/{name} not imported: {why}")
    files = ",".join(result.sources)
    origin = f"{label}/{{{files}}}" if len(result.sources) > 1 else f"{label}/{files}"
    tree.releases.append(ImportedRelease(flavor, release, result,
                                         f"{origin}{where}"))


def _identity(tree: Tree, name: str, target: bake_file.Target | None,
              result: ImageResult) -> tuple[str, str, str]:
    if target is not None and target.tags:
        flavor, release = target.tags[0]
        return flavor, release, f", bake.hcl:{target.line}"
    flavor, sep, release = name.rpartition("-")
    if not sep:
        flavor, release = name, "latest"
    result.notes.append(f"no bake.hcl tag for {name}: flavor '{flavor}', release "
                        f"'{release}' taken from the directory name")
    return flavor, release, ""


def _publish(result: ImageResult, target: bake_file.Target | None, release: str) -> None:
    tags: list[str] = ["{release_version}"]
    latest = False
    flavor = target.tags[0][0] if target and target.tags else None
    for image, tag in (target.tags[1:] if target else []):
        if image != flavor:
            result.notes.append(f"bake tag {image}:{tag} names another repository; left out")
        elif tag == "latest":
            latest = True
        elif tag not in (release, *tags):
            tags.append(tag.replace("{", "{{").replace("}", "}}"))
    result.values["publish.tags"] = tags
    result.values["publish.latest"] = latest


def _arches(result: ImageResult, bake: bake_file.Bake | None,
            target: bake_file.Target | None, workflows: circleci.Workflows | None,
            name: str) -> None:
    active: set[str] | None = None
    if workflows is not None and workflows.arches.get(name):
        active = workflows.arches[name]
    if active is not None:
        dropped = [a for a in result.arches if a not in active]
        for arch in dropped:
            result.notes.append(f"{arch} resolves in env.sh but .circleci/config.yml does not "
                                "build it: left out")
        for arch in sorted(active - set(result.arches)):
            result.notes.append(f".circleci/config.yml builds {arch} but env.sh has no "
                                f"checksum or download file for it: left out")
        result.arches = [a for a in result.arches if a in active]
        for arch in dropped:
            result.checksums.pop(arch, None)
            result.urls.pop(arch, None)
    platforms = bake.platforms(target) if bake and target else None
    if platforms is not None:
        baked = {_PLATFORM.get(p, p) for p in platforms}
        missing = [a for a in result.arches if a not in baked]
        if missing:
            result.notes.append(f"bake.hcl target does not list {', '.join(missing)}; kvc "
                                "builds every arch that resolves")
    result.values["arches"] = list(result.arches)
    if len(result.urls) == 1:
        result.values["url"] = next(iter(result.urls.values()))
        result.urls = {}

