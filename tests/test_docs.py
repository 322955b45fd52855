"""Docs that are generated must match what the code generates now."""

from __future__ import annotations

from pathlib import Path

from kvc.commands import schema
from kvc.commands.graph import mermaid
from kvc.compiler.driver import load
from kvc.compiler.graph import build_pipeline
from kvc.spec import reference

ROOT = Path(__file__).resolve().parent.parent


def test_spec_reference_is_current() -> None:
    current = (ROOT / "docs/spec-reference.md").read_text(encoding="utf-8")
    assert current == reference.render(), (
        "docs/spec-reference.md is stale: python -m kvc.spec.reference > docs/spec-reference.md")


def test_spec_reference_names_every_layer_key() -> None:
    text = reference.render()
    for key in ("release_checksum", "checksum_url", "per_arch", "post_commands", "disk_size",
                "insecure_skip_checksum", "locked_url", "runs_on", "resource_class", "`in`"):
        assert f"`{key.strip('`')}`" in text


def test_checked_in_schema_is_current() -> None:
    current = (ROOT / "kvc.schema.json").read_text(encoding="utf-8")
    assert current == schema.render(), "kvc.schema.json is stale: kvc schema -o kvc.schema.json"


def test_readme_diagram_is_the_minimal_example_graph() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    diagram = mermaid(build_pipeline(load(ROOT / "examples/minimal/kvc.yaml")))
    assert f"```mermaid\n{diagram}```" in readme


def test_readme_excerpts_are_verbatim_compiled_output() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in readme.split("```yaml\n# ")[1:] if " (excerpt)\n" in b]
    assert len(blocks) >= 2
    for block in blocks:
        header, _, body = block.partition("\n")
        path = header.split(" (excerpt)")[0]
        excerpt = body.split("```", 1)[0].split("      ...\n")[0]
        assert excerpt.strip() and excerpt in (ROOT / path).read_text(encoding="utf-8"), path
