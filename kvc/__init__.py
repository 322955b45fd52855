"""kvc: compile one spec of KubeVirt machine images into CI pipelines."""

from __future__ import annotations

# X.Y.Z on a release commit (tagged vX.Y.Z), X.Y.Z.devN between releases:
# see docs/releasing.md. pyproject.toml reads it from here.
__version__ = "0.1.0.dev0"
