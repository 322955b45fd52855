"""``kvc schema``: the JSON Schema editors use for completion and checking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kvc.spec.models import Spec
from kvc.writer import write_atomic

FILE_NAME = "kvc.schema.json"  # what the starter spec's `$schema=` modeline names


def schema() -> dict[str, Any]:
    document = Spec.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return document


def render(header: str | None = None) -> str:
    """The schema as JSON; ``header`` (JSON has no comments) goes in ``$comment``."""
    document = schema()
    if header is not None:
        document["$comment"] = header
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def run(out: Path | None) -> int:
    if out is None:
        click.echo(render(), nl=False)
    else:
        write_atomic(out, render())
        click.echo(f"wrote {out}")
    return 0
