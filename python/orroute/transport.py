"""httpx transports that answer in process through orroute: the drop-in for agent frameworks.

``openai.OpenAI(http_client=httpx.Client(transport=orroute.Transport()))`` (or
:func:`orroute.openai_client`) sends every openai call through orroute's router, in this process:
selection (aliases such as ``orroute/auto``), budgets and reservations, retries, fallbacks,
breakers, rate limits and the ledger, over the engine's libcurl client. Callers keep openai's
own types, streams and exceptions, so anything built on the openai SDK or on httpx works
unchanged (openai-agents, pydantic-ai, instructor, langchain-openai, litellm: docs/integrations.md).

The requests are answered by the gateway's own request handling (``orroute.gateway.app``), so
the routes, the validation and the error mapping (a budget refusal is HTTP 402 with code
``budget_exceeded``, an empty candidate list 503 ``no_model_available``, an unknown path 404) are
the gateway's, with no socket and no gateway key in between.

The transports serve both httpx-like libraries (``_http_libs``): ``httpx``, which openai 1.x and
2.x build on, and ``httpx2``, which openai 3.x builds on. One transport object works in a client
of either (its classes derive from the base classes of every library installed) and answers each
request with the response, stream and exception classes of the request's own library.
:func:`openai_client` builds its client on the library of the openai installed.

``httpx``/``httpx2`` (and ``openai`` for the helpers) are optional: this module is imported only
when one of its names is first used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from functools import cache
from types import ModuleType
from typing import Any

from . import _http_libs
from ._http_limits import HttpLimits
from ._http_server import RawRequest
from ._transport_pipe import Pipe, abandon, abort, content_length, finished, next_chunk
from .gateway.app import GatewayApp
from .gateway.errors import HttpError
from .gateway.keys import GatewayKey
from .gateway.settings import GatewaySettings

__all__ = ["AsyncTransport", "Transport", "async_openai_client", "openai_client"]

_log = logging.getLogger("orroute.transport")
#: What an openai client built by the helpers is given as base_url: never contacted (the
#: transport answers every request); ``.invalid`` cannot resolve should it ever leak.
BASE_URL = "http://orroute.invalid/v1"


class _InProcessKeys:
    """The gateway's key check, in process: there is no client to authenticate (the caller is
    this process), so every request runs under the transport's project."""

    def __init__(self, project: str) -> None:
        self.record = GatewayKey(id="in-process", project=project, name="in-process",
                                 created_at=0.0, revoked_at=None)

    def verify(self, token: str) -> GatewayKey:
        return self.record


class _Handler:
    """One gateway application serving requests handed over as httpx(2) requests. Used from any
    event loop, one at a time per loop (the sync transports share one of their own)."""

    def __init__(self, manager: Any, *, project: str, routes: dict[str, list[str]] | None,
                 fallback: bool, candidates: int, api_key: Any, write_timeout: float) -> None:
        keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
        settings = GatewaySettings(
            base_url=manager._base_url, api_key=",".join(keys) or None,
            strategy=manager._strategy, routes=dict(routes or {}), candidates=candidates,
            fallback_enabled=fallback, stream_queue=manager._stream_queue,
            http=HttpLimits(write_timeout=write_timeout),
        )
        selector = manager.selector
        self.manager = manager
        self.tasks: set[asyncio.Future[Any]] = set()  # requests still running (close cancels)
        self.app = GatewayApp(settings, keys=_InProcessKeys(project),  # type: ignore[arg-type]
                              tracker=manager.cost_tracker, catalog=selector.catalog,
                              selector=selector, manager=manager)

    async def open(self, request: Any, body: bytes) -> tuple[Pipe, Any]:
        """Starts the request; returns once the status and headers are known, with the pipe
        holding the body and the handler's task (None when the reply was written at once).
        The head is awaited under the caller's read timeout, as over a socket: a non-streamed
        call's head comes only with the whole reply, so a hung upstream would hold the caller
        until the engine's own, much longer, timeout."""
        target = request.url.raw_path.decode("ascii")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in request.headers.raw}
        headers.setdefault("authorization", "Bearer in-process")  # the gateway wants a token
        # HTTP/1.0: the gateway writes a stream unframed (no chunked encoding) and closes it.
        raw = RawRequest(request.method, target, "HTTP/1.0", headers, body, keep_alive=True)
        pipe = Pipe(self.app.settings.http.write_timeout)
        pending = self.app._handle(pipe, raw)  # type: ignore[arg-type]
        if pending is None:
            pipe.eof = True
            return pipe, None
        task = asyncio.ensure_future(pending)
        self.tasks.add(task)

        def ended(t: asyncio.Future[Any]) -> None:
            pipe._news.set()
            self.tasks.discard(t)

        task.add_done_callback(ended)
        try:
            await _within(pipe, task, request, pipe.wait(task, lambda: pipe.status))
        except BaseException:
            pipe.abort()
            task.cancel()
            raise
        if not pipe.status:  # the handler raised before answering: the server's 500
            if task.cancelled():  # Transport.close() while it started
                raise _http_libs.of(request).ReadError("the transport was closed",
                                                       request=request)
            _log.error("in-process request failed", exc_info=task.exception())
            pipe.write(_error_head(500, "internal error in orroute's request handling",
                                   "server_error"))
            pipe.eof = True
        elif (length := content_length(pipe.headers)) is not None and pipe._size >= length:
            pipe.eof = True  # a whole reply (one write): readers need not wait for the task
        return pipe, task


def _error_head(status: int, message: str, type_: str) -> bytes:
    body = HttpError(status, message, type_=type_).body()
    return (b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
            % (status, len(body), body))


def _read_timeout(request: Any) -> float | None:
    """The caller's httpx read timeout (None: wait as long as the engine does)."""
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, (int, float)) and read > 0 else None


async def _within(pipe: Pipe, task: Any, request: Any, wait: Any) -> Any:
    """Awaits ``wait`` under the caller's read timeout, as a socket read would be: a silent
    upstream raises the request library's ``ReadTimeout`` and the run is stopped (its hold
    released)."""
    try:
        return await asyncio.wait_for(wait, _read_timeout(request))
    except TimeoutError:
        await abort(pipe, task)
        raise _http_libs.of(request).ReadTimeout("no data within the read timeout",
                                                 request=request) from None


async def _next_within(pipe: Pipe, task: Any, request: Any) -> bytes:
    """``next_chunk`` under the caller's read timeout."""
    data: bytes = await _within(pipe, task, request, next_chunk(pipe, task))
    if not data:
        _raise_if_cut(pipe, request)
    return data


def _raise_if_cut(pipe: Pipe, request: Any) -> None:
    """A stream stopped because its reader took nothing for write_timeout ends in an error, as a
    socket closed mid-stream does: a clean end would pass the part read for a whole answer."""
    if pipe.reader_idle:
        raise _http_libs.of(request).ReadError(
            f"the stream was stopped: its reader took nothing for {pipe.write_timeout:g} s "
            "(the transport's write_timeout) while its buffer was full", request=request)


class _AsyncBody:
    """A reply's body for an async client; combined with its library's ``AsyncByteStream``
    (``_bodies``)."""

    def __init__(self, pipe: Pipe, task: Any, request: Any) -> None:
        self._pipe = pipe
        self._task = task
        self._request = request
        self._loop = asyncio.get_running_loop()

    def __del__(self) -> None:
        abandon(self._loop, self._pipe, self._task)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            data = await _next_within(self._pipe, self._task, self._request)
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        await abort(self._pipe, self._task)


#: The gateway's answers for an upstream that could not be reached or did not answer in time
#: (its mapping, gateway/app.py), raised as what an httpx transport raises for them (named in
#: the request's library), so openai raises APIConnectionError / APITimeoutError as it does for
#: a network failure of its own.
_NETWORK_FAILURES = {"upstream_unreachable": "ConnectError", "upstream_timeout": "ReadTimeout"}


def _raise_network_failure(pipe: Pipe, request: Any) -> None:
    if pipe.status not in (502, 504) or not pipe.eof:
        return
    try:
        error = json.loads(b"".join(pipe._chunks)).get("error") or {}
    except (ValueError, AttributeError):
        return
    code = error.get("code") if isinstance(error, dict) else None
    name = _NETWORK_FAILURES.get(code) if isinstance(code, str) else None
    if name is not None:
        exc = getattr(_http_libs.of(request), name)
        raise exc(str(error.get("message") or error.get("code")), request=request)


def _response(pipe: Pipe, request: Any, stream: Any) -> Any:
    return _http_libs.of(request).Response(pipe.status, headers=pipe.headers, stream=stream)


def _manager(manager: Any, kwargs: dict[str, Any]) -> Any:
    if manager is not None:
        if kwargs:
            raise TypeError(f"pass either a manager or its arguments, not both: {sorted(kwargs)}")
        return manager
    from .manager import AIModelManager

    return AIModelManager(**kwargs)


_WRITE_TIMEOUT = HttpLimits().write_timeout
_LIBS = _http_libs.installed()
#: Every installed library's transport base classes: one transport serves clients of either.
_ASYNC_BASES: Any = tuple(lib.AsyncBaseTransport for lib in _LIBS)
_SYNC_BASES: Any = tuple(lib.BaseTransport for lib in _LIBS)


class AsyncTransport(*_ASYNC_BASES):  # type: ignore[misc]
    """An ``httpx.AsyncBaseTransport`` (and ``httpx2.AsyncBaseTransport``, whichever are
    installed) answered by orroute in process (see the module doc).

    Args:
        manager: the ``orroute.AIModelManager`` whose engine, budgets and ledger serve the calls;
            None builds one from ``**manager_kwargs`` (``api_key``, ``budget``, ``ledger``,
            ``strategy``, ...).
        project: the project calls are booked under (budgets ``project:<name>`` apply); default
            the manager's project.
        routes: names a request's ``model`` may use for an ordered list of models (fallbacks).
        fallback: False tries one model per request.
        candidates: how many ranked models an alias (``orroute/auto``, ``orroute/cheapest``,
            ``orroute/best``, ``orroute/fast``) may fall back over.
        write_timeout: a streamed reply whose reader takes nothing for this many seconds while
            its buffer is full is stopped (its run settled at what was streamed), as the
            gateway's socket would: a stream dropped unclosed is otherwise freed only by a
            cyclic garbage collection, and holds its budget reservation until then.

    >>> client = openai.AsyncOpenAI(base_url="http://orroute.invalid/v1", api_key="-",
    ...     http_client=httpx.AsyncClient(transport=orroute.AsyncTransport()))  # doctest: +SKIP

    (openai 3.x: ``httpx2.AsyncClient``.)
    """

    def __init__(self, manager: Any = None, *, project: str | None = None,
                 routes: dict[str, list[str]] | None = None, fallback: bool = True,
                 candidates: int = 3, write_timeout: float = _WRITE_TIMEOUT,
                 **manager_kwargs: Any) -> None:
        self.manager = _manager(manager, manager_kwargs)
        self._handler = _Handler(self.manager, project=project or self.manager._project or "",
                                 routes=routes, fallback=fallback, candidates=candidates,
                                 api_key=manager_kwargs.get("api_key"),
                                 write_timeout=write_timeout)

    async def handle_async_request(self, request: Any) -> Any:
        body = await request.aread()
        pipe, task = await self._handler.open(request, body)
        _raise_network_failure(pipe, request)
        return _response(pipe, request, _bodies(_http_libs.of(request))[1](pipe, task, request))


class _SyncBody:
    """A reply's body for a sync client; combined with its library's ``SyncByteStream``
    (``_bodies``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: Pipe, task: Any,
                 request: Any) -> None:
        self._loop = loop
        self._pipe = pipe
        self._task = task
        self._request = request

    def __del__(self) -> None:
        abandon(self._loop, self._pipe, self._task)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if finished(self._pipe, self._task):  # the whole reply is here: no thread hop
                data = self._pipe.take()
                if data:
                    yield data
                _raise_if_cut(self._pipe, self._request)
                return
            data = _run(self._loop, _next_within(self._pipe, self._task, self._request))
            if not data:
                return
            yield data

    def close(self) -> None:
        if not finished(self._pipe, self._task):
            _run(self._loop, abort(self._pipe, self._task))


@cache
def _bodies(lib: ModuleType) -> tuple[type[_SyncBody], type[_AsyncBody]]:
    """The body streams for ``lib``'s clients, which accept only their library's stream
    classes (``assert isinstance(response.stream, SyncByteStream)``)."""
    return (type("SyncBody", (_SyncBody, lib.SyncByteStream), {}),
            type("AsyncBody", (_AsyncBody, lib.AsyncByteStream), {}))


def _run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    """Runs ``coro`` on the transport's loop; an interrupted caller cancels it there."""
    fut = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return fut.result()
    except BaseException:
        fut.cancel()
        raise


_shared_lock = threading.Lock()
_shared: asyncio.AbstractEventLoop | None = None


def _forget_shared_loop_in_child() -> None:
    """A forked child has no loop thread (and the loop's selector is shared with the parent's):
    its first sync request starts its own."""
    global _shared, _shared_lock
    _shared_lock = threading.Lock()
    _shared = None


os.register_at_fork(after_in_child=_forget_shared_loop_in_child)


def _shared_loop() -> asyncio.AbstractEventLoop:
    """The event loop every sync transport runs its requests on: one daemon thread per process,
    started on first use (a client per call must not cost a thread per call)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="orroute-transport",
                             daemon=True).start()
            _shared = loop
        return _shared


class Transport(*_SYNC_BASES):  # type: ignore[misc]
    """An ``httpx.BaseTransport`` (and ``httpx2.BaseTransport``, whichever are installed)
    answered by orroute in process; same arguments as
    :class:`AsyncTransport`. Requests run on one event loop thread shared by every sync
    transport (started on first use), so it serves any number of threads; ``close()`` cancels
    the requests still running.

    >>> client = openai.OpenAI(base_url="http://orroute.invalid/v1", api_key="-",
    ...     http_client=httpx.Client(transport=orroute.Transport()))  # doctest: +SKIP

    (openai 3.x: ``httpx2.Client``.)
    """

    def __init__(self, manager: Any = None, *, project: str | None = None,
                 routes: dict[str, list[str]] | None = None, fallback: bool = True,
                 candidates: int = 3, write_timeout: float = _WRITE_TIMEOUT,
                 **manager_kwargs: Any) -> None:
        self.manager = _manager(manager, manager_kwargs)
        self._handler = _Handler(self.manager, project=project or self.manager._project or "",
                                 routes=routes, fallback=fallback, candidates=candidates,
                                 api_key=manager_kwargs.get("api_key"),
                                 write_timeout=write_timeout)

    def handle_request(self, request: Any) -> Any:
        body = request.read()
        loop = _shared_loop()
        pipe, task = _run(loop, self._handler.open(request, body))
        _raise_network_failure(pipe, request)
        body_stream = _bodies(_http_libs.of(request))[0](loop, pipe, task, request)
        return _response(pipe, request, body_stream)

    def close(self) -> None:
        """Cancels this transport's requests still running (their reservations are released)."""
        if not self._handler.tasks:
            return

        async def cancel_mine() -> None:
            tasks = list(self._handler.tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        _run(_shared_loop(), cancel_mine())


def openai_client(manager: Any = None, *, project: str | None = None,
                  routes: dict[str, list[str]] | None = None, fallback: bool = True,
                  candidates: int = 3, max_retries: int = 0, **openai_kwargs: Any) -> Any:
    """A real ``openai.OpenAI`` whose every call goes through orroute in process.

    ``manager`` (an ``orroute.AIModelManager``; None: one from the environment) and ``project``,
    ``routes``, ``fallback``, ``candidates`` are :class:`Transport`'s. ``max_retries`` is openai's
    own and defaults to 0: orroute already retries and falls back. Other keyword arguments go to
    ``openai.OpenAI`` (``timeout``, ``default_headers``, ...). The client is built on the HTTP
    library of the installed openai (httpx for 1.x/2.x, httpx2 for 3.x).

    >>> client = orroute.openai_client(orroute.AIModelManager(budget=5))       # doctest: +SKIP
    >>> client.chat.completions.create(model="orroute/auto", messages=msgs)    # doctest: +SKIP
    """
    import openai

    transport = Transport(manager, project=project, routes=routes, fallback=fallback,
                          candidates=candidates)
    openai_kwargs.setdefault("api_key", "orroute-in-process")  # openai requires one; unused
    openai_kwargs.setdefault("base_url", BASE_URL)
    http = _http_libs.for_openai(openai)
    return openai.OpenAI(http_client=http.Client(transport=transport),
                         max_retries=max_retries, **openai_kwargs)


def async_openai_client(manager: Any = None, *, project: str | None = None,
                        routes: dict[str, list[str]] | None = None, fallback: bool = True,
                        candidates: int = 3, max_retries: int = 0,
                        **openai_kwargs: Any) -> Any:
    """A real ``openai.AsyncOpenAI`` whose every call goes through orroute in process; the
    arguments are :func:`openai_client`'s."""
    import openai

    transport = AsyncTransport(manager, project=project, routes=routes, fallback=fallback,
                               candidates=candidates)
    openai_kwargs.setdefault("api_key", "orroute-in-process")
    openai_kwargs.setdefault("base_url", BASE_URL)
    http = _http_libs.for_openai(openai)
    return openai.AsyncOpenAI(http_client=http.AsyncClient(transport=transport),
                              max_retries=max_retries, **openai_kwargs)
