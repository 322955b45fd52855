"""The parsers of spec durations: test timeouts (``15m``, ``900s``, ``1h30m``) and
refresh ages (``7d``, ``2w``, ``12h``).

Validation (rules.py), job timeouts (graph.py) and the plan data
(buildfiles.py) all read a duration through the resolved model, which calls
these, so what kvc accepts and what it schedules cannot drift apart. The test
stage's own parser (kvc/stages/test.sh) reads the same timeout forms.
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


_AGE = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> int | None:
    """Seconds (0: never), or None when ``text`` is not one number and unit.

    Days and weeks are an age's natural units, which test timeouts do not take
    (test.sh could not read them), hence its own small grammar.
    """
    match = _AGE.fullmatch(text.strip())
    if match is None:
        return None
    return int(match[1]) * _UNIT_SECONDS[match[2] or "s"]
