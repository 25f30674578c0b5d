"""``LOG_LEVEL``'s stderr handler (private; imported on use, as it imports ``logging``)."""

from __future__ import annotations

import logging
import sys
from typing import Any


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def show_on_stderr(level: str, *, handler: bool | None) -> None:
    """What :func:`orroute.config.apply_log_level` does (see there)."""
    log = logging.getLogger("orroute")
    log.setLevel(level)
    if any(isinstance(h, _StderrHandler) for h in log.handlers) or handler is False:
        return
    if handler or not (log.handlers or logging.getLogger().handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(h)
