"""The one parser of spec durations (``15m``, ``900s``, ``1h30m``).

Validation (rules.py) and job timeouts (graph.py, through the resolved model)
both use it, so what kvc accepts and what it schedules cannot drift apart.
The stage script's own parser (kvc/stages/test.sh) reads the same forms.
"""

from __future__ import annotations

import re
from functools import lru_cache

_DURATION = re.compile(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


@lru_cache(maxsize=256)
def parse_duration(text: str) -> int | None:
    """Seconds, or None when ``text`` is not ``[Nh][Nm][Ns]`` with at least one part."""
    parts = _DURATION.match(text)
    if parts is None:
        return None
    hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds
