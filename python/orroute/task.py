"""The unit of work of the plan: a ``Task`` that ``AIModelManager.execute_task`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal

from ._exceptions import InvalidArgumentError

TYPE_CHECKING = False  # typing is not imported at run time: `import orroute` stays fast
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    Message = Mapping[str, Any]

__all__ = ["Task"]

#: Request fields the router sets itself (a task's ``params`` may not).
_ROUTER_FIELDS = frozenset({"model", "messages", "stream", "max_tokens", "models"})


_KNOWN_TYPES: tuple[str, ...] | None = None
_KNOWN_SET: frozenset[str] = frozenset()  # the same, for Task's test (~0.7k a Task below the call)


# Task ids: 32 hex digits, 80 random bits drawn once per process and a 48-bit counter. Unique
# across processes like a fresh ``os.urandom(16)`` per task, without its syscall on every call; a
# forked child draws its own prefix (else parent and child would repeat ids). The process's first
# id draws the prefix and makes the id function, the core's (``_core.task_ids``: one C call; the
# 128-bit number formatted in Python cost ~2.4k instructions more on every Task made), so that
# ``import orroute`` loads neither the core nor the random bits.


def _first_task_id() -> str:
    global _new_task_id
    from . import _core

    _new_task_id = _core.task_ids(os.urandom(10).hex())
    return _new_task_id()


_new_task_id: Callable[[], str] = _first_task_id


def _reset_task_ids() -> None:
    global _new_task_id
    _new_task_id = _first_task_id


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_task_ids)


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


class Task:
    """A task for a model: its messages, what it needs, and what it may cost.

    Args:
        id: task id recorded in the ledger (a fresh one if omitted).
        type: task type of the plan (``"coding"``, ``"reasoning"``, ``"general"``, ...).
        messages: chat messages in OpenAI shape; a string is taken as one user message.
        input_size: prompt size in tokens; counted from ``messages`` when omitted.
        max_tokens: upper bound on output tokens (drives the worst-case cost reservation).
        project: project the spend is booked to.
        capabilities: capabilities the model must have (``"tools"``, ``"vision"``, ...).
        quality: minimum quality in [0, 1] the caller wants, if any.
        budget: most this one task may cost, in USD (stored as ``decimal.Decimal``).
        conversation: conversation the spend is booked to.
        tags: extra budget scopes, e.g. ``{"user": "alice", "team": "search"}``.
        params: more OpenAI chat request fields sent as given (``temperature``, ``tools``,
            ``response_format``, ...); ``model``, ``messages``, ``stream`` and ``max_tokens`` are
            the router's and may not appear here.
        compress: prompt compression for this task (an ``orroute.compress.Compression`` or a
            mapping of its fields; ``False`` turns the manager's off; None: the manager's).
        cache: False skips the manager's response cache for this task (see orroute.cache).

    >>> Task(type="coding", messages="Write a haiku about C++").messages[0]["role"]
    'user'
    """

    __slots__ = (
        "budget",
        "cache",
        "capabilities",
        "compress",
        "conversation",
        "id",
        "input_size",
        "max_tokens",
        "messages",
        "params",
        "project",
        "quality",
        "tags",
        "type",
    )

    def __init__(
        self,
        id: str | None = None,
        type: str = "general",
        messages: Sequence[Message] | str = (),
        input_size: int | None = None,
        max_tokens: int | None = None,
        project: str | None = None,
        capabilities: Sequence[str] = (),
        quality: float | None = None,
        budget: Decimal | float | str | None = None,
        conversation: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        cache: bool = True,
        compress: Any = None,
    ) -> None:
        # The usual task sets two fields: each test below is one comparison when its field has
        # its default or a plain value; the rare cases (and the errors) are functions of their own.
        if type.__class__ is not str or type not in _KNOWN_SET:  # a known type: no call
            _check_type_arg(type)
        # a list first (the usual case): its class tested before isinstance (~0.3k a Task), and
        # copied by unpacking instead of list()'s call (~0.3k); anything else through list(), as
        # before (its errors)
        if messages.__class__ is list:
            msgs = [*messages]
        else:
            if isinstance(messages, str):
                messages = [{"role": "user", "content": messages}]
            msgs = list(messages)
        for m in msgs:
            # a dict first: the Mapping check is an ABC's (several times the cost)
            if (m.__class__ is not dict and not isinstance(m, Mapping)) or "role" not in m:
                _bad_message(msgs, m)
        if input_size is not None and input_size < 0:
            raise InvalidArgumentError(f"input_size must be >= 0, got {input_size}")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidArgumentError(f"max_tokens must be >= 1, got {max_tokens}")
        if quality is not None and not 0.0 <= quality <= 1.0:
            raise InvalidArgumentError(f"quality must be in [0, 1], got {quality}")
        if budget is not None:
            budget = _budget(budget)
        if ((id is not None and id.__class__ is not str)
                or (project is not None and project.__class__ is not str)
                or (conversation is not None and conversation.__class__ is not str)):
            _check_texts(id, project, conversation)  # the engine reads them as text
        if params:
            params = _params(params)
        else:
            params = {}
        self.id = id if id is not None else _new_task_id()
        self.type = type
        self.messages: list[Message] = msgs
        self.input_size = input_size
        self.max_tokens = max_tokens
        self.project = project
        self.capabilities = tuple(capabilities) if capabilities else ()
        self.quality = quality
        self.budget = budget
        self.conversation = conversation
        self.tags = dict(tags) if tags else {}
        self.params: dict[str, Any] = params
        if compress is not None and compress is not False:
            compress = _compression(compress)
        self.compress = compress
        self.cache = cache if cache is True else bool(cache)

    def __repr__(self) -> str:
        return (
            f"Task(id={self.id!r}, type={self.type!r}, messages=<{len(self.messages)}>, "
            f"max_tokens={self.max_tokens!r}, project={self.project!r}, budget={self.budget!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    @classmethod
    def coerce(cls, task: Any) -> Task:
        """A :class:`Task` from a Task, a mapping or any object with the plan's fields.

        Fields read (as keys or attributes): ``id``, ``type``, ``messages`` (or ``input``: a
        string or messages), ``input_size``, ``max_tokens``, ``project``, ``capabilities``,
        ``quality``, ``budget``, ``conversation``, ``tags``, ``params``, ``compress``. Missing
        fields take the defaults of the constructor; the values are validated as there.

        Raises:
            InvalidArgumentError: a field has a bad value, or both ``messages`` and ``input``
                are given and differ.

        >>> Task.coerce({"type": "coding", "input": "hi", "max_tokens": 50}).max_tokens
        50
        """
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
