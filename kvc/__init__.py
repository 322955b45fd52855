"""kvc: compile one spec of KubeVirt machine images into CI pipelines."""

from __future__ import annotations

__version__ = "0.1.0"
