"""``kvc explain``: every resolved value of an image build and where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kvc.commands.common import select_builds
from kvc.compiler.driver import load
from kvc.compiler.env import build_env
from kvc.compiler.model import ImageBuild
from kvc.errors import FatalError


def run(spec: Path, selector: str | None, as_json: bool = False) -> int:
    resolved = load(spec)
    builds = resolved.builds if selector is None else select_builds(resolved, selector)
    if as_json:
        click.echo(json.dumps([as_record(build) for build in builds], indent=2,
                              ensure_ascii=False))
        return 0
    if selector is None:
        raise FatalError("name an image (flavor/release[/arch]), or use --json for all")
    for index, build in enumerate(builds):
        if index:
            click.echo("")
        click.echo(_explain(build))
    return 0


def _explain(build: ImageBuild) -> str:
    lines = [f"# {build.build_id}", f"image: {build.image}", f"url: {build.url}"]
    rows = [(key, _show(value), str(build.origins[key])) for key, value in _values(build)]
    width = min(max(len(f"{key} = {value}") for key, value, _ in rows), 56)
    lines += [f"{key} = {value}".ljust(width) + f"  # {origin}" for key, value, origin in rows]
    lines.append("# stage environment of the build job:")
    lines += [f"{name}={_show(value)}" for name, value in build_env(build)]
    return "\n".join(lines)


def as_record(build: ImageBuild) -> dict[str, Any]:
    """One build for tools: every value by dotted spec path, with "FILE:LINE" origins.

    A per-arch key such as ``release_checksum.amd64`` appears once, without
    the arch, as the value this build uses.
    """
    values: dict[str, Any] = {}
    for key, value in _values(build):
        name = "release_checksum" if key.startswith("release_checksum.") else key
        values[name] = {"value": value, "origin": _origin(build, key)}
    return {"build": build.build_id, "image": build.image, "values": values}


def _origin(build: ImageBuild, key: str) -> str:
    origin = build.origins[key]
    return origin.layer if origin.pos is None else f"{origin.pos.file}:{origin.pos.line}"


def _values(build: ImageBuild) -> list[tuple[str, Any]]:
    out = []
    for key in build.origins:
        if key.startswith("release_checksum.") and key != f"release_checksum.{build.arch}":
            continue
        value = _lookup(build, key)
        out.append((key, value))
    return sorted(out)


def _lookup(build: ImageBuild, key: str) -> Any:
    section, _, leaf = key.partition(".")
    if section == "vars":
        return build.vars[leaf]
    if section == "release_checksum":
        return build.checksum
    if section in {"url", "checksum_url", "arches"}:
        return {"url": build.url, "checksum_url": build.checksum_url,
                "arches": list(build.arches)}[section]
    group = getattr(build, section)
    value = getattr(group, "in_" if leaf == "in" else leaf)
    if key == "sysprep.commands":
        return [name if arg is None else {name: arg} for name, arg in value]
    return list(value) if isinstance(value, tuple) else value


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
