"""Hostile inputs for the loader: random documents and mutations of valid specs.

Shared by tests/test_fuzz.py (a few hundred examples per run) and
benchmarks/fuzz.py (10,000+). The property is the same everywhere: every
input either compiles or fails with positioned diagnostics; nothing else.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from ruamel.yaml import YAML

from kvc.backends import BACKENDS, buildfiles
from kvc.backends.base import EmitInput
from kvc.compiler import dag
from kvc.compiler.driver import load_source
from kvc.compiler.graph import build_pipeline
from kvc.spec.diagnostics import SpecError
from kvc.spec.models import Backends

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "examples").glob("*/kvc.yaml")) + sorted(
    (ROOT / "tests/data/ok").glob("*.yaml"))

KEYS = ["kvc", "registry", "flavors", "releases", "release_version", "url", "arches",
        "sysprep", "install", "post_commands", "per_arch", "amd64", "arm64", "vars",
        "release_checksum", "publish", "tags", "defaults", "test", "checks", "download"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["{flavor}", "{nope}", "{", "}}", "sha256:ab",
                                           "24.04", "amd64", "arm65", "*", "${{ x }}"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children,
                        max_size=6),
    ),
    max_leaves=40,
)


def dump(value: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    stream = io.StringIO()
    yaml.dump(value, stream)
    return stream.getvalue()


def _load_seed(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    """A valid spec with one subtree replaced, deleted or given an extra key."""
    data = _load_seed(draw(st.sampled_from(SEEDS)))
    node, key = _pick(draw, data)
    action = draw(st.sampled_from(["replace", "delete", "insert"]))
    if action == "replace":
        node[key] = draw(documents)
    elif action == "delete" and isinstance(node, dict):
        del node[key]
    elif isinstance(node, dict):
        node[draw(st.sampled_from(KEYS))] = draw(documents)
    return dump(data)


def _pick(draw: st.DrawFn, data: Any) -> tuple[Any, Any]:
    node: Any = {"root": data}
    key: Any = "root"
    for _ in range(draw(st.integers(0, 8))):
        child = node[key]
        if isinstance(child, dict) and child:
            node, key = child, draw(st.sampled_from(sorted(child, key=str)))
        elif isinstance(child, list) and child:
            node, key = child, draw(st.integers(0, len(child) - 1))
        else:
            break
    return node, key


raw_texts = st.one_of(
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    documents.map(lambda d: dump(d).encode()),
    mutated_specs().map(str.encode),
)


def compile_or_diagnose(raw: bytes) -> str:
    """The property under test: returns 'ok' or 'error'; anything else propagates."""
    try:
        resolved = load_source(raw, "fuzz.yaml")
    except SpecError as error:
        assert error.diagnostics, "a SpecError must carry diagnostics"
        for diag in error.diagnostics:
            assert diag.pos.line >= 1 and diag.pos.col >= 1
        return "error"
    pipeline = build_pipeline(resolved)
    dag.check(pipeline)
    source = EmitInput(pipeline, "fuzz.yaml", resolved.spec.backends or Backends(),
                       resolved.spec.update)
    buildfiles.emit(source)
    for backend in BACKENDS.values():
        backend.emit(source)
    return "ok"
