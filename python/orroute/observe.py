"""What every call shows: a log line, callbacks and an OpenTelemetry span.

The manager, the client and the gateway each own an :class:`Observer`. For every chat call it

- logs one INFO line on the ``orroute`` logger (model, provider, tokens, cost, latency, outcome;
  the level is the application's ``logging`` setup, or ``LOG_LEVEL`` for the command line). Text
  that came from a client or an upstream is escaped (no forged log lines) and API keys are never
  written (an upstream that echoes the key back in an error has it masked);
- calls the ``on_request`` / ``on_response`` / ``on_error`` / ``on_budget_alert`` callbacks, sync
  or async, contained: an exception, a hang or a slow callback never fails or delays the call
  (see ``_observe_dispatch``);
- makes a span following the OpenTelemetry GenAI conventions when the application uses
  OpenTelemetry (see ``_observe_otel``; nothing is imported otherwise).

>>> seen = []
>>> client = orroute.OpenRouter(on_response=seen.append)                    # doctest: +SKIP
>>> manager = orroute.AIModelManager(on_error=lambda e: print(e.outcome))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import _logs, _observe_otel
from ._logs import enabled, log_text, logger

__all__ = ["HOOKS", "CallEvent", "Observer", "completion_fields", "flush_callbacks"]

_INFO = 20  # logging.INFO (logging is imported on use: see _logs)

#: The callback names, in the order of a call's life.
HOOKS = ("on_request", "on_response", "on_error", "on_budget_alert")
#: Seconds a callback may run before it is reported hung (sync) or cancelled (async).
DEFAULT_CALLBACK_TIMEOUT = 5.0

_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_-]{2,}|Bearer\s+)[A-Za-z0-9_.\-]{6,}")


@dataclass(slots=True)
class CallEvent:
    """One chat call as the callbacks see it.

    ``on_request`` gets it with the request fields only; ``on_response`` and ``on_error`` get
    another one, completed (an event is never changed once a callback has it). ``outcome`` is ``"ok"``, ``"cache_hit"``, ``"cancelled"`` or the error's class
    name (``"RateLimitError"``, ``"BudgetExceededError"``, ...).

    Attributes:
        call_id: the same for the request and the end of one call.
        source: ``"manager"``, ``"client"`` or ``"gateway"``.
        model: the model asked for (``""`` when the router chooses).
        messages: the request's messages (the caller's own objects; do not mutate).
        params: the other request fields (``temperature``, ``max_tokens``, ``tools``, ...).
        response_model: the model that answered.
        provider: the provider that served it, when the upstream says.
        cost: USD (``Decimal``), when known; ``saved``: what a cache hit saved.
        latency: seconds from the request to the end (the last chunk of a stream).
        error: the exception, for ``on_error``.
        result: the ``TaskResult`` / ``ChatCompletion`` (``None`` for a stream).
    """

    call_id: str
    source: str
    operation: str = "chat"
    model: str = ""
    stream: bool = False
    messages: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    project: str = ""
    started: float = 0.0  # time.time()
    response_model: str = ""
    provider: str = ""
    response_id: str = ""
    finish_reasons: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal | None = None
    cost_source: str = ""
    saved: Decimal | None = None
    attempts: int = 0
    latency: float = 0.0
    outcome: str = ""
    status: int = 0
    error: BaseException | None = None
    result: Any = None


def _as_list(cb: Any) -> list[Callable[[Any], Any]]:
    if cb is None:
        return []
    if callable(cb):
        return [cb]
    return list(cb)


class Observer:
    """The log line, callbacks and spans of one manager, client or gateway.

    Args:
        source: ``"manager"``, ``"client"`` or ``"gateway"`` (in the log line and span).
        on_request, on_response, on_error, on_budget_alert: a callable or a list of them
            (sync or ``async def``), taking a :class:`CallEvent` (an ``AlertEvent`` for
            ``on_budget_alert``).
        secrets: API keys to mask should an upstream echo one back.
        callback_timeout: seconds before a callback is reported hung / cancelled.
    """

    def __init__(self, source: str, *, on_request: Any = None, on_response: Any = None,
                 on_error: Any = None, on_budget_alert: Any = None,
                 secrets: Iterable[str] = (),
                 callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT) -> None:
        self.source = source
        self.callback_timeout = float(callback_timeout)
        self._hooks: dict[str, list[Callable[[Any], Any]]] = {
            "on_request": _as_list(on_request),
            "on_response": _as_list(on_response),
            "on_error": _as_list(on_error),
            "on_budget_alert": _as_list(on_budget_alert),
        }
        # every callback of every hook, for the per-call question "is anything watching?" (one
        # truth test, not any() over the hooks' lists: ~1.4k instructions a call)
        self._every: list[Callable[[Any], Any]] = [
            cb for callbacks in self._hooks.values() for cb in callbacks]
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def __repr__(self) -> str:  # never the secrets
        n = {k: len(v) for k, v in self._hooks.items() if v}
        return f"Observer(source={self.source!r}, callbacks={n})"

    def add(self, hook: str, callback: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Registers ``callback`` for ``hook`` (one of :data:`HOOKS`); returns it (a decorator)."""
        if hook not in self._hooks:
            raise ValueError(f"unknown hook {hook!r}; one of {', '.join(HOOKS)}")
        self._hooks[hook].append(callback)
        self._every.append(callback)
        return callback

    @property
    def secrets(self) -> tuple[str, ...]:
        """The keys this observer masks (for another component that must scrub the same)."""
        return self._secrets

    def mask(self, keys: Iterable[str]) -> list[str]:
        """Remembers ``keys`` as secrets to mask in logs; returns them as a list."""
        keys = list(keys)
        self._secrets += tuple(k for k in keys if k and len(k) >= 4)
        return keys

    def with_source(self, source: str) -> Observer:
        """The same callbacks and secrets under another source name (the gateway's manager)."""
        twin = Observer(source, callback_timeout=self.callback_timeout, secrets=self._secrets)
        twin._hooks = self._hooks
        twin._every = self._every
        return twin

    def _fire(self, hook: str, arg: Any) -> None:
        if not self._hooks[hook]:
            return
        from . import _observe_dispatch  # imported on the first callback (inspect, logging)

        for cb in self._hooks[hook]:
            _observe_dispatch.submit(cb, arg, self.callback_timeout)

    def scrub(self, text: str) -> str:
        """``text`` without any of the keys (or anything shaped like one), escaped for a log."""
        for s in self._secrets:
            text = text.replace(s, "***")
        return log_text(_KEYLIKE.sub(lambda m: m.group(1)[:3] + "***", text))

    # -- a call's life --------------------------------------------------------------------------
    def _watched(self) -> bool:
        """Whether anything would see a call: a callback, the log at INFO, OpenTelemetry."""
        if self._every or "opentelemetry.trace" in sys.modules:
            return True
        # logging's answer where it keeps it (see _logs.package_logger), read without the frames
        # of enabled() and isEnabledFor (~1k instructions of every call); asked when not there
        known = _logs.package_logger
        if known is None:  # not made yet (logging not imported: enabled() answers without it)
            return enabled(_INFO)
        log, made_as, attrs, cache = known
        # `disabled` read from that dict (on CPython 3.11 and 3.12 an attribute read of an object
        # whose dict was made from its inline values is not specialised: ~900 instructions)
        info = (None if attrs["disabled"] or log.__class__ is not made_as or "isEnabledFor" in attrs
                else cache.get(_INFO))
        return enabled(_INFO) if info is None else info

    def start(self, *, model: str | None = None, stream: bool = False, messages: Any = None,
              params: Mapping[str, Any] | None = None, project: str | None = None) -> Call:
        """Begins observing one call: fires ``on_request`` and opens the span. When nothing
        watches (no callback, INFO off, no OpenTelemetry) the call costs one check."""
        if not self._watched():
            return _UNWATCHED
        event = CallEvent(call_id=os.urandom(8).hex(), source=self.source, model=model or "",
                          stream=stream, messages=messages, params=dict(params or {}),
                          project=project or "", started=time.time())
        started_ns = time.time_ns()
        span = None
        try:
            span = _observe_otel.start(event, started_ns)
        except Exception:  # noqa: BLE001 (a tracing problem never fails a call)
            logger().debug("opentelemetry span start failed", exc_info=True)
        shared = bool(self._hooks["on_request"])
        self._fire("on_request", event)
        return Call(self, event, span, shared)

    def budget_alerts(self, core_alerts: Iterable[Any]) -> None:
        """Fires ``on_budget_alert`` with an ``AlertEvent`` for each threshold the engine says
        a call crossed."""
        if not self._hooks["on_budget_alert"]:
            return
        from ._alerts import AlertEvent

        for a in core_alerts:
            self._fire("on_budget_alert", AlertEvent._from(a))


class Call:
    """One observed call; ends once, with :meth:`done`, :meth:`failed` or :meth:`cancelled`."""

    def __init__(self, observer: Observer | None, event: CallEvent | None, span: Any,
                 shared: bool = False) -> None:
        self._observer = observer
        self._event = event
        self._span = span
        self._shared = shared  # on_request callbacks hold the event: end on a copy
        self._t0 = time.perf_counter()
        self._ended = observer is None  # the unwatched call: every end is a no-op

    def __enter__(self) -> Call:  # noqa: PYI034 (final in practice; Self needs 3.11)
        return self

    @property
    def watched(self) -> bool:
        """Whether ending this call reports anything: callers skip gathering the fields of
        :meth:`done` when it does not (the common case, and a few µs per call)."""
        return not self._ended

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._ended:
            return
        if exc is None or isinstance(exc, GeneratorExit):
            self.cancelled()  # left without a result: the caller stopped early
        elif isinstance(exc, Exception):
            self.failed(exc)
        else:
            self.cancelled()

    def raised(self, exc: BaseException) -> None:
        """Ends the call with the exception that is leaving it (``cancelled`` for a
        ``CancelledError`` / ``KeyboardInterrupt``)."""
        self.__exit__(type(exc), exc, None)

    def done(self, **fields: Any) -> CallEvent | None:
        """Ends the call as answered: ``fields`` are :class:`CallEvent` attributes (tokens,
        cost, response_model, provider, ... ; ``outcome`` defaults to ``"ok"``)."""
        fields.setdefault("outcome", "ok")
        return self._end("on_response", fields)

    def failed(self, error: BaseException, **fields: Any) -> CallEvent | None:
        """Ends the call as failed with ``error``."""
        fields.setdefault("outcome", type(error).__name__)
        fields.setdefault("status", int(getattr(error, "status_code", 0) or 0))
        return self._end("on_error", {"error": error, **fields})

    def cancelled(self) -> CallEvent | None:
        """Ends a call the caller abandoned (no result, no error of its own)."""
        return self._end("on_error", {"outcome": "cancelled"})

    def _end(self, hook: str, fields: dict[str, Any]) -> CallEvent | None:
        if self._ended or self._event is None or self._observer is None:
            return self._event
        self._ended = True
        fields["latency"] = time.perf_counter() - self._t0
        event = copy.copy(self._event) if self._shared else self._event
        for name, value in fields.items():
            setattr(event, name, value)
        self._event = event
        if self._span is not None:
            try:
                _observe_otel.end(self._span, event)
            except Exception:  # noqa: BLE001
                logger().debug("opentelemetry span end failed", exc_info=True)
        self._log(self._observer, event)
        self._observer._fire(hook, event)
        return event

    @staticmethod
    def _log(observer: Observer, e: CallEvent) -> None:
        # One INFO line per call whatever its outcome: a failure is also raised to the caller
        # (the command line prints it), so a WARNING here would say it twice.
        level = _INFO
        if not enabled(level):
            return
        scrub = observer.scrub
        cost = "unknown" if e.cost is None else f"{e.cost:f}"
        line = ("%s call model=%s provider=%s prompt_tokens=%d completion_tokens=%d cost=%s "
                "latency_ms=%.1f outcome=%s")
        args: list[Any] = [e.source, scrub(e.response_model or e.model or "auto"),
                           scrub(e.provider or "-"), e.prompt_tokens, e.completion_tokens, cost,
                           e.latency * 1000, scrub(e.outcome)]
        if e.saved is not None:
            line += " saved=%s"
            args.append(f"{e.saved:f}")
        if e.error is not None:
            line += " status=%d error=%s"
            args += [e.status, scrub(str(e.error))]
        logger().log(level, line, *args, extra={"orroute_call": {
            "source": e.source, "model": scrub(e.response_model or e.model),
            "provider": scrub(e.provider),
            "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens,
            "cost": None if e.cost is None else str(e.cost), "latency": e.latency,
            "outcome": e.outcome, "call_id": e.call_id}})


_UNWATCHED = Call(None, None, None)  # what start() returns when nothing watches


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def completion_fields(body: Any) -> dict[str, Any]:
    """:class:`CallEvent` fields read from an OpenAI-shaped completion (a dict, or an object
    with ``model_dump()``): model, provider, id, finish reasons, tokens and the reported cost.
    Anything missing or of the wrong type is left out (the body is the upstream's)."""
    if hasattr(body, "model_dump"):
        body = body.model_dump()
    if not isinstance(body, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, name in (("model", "response_model"), ("provider", "provider"), ("id", "response_id")):
        if isinstance(body.get(key), str):
            out[name] = body[key]
    choices = body.get("choices")
    if isinstance(choices, list):
        out["finish_reasons"] = tuple(str(c["finish_reason"]) for c in choices
                                      if isinstance(c, Mapping) and c.get("finish_reason"))
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        out["prompt_tokens"] = _int(usage.get("prompt_tokens"))
        out["completion_tokens"] = _int(usage.get("completion_tokens"))
        cost = usage.get("cost")
        if isinstance(cost, (int, float, str)) and not isinstance(cost, bool):
            try:
                out["cost"] = Decimal(repr(cost) if isinstance(cost, float) else str(cost))
            except ArithmeticError:
                pass
    return out


def task_result_fields(r: Any) -> dict[str, Any]:
    """:class:`CallEvent` fields of a manager's ``TaskResult`` (the engine's settled figures)."""
    out = completion_fields(r.response)
    out.update(response_model=r.model, prompt_tokens=r.usage["prompt_tokens"],
               completion_tokens=r.usage["completion_tokens"], cost=r.cost,
               cost_source=r.cost_source, attempts=len(r.attempts), result=r)
    out.update(cache_fields(r.response))
    return out


def cache_fields(body: Any) -> dict[str, Any]:
    """``outcome`` ``"cache_hit"`` and ``saved`` when ``body`` was answered from the response
    cache (its ``orroute_cache`` mark), else nothing."""
    mark = body.get("orroute_cache") if isinstance(body, Mapping) else None
    if not (isinstance(mark, Mapping) and mark.get("hit") is True):
        return {}
    try:
        saved: Decimal | None = Decimal(str(mark.get("saved")))
    except ArithmeticError:
        saved = None
    return {"outcome": "cache_hit", "saved": saved}


def observe_result(call: Call, res: Mapping[str, Any]) -> None:
    """Ends ``call`` with an engine result (the gateway's calls, which never become a
    ``TaskResult``): the settled figures, or the exception the manager would have raised."""
    fields: dict[str, Any] = {
        "response_model": res.get("model") or "", "prompt_tokens": res.get("prompt_tokens", 0),
        "completion_tokens": res.get("completion_tokens", 0), "cost": res.get("cost"),
        "cost_source": res.get("cost_source", ""), "attempts": len(res.get("attempts") or ())}
    if res.get("ok"):
        if fields["cost_source"] == "cache":
            import json

            fields.update(cache_fields(json.loads(res.get("completion") or "{}")))
        call.done(**fields)
        return
    from ._engine import result_error  # the one result -> exception table

    call.failed(result_error(res), **fields)


def flush_callbacks(timeout: float = 5.0) -> bool:
    """Waits until the callbacks of the calls made so far have run (synchronous ones; coroutine
    callbacks run on their loop). True if they did within ``timeout`` seconds."""
    if "orroute._observe_dispatch" not in sys.modules:  # no callback has run: nothing to wait for
        return True
    from . import _observe_dispatch

    return _observe_dispatch.flush(timeout)
