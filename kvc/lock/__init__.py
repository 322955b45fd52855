"""Pin upstream image checksums into the spec (``kvc lock``)."""

from __future__ import annotations
