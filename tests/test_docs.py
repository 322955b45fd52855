"""Docs that are generated must match what the code generates now."""

from __future__ import annotations

import re
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


def _kvc_sources() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "kvc").rglob("*"))
                     if p.suffix in {".py", ".sh"})


def test_troubleshooting_covers_the_offline_and_pinning_paths() -> None:
    """Issue 13's done-when: docs/troubleshooting.md covers both paths."""
    text = (ROOT / "docs/troubleshooting.md").read_text()
    section = text.split("\n## Offline and pinning\n", 1)[1].split("\n## ", 1)[0]
    for needed in ("kvc lock kvc.yaml --from", "verify_at_build: true", "checksum_url",
                   "kvc run --dry-run", "(releasing.md#pinning-kvc)", "pre-commit `rev`",
                   "pip install 'kvc @\ngit+URL@SHA'"):
        assert needed in section, needed
    # The messages it explains are the ones kvc prints.
    sources, prose = _kvc_sources(), " ".join(section.split())
    for message in ("is a placeholder", "and can never verify", "has no entry for",
                    "twice with different digests", "refusing to guess", "cannot resolve",
                    "the update job installs kvc=="):
        assert message in prose, message
        assert message in sources, message


def test_releasing_says_how_to_pin_before_and_after_the_first_release() -> None:
    text = (ROOT / "docs/releasing.md").read_text()
    pinning = text.split("\n## Pinning kvc\n", 1)[1]
    after = pinning.split("### After the first release", 1)[1].split("\n### ", 1)[0]
    before = pinning.split("### Before the first release", 1)[1].split("\n### ", 1)[0]
    assert "pip install 'kvc==" in after and re.search(r"rev: v\d+\.\d+\.\d+ ", after)
    assert "pip install 'kvc @ git+" in before
    assert re.search(r"rev: <the same 40-hex commit> +# pre-commit accepts any commit SHA",
                     before)
