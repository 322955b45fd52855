"""Errors the CLI turns into clean messages and exit codes.

Exit codes (documented in docs/cli.md): 0 ok; 1 user error or drift; 2 usage
(click's own); 3 internal error, with a hint to rerun with --traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class FatalError(Exception):
    """A user-facing failure with one clean message (no position to point at)."""
