"""Which images (and arches) a CircleCI config's workflows actually build.

Jobs are matched by their matrix: every workflow job whose
``matrix.parameters`` has a ``flavor`` list counts, and its ``arch`` list (when
present) says which architectures. YAML anchors/aliases are resolved by the
YAML loader, which is how such configs share their flavor lists. An image
absent from every workflow (typically commented out) is not active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError


@dataclass
class Workflows:
    arches: dict[str, set[str]] = field(default_factory=dict)  # image dir -> arches
    notes: list[str] = field(default_factory=list)


def parse(text: str, name: str) -> Workflows | None:
    """None when the file cannot be read as a CircleCI config (then all are active)."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        return Workflows(notes=[f"{where}: not valid YAML, every image counts as active"])
    workflows = data.get("workflows") if isinstance(data, dict) else None
    if not isinstance(workflows, dict):
        return None
    found = Workflows()
    for workflow in workflows.values():
        jobs = workflow.get("jobs") if isinstance(workflow, dict) else None
        for job in jobs if isinstance(jobs, list) else []:
            _job(job, found)
    return found


def _job(job: Any, found: Workflows) -> None:
    if not isinstance(job, dict):
        return
    for settings in job.values():
        params = _get(settings, "matrix", "parameters")
        flavors = params.get("flavor") if isinstance(params, dict) else None
        if not isinstance(flavors, list):
            continue
        arches = params.get("arch") if isinstance(params, dict) else None
        # Only plain strings count: str() of an aliased structure could be huge.
        for flavor in (f for f in flavors if isinstance(f, str)):
            entry = found.arches.setdefault(flavor, set())
            if isinstance(arches, list):
                entry.update(a for a in arches if isinstance(a, str))


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
