"""The unit of work of the plan: a ``Task`` that ``AIModelManager.execute_task`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal

from ._exceptions import InvalidArgumentError

# The type itself is C (cpp/pyext/task.c: orroute._task, a module of its own that loads neither the
# core nor anything but libc): `Task(messages=M, max_tokens=16)` is one C call, where the Python
# class cost ~7.7k instructions (its class call alone ~2.4k: CPython's keyword dict for
# type.__call__, unpacked again for __init__). Its checks are __init__'s as they were, in their
# order, with their messages; the rare ones are the functions below, which the type looks up in
# this module's globals when it needs them, as this module's code would (_bind).
try:
    from ._task import Task, _bind, _forget_id_prefix
except ModuleNotFoundError as missing:
    # the first compiled module `import orroute` loads: a source tree that was never built stops
    # here, and is told how to build (orroute._core, built with it, is missing too)
    if missing.name != f"{__package__}._task":
        raise
    raise ModuleNotFoundError(
        f"{missing.name} is not built: this orroute is a source tree whose extensions were never "
        "compiled. Build them with scripts/dev-build.sh (they are linked into python/orroute), or "
        "install the package: pip install .", name=missing.name, path=missing.path) from None

TYPE_CHECKING = False  # typing is not imported at run time: `import orroute` stays fast
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Task"]

#: Request fields the router sets itself (a task's ``params`` may not).
_ROUTER_FIELDS = frozenset({"model", "messages", "stream", "max_tokens", "models"})


_KNOWN_TYPES: tuple[str, ...] | None = None
_KNOWN_SET: frozenset[str] = frozenset()  # the same, for Task's test (~0.7k a Task below the call)


# Task ids: 32 hex digits, 80 random bits drawn once per process and a 48-bit counter. Unique
# across processes like a fresh ``os.urandom(16)`` per task, without its syscall on every call; a
# forked child draws its own prefix (else parent and child would repeat ids). The type makes them
# (task.c's new_task_id: the counter's digits written in place; the 128-bit number formatted in
# Python cost ~2.4k instructions more on every Task made, a call into the core ~0.45k) and asks
# _id_prefix for the process's bits on its first id, so that ``import orroute`` draws none.


def _id_prefix() -> str:
    """The process's 80 random bits of every task id, as 20 hex digits."""
    return os.urandom(10).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_id_prefix)


_TYPE_MAX = 64  # a task type is a name, stored on every ledger row of the call


def _check_type(name: str) -> None:
    """A type one or two edits away from a known task type (``"codng"``) is a typo: refused,
    naming the type meant. Other unknown types are allowed (a learned router or a cascade may be
    trained on task types of the caller's own) if they are names: at most 64 printable ASCII
    characters without spaces or quotes."""
    global _KNOWN_TYPES, _KNOWN_SET
    if _KNOWN_TYPES is None:
        from . import _core  # the task types are the engine's (select/task_types.cpp)

        _KNOWN_TYPES = tuple(t for t, _ in _core.task_type_rules())
        _KNOWN_SET = frozenset(_KNOWN_TYPES)
    known = _KNOWN_TYPES
    if name in known:  # the first Task's case (later ones test _KNOWN_SET before calling)
        return
    if (len(name) > _TYPE_MAX or not name.isascii() or not name.isprintable()
            or any(c in name for c in " \"'\\")):
        raise InvalidArgumentError(
            f"task type {name[:40]!r}{'...' if len(name) > 40 else ''} is not a name: at most "
            f"{_TYPE_MAX} printable ASCII characters without spaces or quotes")
    import difflib

    near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if near and _edits(name, near[0]) <= 2:
        raise InvalidArgumentError(
            f"unknown task type {name!r}; did you mean {near[0]!r}? (known task types: "
            f"{', '.join(known)}; a type of your own must not be a near-miss of one of these)")


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (short strings)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _check_type_arg(type: Any) -> None:
    """Task's ``type`` when it is not a known type's plain str: refused unless a name."""
    if not isinstance(type, str) or not type:
        raise InvalidArgumentError("task type must be a non-empty string")
    _check_type(type)


def _bad_message(msgs: list[Any], bad: Any) -> None:
    """Raises for ``bad``, the message of ``msgs`` found not a mapping with a role (named by its
    place; not looked at again: a mapping's ``in`` may answer otherwise the second time)."""
    i = next(i for i, m in enumerate(msgs) if m is bad)
    raise InvalidArgumentError(f"task message {i} must be a mapping with a 'role'")


def _budget(budget: Any) -> Decimal:
    try:
        amount = Decimal(str(budget))
    except ArithmeticError:
        raise InvalidArgumentError(f"budget must be an amount in USD, got {budget!r}") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidArgumentError(f"budget must be >= 0, got {amount}")
    return amount


def _check_texts(id: Any, project: Any, conversation: Any) -> None:
    for field, text in (("id", id), ("project", project), ("conversation", conversation)):
        if text is not None and not isinstance(text, str):
            raise InvalidArgumentError(f"task {field} must be a str, got {text.__class__.__name__}")


def _params(params: Any) -> dict[str, Any]:
    params = dict(params)
    reserved = sorted(_ROUTER_FIELDS.intersection(params))
    if reserved:
        raise InvalidArgumentError(f"task params may not set {reserved[0]!r}: the router does")
    return params


def _compression(compress: Any) -> Any:
    from .compress import Compression

    return Compression.coerce(compress)


def _reduce_ex(task: Task, protocol: int) -> Any:
    """``Task.__reduce_ex__``: pickle's protocols 0 and 1 cannot rebuild a C type's instance
    (copyreg would call ``Task(task)``, an InvalidArgumentError for a subclass's): a TypeError,
    as Python raises for any object those protocols cannot pickle."""
    if protocol < 2 and type(task).__reduce__ is object.__reduce__:
        raise TypeError(f"cannot pickle {type(task).__name__!r} object with protocol {protocol}: "
                        "a Task needs protocol 2 or higher")
    return object.__reduce_ex__(task, protocol)


def _coerce(cls: type[Task], task: Any) -> Task:
    """``Task.coerce`` (its docstring is the type's, in cpp/pyext/task.c)."""
    if isinstance(task, Task):
        return task
    if isinstance(task, Mapping):
        def get(name: str) -> Any:
            return task.get(name)
    elif task is None or isinstance(task, (str, bytes)):
        raise InvalidArgumentError(
            f"expected a task (orroute.Task, a mapping or an object with the plan's fields), "
            f"got {type(task).__name__}"
        )
    else:
        def get(name: str) -> Any:
            return getattr(task, name, None)
    messages, text = get("messages"), get("input")
    if messages is not None and text is not None and messages != text:
        raise InvalidArgumentError("task gives both 'messages' and 'input'; give one")
    fields: dict[str, Any] = {
        "messages": messages if messages is not None else (text if text is not None else ())
    }
    for name in ("id", "type", "input_size", "max_tokens", "project", "capabilities",
                 "quality", "budget", "conversation", "tags", "params", "cache",
                 "compress"):
        value = get(name)
        if value is not None:
            fields[name] = value
    return cls(**fields)



_bind(globals())  # the type finds the functions above here
