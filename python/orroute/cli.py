"""The ``orroute`` command (entry point ``orroute.cli:main``). Commands are in ``orroute._cli``."""

from __future__ import annotations

from ._cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
