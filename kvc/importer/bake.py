"""What kvc import needs from a ``docker buildx bake`` HCL file, read with regexes.

Only the shapes such pipelines use are understood: ``variable "X" {default =
"..."}``, one tag function ``function "tag" {params = [image, tag] result =
...}`` whose result is a string or ``equal("", VAR) ? "..." : "..."``, and
``target "name" {inherits = [...] platforms = [...] tags = [tag("a", "b"),
...] args = {FLAVOR = "..."}}``. ``#`` and ``//`` comment lines are ignored
(that is how tags get switched off). Nothing is evaluated beyond that; what
does not fit is reported as a note and the importer falls back to the image
directory's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STRING = r'"((?:[^"\\]|\\.)*)"'
_BLOCK = re.compile(r'^\s*(variable|function|target)\s+"([^"]+)"\s*\{', re.M)
_DEFAULT = re.compile(r"\bdefault\s*=\s*" + _STRING)
_RESULT_COND = re.compile(r'\bresult\s*=\s*equal\(\s*""\s*,\s*([A-Za-z_]\w*)\s*\)\s*\?\s*'
                          + _STRING + r"\s*:\s*" + _STRING)
_RESULT = re.compile(r"\bresult\s*=\s*" + _STRING)
_TAG_CALL = re.compile(r"\btag\(\s*" + _STRING + r"\s*,\s*" + _STRING + r"\s*\)")
_LIST = r"\s*=\s*\[([^\]]*)\]"
_FLAVOR_ARG = re.compile(r"\bFLAVOR\s*=\s*" + _STRING)
_VAR_REF = re.compile(r"\$\{([A-Za-z_]\w*)\}")


@dataclass
class Target:
    name: str
    line: int
    tags: list[tuple[str, str]] = field(default_factory=list)  # (image, tag) of tag()
    platforms: list[str] | None = None
    inherits: list[str] = field(default_factory=list)
    flavor_arg: str | None = None


@dataclass
class Bake:
    registry: str | None = None
    tag_suffix_vars: list[str] = field(default_factory=list)  # e.g. FLAG in "${tag}-${FLAG}"
    targets: dict[str, Target] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def target_for(self, image_dir: str) -> Target | None:
        for target in self.targets.values():
            if (target.flavor_arg or target.name) == image_dir:
                return target
        return None

    def platforms(self, target: Target) -> list[str] | None:
        if target.platforms is not None:
            return target.platforms
        for parent in target.inherits:
            found = self.targets.get(parent)
            if found is not None and found is not target:
                return self.platforms(found)
        return None


def parse(text: str) -> Bake:
    code = _strip_comments(text)
    bake = Bake()
    variables: dict[str, str] = {}
    tag_result: str | None = None
    for kind, name, body, line in _blocks(code):
        if kind == "variable":
            default = _DEFAULT.search(body)
            variables[name] = default.group(1) if default else ""
        elif kind == "function" and name == "tag":
            tag_result = body
        elif kind == "target":
            bake.targets[name] = _target(name, body, line)
    if tag_result is None:
        bake.notes.append("bake.hcl has no function \"tag\": registry not found there")
    else:
        _registry(bake, tag_result, variables)
    return bake


def _strip_comments(text: str) -> str:
    """Drop #, // and /* */ comments outside strings, keeping line numbers."""
    out: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _blocks(code: str) -> list[tuple[str, str, str, int]]:
    out = []
    for match in _BLOCK.finditer(code):
        body, depth, i = [], 1, match.end()
        while i < len(code) and depth:
            char = code[i]
            depth += {"{": 1, "}": -1}.get(char, 0)
            body.append(char)
            i += 1
        line = code.count("\n", 0, match.start()) + 1
        out.append((match.group(1), match.group(2), "".join(body), line))
    return out


def _target(name: str, body: str, line: int) -> Target:
    target = Target(name, line, tags=[(m.group(1), m.group(2))
                                      for m in _TAG_CALL.finditer(body)])
    platforms = re.search(r"\bplatforms" + _LIST, body)
    if platforms:
        target.platforms = re.findall(_STRING, platforms.group(1))
    inherits = re.search(r"\binherits" + _LIST, body)
    if inherits:
        target.inherits = re.findall(_STRING, inherits.group(1))
    flavor = _FLAVOR_ARG.search(body)
    if flavor:
        target.flavor_arg = flavor.group(1)
    return target


def _registry(bake: Bake, body: str, variables: dict[str, str]) -> None:
    cond = _RESULT_COND.search(body)
    if cond:
        empty = variables.get(cond.group(1), "") == ""
        template = cond.group(2) if empty else cond.group(3)
    else:
        plain = _RESULT.search(body)
        if plain is None:
            bake.notes.append("bake.hcl: the tag function's result is not understood")
            return
        template = plain.group(1)
    repo, sep, tag = template.partition(":${tag}")
    if not sep or not repo.endswith("/${image}"):
        bake.notes.append(f"bake.hcl: tag template '{template}' is not "
                          "'<registry>/${image}:${tag}...'")
        return
    registry = _VAR_REF.sub(lambda m: variables.get(m.group(1), ""),
                            repo[: -len("/${image}")])
    bake.registry = registry
    bake.tag_suffix_vars = _VAR_REF.findall(tag)
