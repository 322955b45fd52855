"""One image directory (env.sh + virt.sysprep) -> the spec values of its builds.

The semantics are those of the build script such trees share (kmi's
hack/customize.sh, read at ContainerCraft/kmi@1cf0a30): the script presets
BASE_URL, DOWNLOAD_FILE, CUSTOMIZE=true and VIRT_SYSPREP_OPERATIONS, sources
env.sh, then per arch takes ``<ARCH>_SHA256SUM`` (else ``<ARCH>_SHA512SUM``),
falls back to ``<ARCH>_DOWNLOAD_FILE`` / ``<ARCH>_BASE_URL`` when the plain
names are empty, downloads ``BASE_URL/DOWNLOAD_FILE``, un-gzips/un-xzs by
suffix, converts when CONVERT=true, and only when CUSTOMIZE=true grows the
disk by 20G and runs ``virt-sysprep --commands-from-file virt.sysprep
--enable $VIRT_SYSPREP_OPERATIONS``. Its tests (tests/run.bats) skip the
tests whose description matches the regex in SKIP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvc.compiler.customize import CUSTOMIZE_COMMANDS
from kvc.importer import shell, sysprep_script
from kvc.importer.shell import Value

ARCHES = ("amd64", "arm64")
# The test descriptions SKIP is matched against (`[[ desc =~ ($SKIP) ]]`,
# ContainerCraft/kmi@1cf0a30:tests/run.bats:103,113-125), and the kvc check each
# one corresponds to.
TEST_DESCRIPTIONS = {
    "boot": "vm pods become ready",
    "guest-agent": "qemu-guest-agent starts on boot",
    "ssh": "guest ssh connects successfully",
}
DISK_GROWTH = "+20G"  # customize.sh: qemu-img resize +20G, only when customizing
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}\Z"), "sha512": re.compile(r"[0-9a-f]{128}\Z")}
_PACKAGE = re.compile(r"@?[A-Za-z0-9_][A-Za-z0-9+._~-]*(:[A-Za-z0-9_-]+)?\Z")


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """Something in an input file kvc import cannot evaluate, at its position."""

    file: Path
    line: int
    col: int
    message: str


@dataclass
class ImageResult:
    directory: str
    arches: list[str] = field(default_factory=list)
    # dotted spec key -> value, for keys this image's builds depend on
    values: dict[str, Any] = field(default_factory=dict)
    # url per arch when the arches' URLs differ
    urls: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # approximations, in words
    skip: str | None = None  # why the image cannot be imported
    problems: list[SourceProblem] = field(default_factory=list)


def read(path: Path, label: str) -> ImageResult:
    """``label`` is how files are named in messages (relative to the imported tree)."""
    result = ImageResult(path.name)
    env_file = path / "env.sh"
    if not env_file.is_file():
        result.skip = ("empty image directory" if not any(_visible(path))
                       else "no env.sh in the image directory")
        return result
    result.sources.append("env.sh")
    text, bad = _text(env_file)
    if bad is not None:
        result.problems.append(SourceProblem(env_file, bad[0], bad[1], "not UTF-8 text"))
        result.skip = "env.sh is not UTF-8 text"
        return result
    env = shell.evaluate(text, path.name)
    if env.problems:
        result.problems = [SourceProblem(env_file, p.line, p.col, p.message)
                           for p in env.problems]
        result.skip = f"{label}/env.sh has shell kvc import does not evaluate (never run)"
        return result
    _download(result, env.values)
    if result.skip is None:
        _customize(result, env.values, path, label)
    if result.skip is None:
        _checks(result, env.values)
    return result


def _visible(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if not p.name.startswith(".")]


def _text(path: Path) -> tuple[str, tuple[int, int] | None]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = raw[:exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return "", (line, col)


def _get(values: dict[str, Value], name: str) -> Value:
    return values.get(name, shell.SCRIPT_DEFAULTS.get(name, ()))


def _scalar(result: ImageResult, values: dict[str, Value], name: str) -> str | None:
    """A setting that must be the same for every arch."""
    value = _get(values, name)
    rendered = {shell.render(value, arch) for arch in ARCHES}
    if len(rendered) > 1:
        result.skip = f"{name} differs per architecture, which kvc import cannot map"
        return None
    return rendered.pop()


def _download(result: ImageResult, values: dict[str, Value]) -> None:
    urls: dict[str, str] = {}
    missing: list[str] = []
    for arch in ARCHES:
        upper = arch.upper()
        checksum = _checksum(values, upper)
        file = _fallback(values, "DOWNLOAD_FILE", upper)
        base = _fallback(values, "BASE_URL", upper)
        lacks = [what for what, v in (("checksum", checksum), ("download file", file),
                                      ("base URL", base)) if not v]
        if lacks:
            missing.append(f"{arch}: no {', '.join(lacks)}")
            continue
        assert checksum is not None and file and base
        algo, digest = checksum
        if not _HEX[algo].match(digest.lower()):
            result.skip = f"{upper}_{algo.upper()}SUM is not a {algo} hex digest"
            return
        result.checksums[arch] = f"{algo}:{digest.lower()}"
        urls[arch] = shell.template(base).rstrip("/") + "/" + shell.template(file)
        result.arches.append(arch)
        name = shell.render(file, arch)
        if name.endswith(".bz2"):
            result.values["download.decompress"] = "none"  # customize.sh never un-bzips
    extra = sorted(n for n in values if re.match(r"[A-Z0-9]+_(SHA256SUM|SHA512SUM)\Z", n)
                   and n.split("_")[0].lower() not in ARCHES)
    if extra:
        result.notes.append(f"ignored {', '.join(extra)}: kvc builds only amd64 and arm64")
    if not result.arches:
        result.skip = "no architecture resolves: " + "; ".join(missing)
        return
    if missing:
        result.notes.append("; ".join(missing) + " (so that arch is not built)")
    if len(set(urls.values())) == 1:
        result.values["url"] = next(iter(urls.values()))
    else:
        result.urls = urls
    convert = _scalar(result, values, "CONVERT")
    result.values["download.convert"] = convert == "true"


def _checksum(values: dict[str, Value], upper: str) -> tuple[str, str] | None:
    for algo in ("sha256", "sha512"):
        rendered = shell.render(_get(values, f"{upper}_{algo.upper()}SUM"), upper.lower())
        if rendered:
            return algo, rendered
    return None


def _fallback(values: dict[str, Value], name: str, upper: str) -> Value:
    plain = _get(values, name)
    if shell.render(plain, upper.lower()):
        return plain
    return _get(values, f"{upper}_{name}")


def _customize(result: ImageResult, values: dict[str, Value], path: Path, label: str) -> None:
    customize = _scalar(result, values, "CUSTOMIZE")
    if customize is None:
        return
    if customize != "true":
        result.values["sysprep.enabled"] = False
        result.values["sysprep.disk_size"] = None
        return
    script = path / "virt.sysprep"
    if not script.is_file():
        result.skip = "CUSTOMIZE is true but there is no virt.sysprep"
        return
    result.sources.append("virt.sysprep")
    text, bad = _text(script)
    if bad is not None:
        result.problems.append(SourceProblem(script, bad[0], bad[1], "not UTF-8 text"))
        result.skip = "virt.sysprep is not UTF-8 text"
        return
    result.values["sysprep.enabled"] = True
    result.values["sysprep.disk_size"] = DISK_GROWTH
    _operations(result, values)
    result.values.update(customize_values(sysprep_script.parse(text), result, label))


def _operations(result: ImageResult, values: dict[str, Value]) -> None:
    operations = _scalar(result, values, "VIRT_SYSPREP_OPERATIONS") or ""
    names = [name for name in operations.split(",") if name]
    if not names:
        result.notes.append("VIRT_SYSPREP_OPERATIONS is empty (virt-sysprep --enable '' "
                            "fails); kvc's default operations are used")
        return
    result.values["sysprep.operations"] = names
    if "customize" not in names:
        result.notes.append("VIRT_SYSPREP_OPERATIONS lacks 'customize', so virt-sysprep "
                            "skipped virt.sysprep's commands; kvc runs them (drop "
                            "sysprep.commands/install to keep the old result)")


def customize_values(commands: list[sysprep_script.Command], result: ImageResult,
                     label: str) -> dict[str, Any]:
    """The simple keys when they say exactly the same, else the ordered list."""
    simple = _simple(commands)
    if simple is not None:
        return simple
    unknown = [c for c in commands if _known(c) is None]
    for command in unknown:
        result.notes.append(f"{label}/virt.sysprep:{command.line}: '{command.name}' is not a "
                            "virt-customize command kvc knows; kvc validate will report it")
    items: list[Any] = [_item(c) for c in commands]
    return {"sysprep.update": False, "sysprep.install": "", "sysprep.post_commands": [],
            "sysprep.selinux_relabel": False, "sysprep.commands": items}


def _known(command: sysprep_script.Command) -> bool | None:
    return CUSTOMIZE_COMMANDS.get(command.name)


def _item(command: sysprep_script.Command) -> Any:
    if _known(command) is False and command.argument == "":
        return command.name
    return {command.name: _escape(command.argument)}


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _simple(commands: list[sysprep_script.Command]) -> dict[str, Any] | None:
    """kvc's fixed order: update, install, run-command..., selinux-relabel."""
    rest = list(commands)
    update = bool(rest) and rest[0].name == "update" and rest[0].argument == ""
    if update:
        rest.pop(0)
    install = ""
    if rest and rest[0].name == "install" and _packages(rest[0].argument):
        install = rest.pop(0).argument
    posts: list[str] = []
    while rest and rest[0].name == "run-command" and rest[0].argument.strip():
        posts.append(_escape(rest.pop(0).argument))
    relabel = bool(rest) and rest[0].name == "selinux-relabel" and rest[0].argument == ""
    if relabel:
        rest.pop(0)
    if rest:
        return None
    return {"sysprep.update": update, "sysprep.install": install,
            "sysprep.post_commands": posts, "sysprep.selinux_relabel": relabel,
            "sysprep.commands": []}


def _packages(argument: str) -> bool:
    names = argument.split(",")
    return all(_PACKAGE.match(name) for name in names) and ",".join(names) == argument


def _checks(result: ImageResult, values: dict[str, Value]) -> None:
    skip = _scalar(result, values, "SKIP")
    if skip is None:
        return
    if not skip:
        result.values["test.checks"] = list(TEST_DESCRIPTIONS)
        return
    try:
        pattern = re.compile(skip)
    except re.error as exc:
        result.skip = f"SKIP='{skip}' is not a regular expression kvc import understands: {exc}"
        return
    checks = [check for check, text in TEST_DESCRIPTIONS.items() if not pattern.search(text)]
    result.values["test.checks"] = checks
    if not checks:
        result.values["test.enabled"] = False
