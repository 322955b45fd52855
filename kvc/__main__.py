"""Allow ``python -m kvc``."""

from __future__ import annotations

from kvc.cli import main

if __name__ == "__main__":
    main()
