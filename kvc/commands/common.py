"""Helpers shared by commands: looking up images by name with suggestions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kvc.errors import FatalError

if TYPE_CHECKING:  # the CLI checks backend names with suggest(), before any compile
    from kvc.compiler.driver import Resolved
    from kvc.compiler.model import ImageBuild


def suggest(name: str, choices: Iterable[str], what: str) -> FatalError:
    import difflib  # noqa: PLC0415 -- only a mistake needs it

    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(options)}"
    return FatalError(f"unknown {what} '{name}'{hint}")


def select_builds(resolved: Resolved, selector: str) -> tuple[ImageBuild, ...]:
    """``flavor/release[/arch]`` -> the matching builds, or a helpful error."""
    parts = selector.split("/")
    if len(parts) not in {2, 3}:
        raise FatalError(f"'{selector}' must be flavor/release or flavor/release/arch")
    flavor, release = parts[0], parts[1]
    if flavor not in resolved.spec.flavors:
        raise suggest(flavor, resolved.spec.flavors, "flavor")
    image = resolved.images().get(f"{flavor}/{release}")
    if image is None:
        versions = [r.release_version for r in resolved.spec.flavors[flavor].releases]
        raise suggest(release, versions, f"release of {flavor}")
    if len(parts) == 2:
        return image
    chosen = tuple(b for b in image if b.arch == parts[2])
    if not chosen:
        raise suggest(parts[2], [b.arch for b in image], f"arch of {flavor}/{release}")
    return chosen
