"""The one exception type of ``kvc lock``.

Every expected failure (network, malformed upstream file, unusable spec text)
is a :class:`LockError` whose message is meant for the user as is, so the CLI
can print it without a traceback.
"""

from __future__ import annotations


class LockError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""
