"""The package's loggers, made on first use (private).

Importing ``logging`` costs ~3.5 ms (it pulls in ``traceback``, ``string``, ``threading``), paid by
every client and manager at construction when a module holds ``logging.getLogger(...)`` at import.
Code logs through :func:`logger` instead, and the per-call check :func:`enabled` answers without
importing ``logging`` when nothing has imported it: then nothing can have configured a level or a
handler, and an unconfigured logger passes WARNING and above only (``logging.lastResort``), so a
lower level is off. Warnings and errors always go through :func:`logger`.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

_WARNING = 30  # logging.WARNING, without importing logging
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def log_text(text: str) -> str:
    """Client or upstream text as one safe log token: cut as every message quotes client text
    (``_core.client_text``), control characters escaped (no forged line, no terminal escape)."""
    from . import _core

    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                        _core.client_text(text))


_loggers: dict[str, logging.Logger] = {}
# (logger("orroute"), its class, its instance dict, its ``_cache``) once made, when its
# isEnabledFor is logging.Logger's own: that keeps its answers in the logger's ``_cache`` (CPython
# 3.7-3.13), which logging empties in place on every level change (setLevel, logging.disable), so
# an answer found there is the one isEnabledFor gives while the logger is not ``disabled``, keeps
# the class it was made with (one given to it later may answer otherwise) and has no isEnabledFor
# of its own (one set on the instance, as mock.patch.object sets it, lands in its instance dict).
# observe's per-call check reads them without the frames of enabled() and isEnabledFor.
#
# The instance dict is the object ``__dict__`` gives, kept: the logger holds that same dict for
# the life of the process (CPython 3.11+ makes it from the inline attribute values on that first
# read, and every later attribute set goes into it), so the check asks it for the name: ~+400
# instructions a check (bench/observe_check.py, docs/performance.md session 27); reading
# ``log.__dict__`` on every check cost ~940 (session 26).
package_logger: tuple[logging.Logger, type[logging.Logger], dict[str, Any], dict[int, bool]] | None = None


def logger(name: str = "orroute") -> logging.Logger:
    """The logger ``name`` (``logging`` is imported on the first call)."""
    found = _loggers.get(name)  # every call asks (enabled()): no import nor getLogger lock
    if found is None:
        import logging

        # logging keeps every logger it made for the life of the process (reconfiguring one
        # changes that same object), so holding it here never goes stale
        found = _loggers[name] = logging.getLogger(name)
        if name == "orroute" and type(found).isEnabledFor is logging.Logger.isEnabledFor:
            global package_logger
            package_logger = (found, type(found), found.__dict__, found._cache)  # type: ignore[attr-defined]
    return found


def enabled(level: int, name: str = "orroute") -> bool:
    """Whether ``name`` would emit a record at ``level`` (a ``logging`` level number)."""
    if "logging" not in sys.modules:  # unconfigured: only WARNING and above are shown
        return level >= _WARNING
    found = _loggers.get(name)  # asked on every call: logger()'s frame only the first time
    return (found or logger(name)).isEnabledFor(level)

