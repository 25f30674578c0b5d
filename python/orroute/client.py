"""OpenAI-shaped clients for OpenRouter (and any OpenAI-compatible endpoint) on orroute's C++ core.

The C++ core does the HTTP (one libcurl event loop thread per client), the SSE parsing, the JSON,
the retries and the key rotation; this module only shapes arguments and results.

>>> client = orroute.OpenRouter(api_key="sk-or-v1-...")                     # doctest: +SKIP
>>> r = client.chat.completions.create(model="openai/gpt-4o-mini",
...                                    messages=[{"role": "user", "content": "hi"}])  # doctest: +SKIP
>>> r.choices[0].message.content, r.usage.cost                             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import quote

from . import _client_surface as _surface
from . import _core, _engine
from ._engine import lend_terms as _lend_terms  # read on every awaited call: one global
from ._exceptions import APIError, InvalidArgumentError
from .config import DEFAULT_BASE_URL as _DEFAULT_BASE_URL
from .config import Settings, api_keys, cache_dir, runtime_settings
from .observe import _UNWATCHED, Call, Observer, cache_fields, completion_fields
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    CompletionUsage,
    Credits,
    Generation,
    KeyInfo,
    Model,
    ModelList,
)

if TYPE_CHECKING:  # typing_extensions is not a run-time dependency (Self is typing's from 3.11)
    from typing_extensions import Self

__all__ = ["DEFAULT_BASE_URL", "AsyncOpenRouter", "AsyncStream", "OpenRouter", "Stream", "Timeout"]

DEFAULT_BASE_URL: str = _DEFAULT_BASE_URL  # the core owns it; config.py names it
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2
MODELS_CACHE_TTL = 3600.0
_QUEUE_CAPACITY = 64  # stream events held before the transfer is paused (the core's default)
_CHAT_PATH = "/chat/completions"
_JsonRef = _core.JsonRef
_NOT_LENT = (None, None, None, None)  # _engine.lend_terms's, for a call not awaited
# The types a request field's value usually has, none of them one of openai's "omit" markers
_JSON_TYPES = frozenset({str, int, float, bool, list, dict, tuple})

# Every request field of OpenRouter's /chat/completions (openrouter-api.md §1) besides model,
# messages and stream. Anything newer goes through extra_body.
CHAT_FIELDS = frozenset(
    ["stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty", "repetition_penalty", "min_p", "top_a", "seed", "stop", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "response_format", "prediction", "user", "modalities", "metadata", "service_tier", "verbosity", "web_search_options", "models", "route", "provider", "reasoning", "reasoning_effort", "include_reasoning", "usage", "transforms", "plugins", "session_id", "prompt_cache_key", "cache_control", "prompt_cache_options", "debug", "trace", "image_config", "stop_server_tools_when", "prompt", "n", "audio", "store"]
)


@dataclass(frozen=True)
class Timeout:
    """Timeouts in seconds (None = no limit).

    Args:
        connect: TCP and TLS handshake.
        first_byte: from sending to the first byte of the response.
        idle: longest gap between two pieces of a streamed body; SSE comments and pings
            (OpenRouter's ``: OPENROUTER PROCESSING``) are keep-alives, not pieces, so a stream
            that sends only those for this long ends.
        total: the whole request.

    >>> Timeout(connect=5, first_byte=30, idle=60)
    Timeout(connect=5, first_byte=30, idle=60, total=None)
    """

    connect: float | None = 10.0
    first_byte: float | None = None
    idle: float | None = None
    total: float | None = None

    def _tuple(self) -> tuple[float | None, float | None, float | None, float | None]:
        return (self.connect, self.first_byte, self.idle, self.total)


def _timeouts(timeout: float | Timeout | None, stream: bool) -> tuple[Any, Any, Any, Any]:
    """A float means: total time for a plain call; first byte and idle gap for a stream."""
    timeout = _surface.timeout_of(timeout)  # httpx.Timeout, openai.NOT_GIVEN
    if timeout is ...:
        timeout = DEFAULT_TIMEOUT
    if isinstance(timeout, Timeout):
        return timeout._tuple()
    if isinstance(timeout, tuple) and len(timeout) == 4:  # an httpx.Timeout, converted
        return timeout
    if timeout is None:
        return (10.0, None, None, None)
    t = float(timeout)
    if t <= 0:
        raise InvalidArgumentError(f"timeout must be positive, got {timeout!r}")
    return (min(10.0, t), t, t, None) if stream else (min(10.0, t), None, None, t)


# ------------------------------------------------------------------------------------------------
# Streams


def _keyless(core: Any) -> bool:
    """No key for OpenRouter itself: every call but ``/models`` would be answered 401."""
    return not core.masked_keys() and core.base_url.rstrip("/") == DEFAULT_BASE_URL.rstrip("/")


def _own_credentials(headers: Mapping[str, str] | None) -> bool:
    """A call sent with its own ``Authorization`` (another account): the response cache, scoped
    by the client's keys, is not used for it."""
    return bool(headers) and any(str(k).lower() == "authorization" for k in headers)  # type: ignore[union-attr]


# A chat call under way, as ``_open`` returns it: its observation, its cache lookup (None: no
# cache), whether it streams, whether a stream shows its usage chunk, and the sent call (None:
# answered by the cache). A plain tuple: a class made and freed per call cost ~4k instructions.
_Opened = tuple[Call, Any, bool, bool, Any]


def _store_of(cached: Any) -> Callable[[dict[str, Any]], None] | None:
    """Where a finished stream's completion goes (the cache), if anywhere."""
    return cached.store if cached is not None else None


def _reported(r: ChatCompletion, observed: Call, cached: Any) -> ChatCompletion:
    """Caches and reports a finished completion."""
    if cached is not None:
        cached.store(r.model_dump())
    if observed.watched:
        observed.done(**completion_fields(r), result=r)
    return r


class _StreamBase:
    def __init__(self, core_stream: Any, observed: Call | None = None,
                 on_complete: Callable[[dict[str, Any]], None] | None = None,
                 include_usage: bool = True) -> None:
        self._cs = core_stream
        self._finished = False
        self._observed = observed  # the call's log line, callbacks and span (orroute.observe)
        self._on_complete = on_complete  # the response cache keeps the finished completion
        self._include_usage = include_usage

    def _hidden(self, kind: int, chunk: Any) -> bool:
        """The final usage chunk (no choices), unless asked for with ``stream_options=
        {"include_usage": True}``, as openai does (``.usage`` has it either way)."""
        return kind == 0 and not self._include_usage and _surface.usage_only(chunk)

    @property
    def text(self) -> str:
        """The text received so far (the partial text after a StreamError)."""
        return self._cs.text(0)

    @property
    def usage(self) -> CompletionUsage | None:
        """The usage of the final chunk (tokens, cost), once received."""
        u = self._cs.usage()
        return CompletionUsage(u) if u else None

    def get_final_completion(self) -> ChatCompletion:
        """Everything received, assembled as a ChatCompletion (tool-call deltas joined)."""
        return ChatCompletion(self._cs.completion())

    @property
    def generation_id(self) -> str | None:
        return self._cs.completion().get("id") or None

    def _item(self, kind: int, chunk: Any) -> ChatCompletionChunk | None:
        if kind == 0:
            return ChatCompletionChunk(chunk)
        self._finished = True
        if kind == 3:
            err = _engine.api_error(self._cs.error(), partial=self._cs.text(0))
            if self._observed is not None:
                self._observed.failed(err)
            raise err
        if self._on_complete is not None:
            self._on_complete(dict(self._cs.completion(), usage=self._cs.usage()))
        if self._observed is not None:
            fields = completion_fields(self._cs.completion())
            fields.update(completion_fields({"usage": self._cs.usage()}))
            self._observed.done(**fields)
        return None  # end

    def _close(self) -> None:
        if not self._finished:
            self._finished = True
            self._cs.cancel()
            if self._observed is not None:
                self._observed.cancelled()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the core may be gone
            self._close()


class Stream(_StreamBase):
    """Chunks of a streamed completion: an iterator and a context manager.

    Closing it (or leaving the ``with`` block, or breaking out of the loop and dropping it) aborts
    the transfer at once. A mid-stream error raises ``StreamError`` after the chunks before it.

    >>> with client.chat.completions.create(model=m, messages=msgs, stream=True) as s:  # doctest: +SKIP
    ...     text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    """

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        if self._finished:
            raise StopIteration
        while True:
            kind, chunk = self._cs.next(0.25)  # GIL released while waiting
            if kind != 1 and not self._hidden(kind, chunk):
                break
        item = self._item(kind, chunk)
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        """Aborts the transfer if it is still running (no-op afterwards)."""
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_StreamBase):
    """Async twin of ``Stream``: an async iterator and an async context manager. Cancelling the task
    that iterates it aborts the transfer."""

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._finished:
            raise StopAsyncIteration
        while True:
            kind, chunk = self._cs.try_next()
            if self._hidden(kind, chunk):
                continue
            if kind != 1:
                break
            try:
                await _engine.bridge().wait(self._cs)
            except BaseException:
                self._close()
                raise
        item = self._item(kind, chunk)
        if item is None:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._close()

    aclose = close

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close()



# ------------------------------------------------------------------------------------------------
# Clients


def _account_scope(base_url: str, keys: Sequence[str]) -> str:
    """The response cache's scope of a client: its endpoint and its keys, as a digest (the
    cache file is shared by every client of the user; another key is another account, whose
    answers this one must never be served, and a key is never stored)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return f"{base_url}\nkeys:{digest}"


class _Base:
    def __init__(
        self,
        *,
        api_key: str | Sequence[str] | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        stream_deadline: float | None = None,
        app_name: str | None = None,
        app_url: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        settings: Settings | None = None,
        on_request: Any = None,
        on_response: Any = None,
        on_error: Any = None,
        on_budget_alert: Any = None,
        cache: Any = None,
        _core_client: Any = None,
        _observer: Observer | None = None,
        _cache_scope: str = "",
    ) -> None:
        if max_retries < 0:
            raise InvalidArgumentError("max_retries must be >= 0")
        self._timeout = timeout
        # the timeout as the core takes it, for a plain call and for a stream (_default_timeouts)
        self._timeout_pair: tuple[Any, Any] | None = None
        self._max_retries = max_retries
        # _core's chat_sender (a plain chat call and its reply in one call), made on first use
        # and again if _core is replaced
        self._sender: tuple[Any, Any] = (None, None)
        self._headers = list((default_headers or {}).items())
        self._observe = _observer or Observer(
            "client", on_request=on_request, on_response=on_response, on_error=on_error,
            on_budget_alert=on_budget_alert)
        if _core_client is not None:
            self._core = _core_client
            self._cache = cache or None
            self._cache_scope = _cache_scope
            self._keyless = _keyless(_core_client)
            return
        s = runtime_settings(settings)  # environment, .env, config file: config.py's reading
        from .cache import resolve_cache

        self._cache = resolve_cache(cache, settings=s)  # see orroute.cache
        keys = self._observe.mask(api_keys(api_key))
        self._core = _engine.new_client(
            base_url=base_url or s.base_url,
            api_keys=keys,
            app_name=app_name or s.app_name or "",
            app_url=app_url or s.app_url or "",
            timeouts=_timeouts(timeout, False),
            stream_timeouts=_timeouts(timeout, True),
            max_retries=max_retries,
            stream_deadline=stream_deadline,
        )
        self._keyless = _keyless(self._core)
        self._cache_scope = _account_scope(self._core.base_url, keys) if self._cache else ""

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def api_keys(self) -> list[str]:
        """The configured keys, masked."""
        return self._core.masked_keys()

    @property
    def api_key(self) -> str:
        """The first configured key, masked (openai's attribute; orroute never hands a key back)."""
        keys = self._core.masked_keys()
        return keys[0] if keys else ""

    @property
    def max_retries(self) -> int:
        return self._max_retries

    @property
    def timeout(self) -> float | Timeout | None:
        return self._timeout

    def __repr__(self) -> str:
        keys = self._core.masked_keys()
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={keys[0] if len(keys) == 1 else keys!r})"

    def with_options(
        self,
        *,
        timeout: float | Timeout | None | Any = ...,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        **_openai_only: Any,
    ) -> Any:
        """A client sharing this one's connections, with other per-call defaults (``copy`` in
        openai; its other arguments, such as ``http_client``, have no meaning here)."""
        timeout = _surface.timeout_of(timeout)
        clone = type(self)(
            timeout=self._timeout if timeout is ... else timeout,
            max_retries=self._max_retries if max_retries is None else max_retries,
            _core_client=self._core,
            _observer=self._observe,
            cache=self._cache,
            _cache_scope=self._cache_scope,
        )
        clone._headers = self._headers + list((default_headers or {}).items())
        return clone

    copy = with_options

    @property
    def callbacks(self) -> Observer:
        """The :class:`orroute.observe.Observer` of this client's chat calls:
        ``client.callbacks.add("on_response", fn)`` registers one more callback."""
        return self._observe

    def _cache_lookup(self, model: str | None, messages: Any, params: dict[str, Any],
                      extra_body: Mapping[str, Any] | None, cache: bool,
                      extra_headers: Mapping[str, str] | None) -> Any:
        """The response cache's answer for this request (None: no cache, opted out, or sent
        with its own credentials)."""
        if self._cache is None or cache is False or _own_credentials(extra_headers):
            return None
        from ._client_cache import Lookup

        return Lookup(self._cache, self._chat_body(model, messages, False, params, extra_body),
                      self._cache_scope)

    # -- request building (defaults and shape only; the core validates and sends) --------------
    def _start(
        self,
        method: str,
        path: str,
        body: Any = None,
        stream: bool = False,
        chat: bool = False,
        timeout: Any = ...,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        not_found_retries: int = 0,
        blocking: bool = False,
        lend_to: Any = None,
    ) -> Any:
        """Starts a call; ``blocking`` (a plain call of a sync client): returns it finished, sent
        and waited for on this thread while the network loop's own thread is idle (no hand-off
        between threads, which costs a plain call's latency two wake-ups). ``lend_to`` (a plain
        call that the running event loop awaits next: its bridge's notifier): on an idle loop
        the reply is read on the event loop's thread too."""
        if self._keyless and not path.startswith("/models"):
            raise _surface.missing_key_error()
        if timeout is ... or timeout is self._timeout:
            timeouts = self._default_timeouts(stream)
        else:
            timeouts = _timeouts(timeout, stream)
        retries = self._max_retries if max_retries is None else max_retries
        headers = self._headers + list(extra_headers.items()) if extra_headers else self._headers
        # positional: pybind11 matches each keyword by name, ~0.3 µs apiece on every call
        return self._core.start(method, path, body, stream, retries, timeouts, headers,
                                not_found_retries, chat, _QUEUE_CAPACITY, blocking and not stream,
                                None if stream else lend_to)

    def _default_timeouts(self, stream: bool) -> tuple[Any, Any, Any, Any]:
        """The client's timeout as the core takes it (worked out once per client and mode)."""
        pair = self._timeout_pair
        if pair is None:  # on first use: an invalid timeout fails the call, as before
            pair = self._timeout_pair = (_timeouts(self._timeout, False), _timeouts(self._timeout, True))
        return pair[stream]

    def _start_chat(
        self,
        model: str | None,
        messages: Any,
        stream: bool,
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None,
        timeout: Any,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, Any] | None = None,
        blocking: bool = False,
        lend_to: Any = None,
    ) -> Any:
        """Validates the chat request and starts it on the transport (shared by sync and async)."""
        # (the usual call has no extra_query and the client's timeout: no call to convert either;
        # positional: a keyword is matched by name in every call)
        return self._start(
            "POST",
            _surface.with_query(_CHAT_PATH, extra_query) if extra_query else _CHAT_PATH,
            self._chat_body(model, messages, stream, params, extra_body),
            stream, True, timeout if timeout is ... else _surface.timeout_of(timeout),
            max_retries, extra_headers, 0, blocking, lend_to,
        )

    def _chat(
        self,
        model: str | None,
        messages: Any,
        stream: bool,
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None,
        timeout: Any,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, Any] | None,
        blocking: bool,
        bridge: Any,
    ) -> Any:
        """``_start_chat`` of ``create``: a stream's call; a plain call's reply (a ``JsonRef``)
        when it came back within this call (``blocking``, or served on the idle event loop of
        ``bridge``: see ``_start``), else its call. The same checks and request as ``_start``,
        through one core function instead of ``NetClient.start``, the call's ``done``,
        ``serve_lent`` and ``chat_reply``."""
        if stream:
            return self._start_chat(model, messages, stream, params, extra_body, timeout,
                                    max_retries, extra_headers, extra_query)
        path = _surface.with_query(_CHAT_PATH, extra_query) if extra_query else _CHAT_PATH
        body = self._chat_body(model, messages, False, params, extra_body)
        if self._keyless:
            raise _surface.missing_key_error()
        if timeout is not ...:
            timeout = _surface.timeout_of(timeout)  # openai's NOT_GIVEN is `...`, as in _start_chat
        if timeout is ... or timeout is self._timeout:  # the pair read without a frame when made
            pair = self._timeout_pair
            timeouts = pair[0] if pair is not None else self._default_timeouts(False)
        else:
            timeouts = _timeouts(timeout, False)
        headers = self._headers + list(extra_headers.items()) if extra_headers else self._headers
        _, lend_to, loop_fd, serve = (_NOT_LENT if bridge is None
                                      else _lend_terms(True, bridge))
        core, send = self._sender
        if core is not self._core:
            core, send = self._sender = (self._core, _core.chat_sender(self._core))
        return send(path, body, self._max_retries if max_retries is None else max_retries,
                    timeouts, headers, blocking, lend_to, loop_fd, serve)

    @staticmethod
    def _chat_body(
        model: str | None,
        messages: Any,
        stream: bool,
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        # Fields newer than CHAT_FIELDS are sent as given (openai's newer keywords, such as
        # prompt_cache_retention); openai's NOT_GIVEN / omit mean "leave it out" (a value of a
        # JSON type never is one: no check for it).
        body: dict[str, Any] = {}
        if model is not None:
            body["model"] = model
        body["messages"] = list(messages) if not isinstance(messages, list) else messages
        if stream:
            body["stream"] = True
        for k, v in params.items():
            if v is not None and (type(v) in _JSON_TYPES or not _surface.is_omitted(v)):
                body[k] = v
        if extra_body:
            body.update(extra_body)
        return body

    @staticmethod
    def _result(call: Any) -> Any:
        return _engine.call_result(call)

    @staticmethod
    def _completion(call: Any) -> ChatCompletion:
        """The finished chat call's reply as a ChatCompletion (or its exception); ``call`` may
        be the reply itself (``_chat``)."""
        if type(call) is _JsonRef:
            return ChatCompletion._over(call)
        # the usual reply (answered, a JSON object, no "error") in one call; else chat_result's checks
        body = call.chat_reply()
        return ChatCompletion._over(body if body is not None else _engine.chat_result(call))

    def _models_cache_path(self) -> Path:
        digest = hashlib.sha1(self.base_url.encode()).hexdigest()[:12]
        return cache_dir() / f"models-{digest}.json"

    def _models_from_cache(self, ttl: float | None) -> dict[str, Any] | None:
        path = self._models_cache_path()
        try:
            if ttl is not None and time.time() - path.stat().st_mtime > ttl:
                return None
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _models_store(self, body: dict[str, Any]) -> None:
        path = self._models_cache_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass

    @staticmethod
    def _bundled_models() -> dict[str, Any] | None:
        for name in ("openrouter_models.json", "models.json"):
            p = Path(__file__).with_name("data") / name
            if p.exists():
                try:
                    return json.loads(p.read_text(encoding="utf-8"))
                except ValueError:
                    continue
        return None


class _CompletionsBase:
    """What the sync and async ``chat.completions`` share: starting a call, raw responses."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _begin(self, messages: Any, model: Any, stream: Any, extra_body: Any,
               extra_headers: Any, extra_query: Any, timeout: Any, max_retries: Any,
               params: dict[str, Any]) -> tuple[Any, bool, bool]:
        stream = bool(stream) and not _surface.is_omitted(stream)
        include_usage = _surface.wants_usage_chunk(params)
        call = self._client._start_chat(model, messages, stream, params, extra_body, timeout,
                                        max_retries, extra_headers, extra_query)
        return call, stream, include_usage

    def _open(self, messages: Any, model: Any, stream: Any, extra_body: Any, extra_headers: Any,
              extra_query: Any, timeout: Any, max_retries: Any, cache: bool,
              params: dict[str, Any], blocking: bool = False, bridge: Any = None) -> _Opened:
        """The part of ``create`` both clients share: the call observed, the response cache asked
        (a hit: no call), else the request sent (the call: see ``_chat``), as an ``_Opened``."""
        c = self._client
        stream = bool(stream) and not _surface.is_omitted(stream)
        include_usage = stream and _surface.wants_usage_chunk(params)  # a stream's only
        watch = c._observe  # asked first: start()'s frame and keywords only for a watched call
        observed = (watch.start(model=model, stream=stream, messages=messages, params=params)
                    if watch._watched() else _UNWATCHED)
        try:
            cached = (c._cache_lookup(model, messages, params, extra_body, cache, extra_headers)
                      if c._cache is not None else None)
            if cached is not None and cached.hit is not None:
                return observed, cached, stream, include_usage, None
            call = c._chat(model, messages, stream, params, extra_body, timeout, max_retries,
                           extra_headers, extra_query, blocking, bridge)
        except BaseException as e:
            observed.raised(e)
            raise
        return observed, cached, stream, include_usage, call

    @property
    def with_raw_response(self) -> _RawCompletions:
        """``with_raw_response.create(...)``: the status and headers too (``.parse()``)."""
        return _RawCompletions(self)


class _Completions(_CompletionsBase):

    @overload
    def create(
        self,
        *,
        messages: Sequence[Any],
        model: str | None = ...,
        stream: Literal[False] = ...,
        **params: Any,
    ) -> ChatCompletion: ...
    @overload
    def create(
        self,
        *,
        messages: Sequence[Any],
        model: str | None = ...,
        stream: Literal[True],
        **params: Any,
    ) -> Stream: ...

    def create(
        self,
        *,
        messages: Sequence[Any],
        model: str | None = None,
        stream: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | Timeout | None | Any = ...,
        max_retries: int | None = None,
        cache: bool = True,
        **params: Any,
    ) -> ChatCompletion | Stream:
        """Creates a chat completion (``stream=True``: a ``Stream`` of chunks; the final usage
        chunk only with ``stream_options={"include_usage": True}``, as in openai).

        Takes every field of OpenRouter's request (tools, response_format, models, provider,
        reasoning, plugins, ...) as keyword arguments, newer ones too (sent as given);
        ``extra_body`` / ``extra_headers`` / ``extra_query`` as in openai. Raises the
        ``APIError`` subclass matching the failure after the retries are spent.
        With a response cache (``OpenRouter(cache=True)``, see :mod:`orroute.cache`) a repeated
        request is answered from it (``cache=False``: not this call).
        """
        observed, cached, stream, include_usage, call = self._open(
            messages, model, stream, extra_body, extra_headers, extra_query, timeout, max_retries,
            cache, params, True)
        if call is None:
            return _cache_hit(cached, observed, stream, asynchronous=False)
        if stream:
            return Stream(_engine.stream_of(call), observed, _store_of(cached), include_usage)
        try:  # the reply itself, unless the call failed or was not a plain reply (_completion)
            r = ChatCompletion._over(call) if type(call) is _JsonRef else self._client._completion(call)
        except BaseException as e:
            observed.raised(e)
            raise
        return r if cached is None and observed is _UNWATCHED else _reported(r, observed, cached)

    def _finish(self, call: Any, stream: bool, include_usage: bool) -> Any:
        if stream:
            return Stream(_engine.stream_of(call), include_usage=include_usage)
        call.wait_done()
        return self._client._completion(call)

    def parse(self, *, response_format: Any, **kwargs: Any) -> ChatCompletion:
        """``create`` with ``response_format`` a pydantic model class (sent as a JSON schema);
        each choice's ``message.parsed`` is the validated object."""
        fmt, model_cls = _surface.response_format_of(response_format)
        return _surface.parse_choices(self.create(response_format=fmt, **kwargs), model_cls)

    def stream(self, **kwargs: Any) -> _surface.EventStream:
        """openai's streaming helper: ``with ...stream(model=, messages=) as s: for event in s``
        (events ``chunk``, ``content.delta``, ``content.done``), then ``s.get_final_completion()``."""
        return _surface.EventStream(self.create(stream=True, **kwargs))


class _RawCompletions:
    def __init__(self, completions: Any) -> None:
        self._completions: Any = completions

    def create(self, *, messages: Sequence[Any], model: str | None = None, stream: bool = False,
               extra_body: Mapping[str, Any] | None = None,
               extra_headers: Mapping[str, str] | None = None,
               extra_query: Mapping[str, Any] | None = None, timeout: Any = ...,
               max_retries: int | None = None, **params: Any) -> Any:
        c = self._completions
        call, stream, include_usage = c._begin(messages, model, stream, extra_body,
                                               extra_headers, extra_query, timeout, max_retries,
                                               params)
        if isinstance(c, _AsyncCompletions):
            async def finish() -> _surface.RawResponse:
                return _surface.RawResponse(call, await c._afinish(call, stream, include_usage))

            return finish()
        return _surface.RawResponse(call, c._finish(call, stream, include_usage))


class _Chat:
    def __init__(self, client: Any, completions_cls: type) -> None:
        self.completions = completions_cls(client)


class _Models:
    def __init__(self, client: Any) -> None:
        self._client = client

    def list(
        self, *, refresh: bool = False, ttl: float = MODELS_CACHE_TTL, fallback: bool = True
    ) -> ModelList:
        """The model list from ``{base_url}/models``, cached on disk for ``ttl`` seconds; offline it
        falls back to the last cached copy, then to the bundled snapshot (``fallback=False``:
        raises the ``APIError`` instead)."""
        if not refresh and (cached := self._cached(ttl)) is not None:
            return cached
        try:
            body = self._client._get("/models")
        except APIError:  # APIConnectionError included
            if (offline := self._offline(fallback)) is None:
                raise
            return offline
        return self._fresh(body)

    def retrieve(self, model: str, **_openai_options: Any) -> Model:
        """One model of ``list()`` (cached like it); ``NotFoundError`` when it has no such id."""
        return _surface.retrieve_model(self.list(), model)

    # The sync and async list() differ only in how they wait for the GET.
    def _cached(self, ttl: float) -> ModelList | None:
        cached = self._client._models_from_cache(ttl)
        return None if cached is None else ModelList(cached)

    def _offline(self, fallback: bool) -> ModelList | None:
        if not fallback:
            return None
        c = self._client
        offline = c._models_from_cache(None) or c._bundled_models()
        return None if offline is None else ModelList(offline)

    def _fresh(self, body: dict[str, Any]) -> ModelList:
        self._client._models_store(body)
        return ModelList(body)


class OpenRouter(_Base):
    """Synchronous client (the ``openai.OpenAI`` shape).

    Args:
        api_key: a key, several keys (list or comma-separated; they rotate and a key the server
            rejects with 401/402 is set aside), or None for ``OPENROUTER_API_KEY`` / ``./.env``.
        base_url: defaults to ``OPENROUTER_BASE_URL`` or https://openrouter.ai/api/v1; any
            OpenAI-compatible endpoint works.
        timeout: seconds (total for a plain call; first byte and idle gap for a stream) or a
            ``Timeout``.
        stream_deadline: seconds a stream may last in all when ``timeout`` sets no total
            (default: the core's, one hour), so an upstream trickling an endless answer cannot
            hold a call for ever.
        max_retries: retries on connection errors, timeouts, 408, 429 and 5xx (backoff with full
            jitter, honouring Retry-After / X-RateLimit-Reset).
        app_name, app_url: app attribution (X-OpenRouter-Title / X-Title, HTTP-Referer); else
            ``OPENROUTER_APP_NAME`` / ``OPENROUTER_APP_URL``. CR, LF or other control characters
            are refused (``InvalidArgumentError``).
        settings: an :class:`orroute.config.Settings` to take what is not given here from
            (default: ``orroute.config.load_settings()``).

    >>> client = OpenRouter(api_key="sk-or-v1-0000000000000000", base_url="http://127.0.0.1:9")
    >>> client
    OpenRouter(base_url='http://127.0.0.1:9', api_key='sk-or-v1-...0000')
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chat = _Chat(self, _Completions)
        self.models = _Models(self)
        self.embeddings = _surface.Embeddings(self)

    def _get(self, path: str, *, not_found_retries: int = 0) -> Any:
        call = self._start("GET", path, not_found_retries=not_found_retries, blocking=True)
        return self._result(call)

    def credits(self) -> Credits:
        """Total credits bought and used (USD)."""
        return Credits(_data(self._get("/credits")))

    def key_info(self) -> KeyInfo:
        """The current key's limits and usage."""
        return KeyInfo(_data(self._get("/key")))

    def generation(self, id: str, *, wait: float = 3.0) -> Generation:
        """Stats of a finished generation; retries the brief 404 right after a completion."""
        path, retries = _generation_get(id, wait)
        return Generation(_data(self._get(path, not_found_retries=retries)))

    def close(self) -> None:
        """Nothing to release eagerly: the event loop thread stops when the last call ends."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncCompletions(_CompletionsBase):
    async def create(
        self,
        *,
        messages: Sequence[Any],
        model: str | None = None,
        stream: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | Timeout | None | Any = ...,
        max_retries: int | None = None,
        cache: bool = True,
        **params: Any,
    ) -> Any:
        """Async twin of ``OpenRouter.chat.completions.create`` (``stream=True``: an AsyncStream)."""
        observed, cached, stream, include_usage, call = self._open(
            messages, model, stream, extra_body, extra_headers, extra_query, timeout, max_retries,
            cache, params, False, _engine.bridge())
        if call is None:
            return _cache_hit(cached, observed, stream, asynchronous=True)
        if stream:
            return AsyncStream(_engine.stream_of(call), observed, _store_of(cached), include_usage)
        try:
            if type(call) is _JsonRef:  # the reply, served on this thread
                r = ChatCompletion._over(call)
            else:
                if not call.done:
                    await _engine.wait(call)
                r = self._client._completion(call)
        except BaseException as e:
            observed.raised(e)
            raise
        return r if cached is None and observed is _UNWATCHED else _reported(r, observed, cached)

    async def _afinish(self, call: Any, stream: bool, include_usage: bool) -> Any:
        if stream:
            return AsyncStream(_engine.stream_of(call), include_usage=include_usage)
        await _engine.wait(call)
        return self._client._completion(call)

    async def parse(self, *, response_format: Any, **kwargs: Any) -> ChatCompletion:
        """Async twin of ``OpenRouter.chat.completions.parse``."""
        fmt, model_cls = _surface.response_format_of(response_format)
        return _surface.parse_choices(await self.create(response_format=fmt, **kwargs),
                                      model_cls)


def _cache_hit(cached: Any, observed: Call, stream: bool, *, asynchronous: bool) -> Any:
    """A call answered from the response cache: the marked completion, or its replay."""
    from ._client_cache import AsyncReplayStream, ReplayStream

    comp = cached.completion()
    observed.done(**completion_fields(comp), **cache_fields(comp))
    if stream:
        return AsyncReplayStream(comp) if asynchronous else ReplayStream(comp)
    return ChatCompletion(comp)


def _data(body: Any) -> dict[str, Any]:
    """The ``data`` object of an OpenRouter envelope (``{}`` when absent or null)."""
    return body.get("data") or {}


def _generation_get(id: str, wait: float) -> tuple[str, int]:
    """Path of ``GET /generation`` and how many 404s to retry (every 0.5 s) within ``wait``."""
    return f"/generation?id={quote(id)}", max(0, int(wait / 0.5))


class _AsyncModels(_Models):
    async def list(  # type: ignore[override]
        self, *, refresh: bool = False, ttl: float = MODELS_CACHE_TTL, fallback: bool = True
    ) -> ModelList:
        if not refresh and (cached := self._cached(ttl)) is not None:
            return cached
        try:
            body = await self._client._aget("/models")
        except APIError:  # APIConnectionError included
            if (offline := self._offline(fallback)) is None:
                raise
            return offline
        return self._fresh(body)

    async def retrieve(self, model: str, **_openai_options: Any) -> Model:  # type: ignore[override]
        return _surface.retrieve_model(await self.list(), model)


class AsyncOpenRouter(_Base):
    """Asynchronous client (the ``openai.AsyncOpenAI`` shape); same arguments as ``OpenRouter``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chat = _Chat(self, _AsyncCompletions)
        self.models = _AsyncModels(self)
        self.embeddings = _surface.AsyncEmbeddings(self)

    async def _aget(self, path: str, *, not_found_retries: int = 0) -> Any:
        call = self._start("GET", path, not_found_retries=not_found_retries)
        await _engine.wait(call)
        return self._result(call)

    async def credits(self) -> Credits:
        return Credits(_data(await self._aget("/credits")))

    async def key_info(self) -> KeyInfo:
        return KeyInfo(_data(await self._aget("/key")))

    async def generation(self, id: str, *, wait: float = 3.0) -> Generation:
        path, retries = _generation_get(id, wait)
        return Generation(_data(await self._aget(path, not_found_retries=retries)))

    async def close(self) -> None:
        """Nothing to release eagerly."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
