"""The parts of openai's client surface that ``orroute.OpenRouter`` adds on top of its requests.

What openai's callers pass (``NOT_GIVEN`` / ``omit`` values, an ``httpx.Timeout``, ``extra_query``)
and what they call besides ``create`` (``with_raw_response``, ``parse``, ``models.retrieve``,
``embeddings.create``). Kept apart from ``client.py``, which owns the requests' path to the core;
nothing here imports ``openai``, ``httpx`` or ``pydantic`` (they are recognised by shape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from ._exceptions import AuthenticationError, InvalidArgumentError, NotFoundError
from .types import ChatCompletion, CreateEmbeddingResponse, Model

__all__ = [
    "AsyncEmbeddings",
    "Embeddings",
    "EventStream",
    "RawResponse",
    "StreamEvent",
    "is_omitted",
    "missing_key_error",
    "parse_choices",
    "response_format_of",
    "retrieve_model",
    "strip_omitted",
    "timeout_of",
    "usage_only",
    "wants_usage_chunk",
    "with_query",
    "without_usage_chunk",
]


def is_omitted(value: Any) -> bool:
    """openai's "leave this out" markers (``openai.NOT_GIVEN``, ``openai.omit``)."""
    t = type(value)
    return t.__name__ in ("NotGiven", "Omit") and t.__module__.startswith("openai")


def strip_omitted(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not is_omitted(v)}


def usage_only(chunk: Any) -> bool:
    """The final usage chunk of a stream: no choices, a usage object. openai's service sends it
    only when asked (``stream_options={"include_usage": True}``); OpenRouter always does, so
    orroute's clients hide it unless asked (the native client and the openai transport)."""
    return (isinstance(chunk, dict) and not chunk.get("choices")
            and isinstance(chunk.get("usage"), dict))


def wants_usage_chunk(params: Mapping[str, Any]) -> bool:
    """Whether a chat request asked for the usage chunk."""
    opts = params.get("stream_options")
    # None first: most calls have no stream_options, and a Mapping check is an ABC check
    return opts is not None and isinstance(opts, Mapping) and opts.get("include_usage") is True


_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')


def without_usage_chunk(sse: bytes) -> bytes:
    """``sse`` (whole ``data: ...`` events, as the engine hands a stream over) without the usage
    chunk (``usage_only``), for a stream that did not ask for it: openai's service sends none
    then, and clients written for it read ``chunk.choices[0]`` on every chunk."""
    if not _EMPTY_CHOICES.search(sse):  # the common case: no chunk to look at
        return sse
    kept = []
    for event in sse.split(b"\n\n"):
        if event.startswith(b"data: {") and _EMPTY_CHOICES.search(event):
            try:
                if usage_only(json.loads(event[6:])):
                    continue
            except ValueError:
                pass
        kept.append(event)
    return b"\n\n".join(kept)


def missing_key_error() -> AuthenticationError:
    """What a call to OpenRouter without a key raises, before sending anything."""
    return AuthenticationError(
        "no OpenRouter API key: set OPENROUTER_API_KEY (in the environment or in ./.env) or pass "
        "api_key=...; keys are at https://openrouter.ai/keys. To try orroute without one, "
        "`orroute sim` runs the router against a local fake OpenRouter.")


def timeout_of(value: Any) -> Any:
    """``value`` as the client's timeout: ``...`` (the client's default) for openai's markers,
    the core's ``(connect, first_byte, idle, total)`` for an ``httpx.Timeout``-like object
    (``read`` bounds the first byte and each gap of a stream), otherwise unchanged (a float, None
    or an ``orroute.Timeout``)."""
    if value is ... or value is None or type(value) in (float, int):  # most calls: no conversion
        return value
    if is_omitted(value):
        return ...
    if all(hasattr(value, a) for a in ("connect", "read", "write", "pool")):
        return (value.connect, value.read, value.read, None)
    return value


def with_query(path: str, extra_query: Mapping[str, Any] | None) -> str:
    """``path`` with ``extra_query`` appended as a query string."""
    if not extra_query:
        return path
    if not isinstance(extra_query, Mapping):
        raise InvalidArgumentError("extra_query must be a mapping of query parameters")
    return f"{path}{'&' if '?' in path else '?'}{urlencode(dict(extra_query), doseq=True)}"


class _Headers(dict[str, str]):
    """Response headers; lookups ignore case (keys are stored lower-case)."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class RawResponse:
    """What ``with_raw_response.create(...)`` returns: the HTTP status and headers, and
    ``parse()`` for the object ``create`` would have returned."""

    def __init__(self, call: Any, parsed: Any) -> None:
        self._call = call
        self._parsed = parsed

    @property
    def status_code(self) -> int:
        return int(self._call.status())

    @property
    def headers(self) -> _Headers:
        """Response headers (for a stream: once its first byte arrived, else empty)."""
        return _Headers({k.lower(): v for k, v in self._call.headers().items()})

    def parse(self) -> Any:
        return self._parsed


def response_format_of(value: Any) -> tuple[Any, Any]:
    """``(response_format to send, pydantic class to parse with or None)`` for ``parse``:
    a pydantic model class becomes a ``json_schema`` format named after it."""
    schema_of = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema_of):
        fmt = {"type": "json_schema",
               "json_schema": {"name": value.__name__, "schema": schema_of(), "strict": False}}
        return fmt, value
    return value, None


def parse_choices(completion: ChatCompletion, model_cls: Any) -> ChatCompletion:
    """Sets ``message.parsed`` on each choice: the content validated by ``model_cls`` (or, without
    one, the content as JSON). A refusal or no content leaves ``parsed`` None."""
    for choice in completion.choices or []:
        msg = choice.message
        if msg is None:
            continue
        parsed = None
        if isinstance(msg.content, str) and msg.content and not msg.refusal:
            parsed = (model_cls.model_validate_json(msg.content) if model_cls is not None
                      else json.loads(msg.content))
        msg.__dict__["parsed"] = parsed  # an attribute, not part of the JSON (model_dump)
    return completion


def retrieve_model(models: Any, model: str) -> Model:
    """The entry of ``model`` in a model list (OpenRouter serves no ``GET /models/{id}``)."""
    for m in models:
        if m.id == model:
            return m  # type: ignore[no-any-return]
    raise NotFoundError(f"The model {model!r} does not exist", status_code=404,
                        code="model_not_found",
                        body={"error": {"message": f"The model {model!r} does not exist",
                                        "type": "invalid_request_error", "param": "model",
                                        "code": "model_not_found"}})


def _embedding_body(input: Any, model: str, params: dict[str, Any],
                    extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": input}
    body.update((k, v) for k, v in strip_omitted(params).items() if v is not None)
    if extra_body:
        body.update(extra_body)
    return body


class Embeddings:
    """``client.embeddings``: ``create(input=, model=, encoding_format=, dimensions=, ...)``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _start(self, input: Any, model: str, params: dict[str, Any], extra_body: Any,
               extra_headers: Any, extra_query: Any, timeout: Any) -> Any:
        return self._client._start(
            "POST", with_query("/embeddings", extra_query),
            _embedding_body(input, model, params, extra_body), timeout=timeout_of(timeout),
            extra_headers=extra_headers)

    def create(self, *, input: Any, model: str, extra_body: Mapping[str, Any] | None = None,
               extra_headers: Mapping[str, str] | None = None,
               extra_query: Mapping[str, Any] | None = None, timeout: Any = ...,
               **params: Any) -> CreateEmbeddingResponse:
        """Embeds ``input`` (a string, strings, or token arrays); floats unless
        ``encoding_format="base64"`` is asked for."""
        call = self._start(input, model, params, extra_body, extra_headers, extra_query, timeout)
        call.wait_done()
        return CreateEmbeddingResponse(self._client._result(call))


class AsyncEmbeddings(Embeddings):
    async def create(self, *, input: Any, model: str,  # type: ignore[override]
                     extra_body: Mapping[str, Any] | None = None,
                     extra_headers: Mapping[str, str] | None = None,
                     extra_query: Mapping[str, Any] | None = None, timeout: Any = ...,
                     **params: Any) -> CreateEmbeddingResponse:
        from . import _engine

        call = self._start(input, model, params, extra_body, extra_headers, extra_query, timeout)
        await _engine.wait(call)
        return CreateEmbeddingResponse(self._client._result(call))


class StreamEvent:
    """One event of ``chat.completions.stream(...)``, as openai's helper yields them: ``type``
    ``"chunk"`` (``.chunk``), ``"content.delta"`` (``.delta``, ``.snapshot``: the text so far) and
    ``"content.done"`` (``.content``)."""

    def __init__(self, type: str, **fields: Any) -> None:
        self.type = type
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"StreamEvent({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class EventStream:
    """What ``with client.chat.completions.stream(...) as s`` gives: events over a ``Stream``,
    then ``get_final_completion()``. Leaving the block aborts an unfinished transfer."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __enter__(self) -> EventStream:  # noqa: PYI034 - final in practice
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def close(self) -> None:
        self._stream.close()

    def __iter__(self) -> Any:
        text: list[str] = []
        for chunk in self._stream:
            yield StreamEvent("chunk", chunk=chunk, snapshot=None)
            for choice in chunk.choices or []:
                piece = choice.delta.content if choice.delta is not None else None
                if piece:
                    text.append(piece)
                    yield StreamEvent("content.delta", delta=piece, snapshot="".join(text))
        yield StreamEvent("content.done", content="".join(text), parsed=None)

    def get_final_completion(self) -> ChatCompletion:
        for _ in self._stream:  # reads what is left
            pass
        return self._stream.get_final_completion()  # type: ignore[no-any-return]
