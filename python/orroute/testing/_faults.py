"""Faults that FakeOpenRouter can inject, as plain immutable values.

A fault is attached to a model (or an endpoint path) with ``FakeOpenRouter.fail`` (always) or
``FakeOpenRouter.script`` (one per request, in order). Every constructor is a ``Fault`` classmethod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Fault"]

# kinds that answer with an HTTP error status before any output; the `models` fallback list
# moves on to the next model on these, as OpenRouter does.
_STATUS_KINDS = frozenset({"status"})


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the fake server. Build it with a classmethod, e.g. ``Fault.rate_limit()``.

    Attributes:
        kind: ``"status"`` (an HTTP error answer), ``"hang"``, ``"reset"``, ``"stream_error"``,
            ``"malformed_json"``, ``"slow_drip"``, ``"delay"``, ``"usage"`` (a correct answer
            whose usage lies), ``"ignore_max_tokens"`` (an answer longer than asked for) or
            ``"raw"`` (exactly the bytes given: a hostile upstream).
        status: HTTP status for ``"status"`` faults, error code for ``"stream_error"``.
        message: the error message sent in the body.
        metadata: ``error.metadata`` sent in the body.
        headers: extra response headers (``Retry-After``, ``X-RateLimit-*`` ...).
        after_tokens: for stream faults, how many content chunks are sent before the fault.
        interval, chunk_size: pacing of ``slow_drip`` (seconds between writes of chunk_size bytes).
        seconds: extra wait of ``delay``.
        usage_patch: for ``"usage"``, fields of ``usage`` replaced (``None`` removes the field).
        drop_usage: for ``"usage"``, the reply carries no usage at all.
        tokens: for ``"ignore_max_tokens"``, how many completion tokens the answer has.
        raw_head, raw_body: for ``"raw"``, the response head and the body's pieces (each piece is
            one write, ``interval`` seconds apart).
    """

    kind: str
    status: int = 0
    message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    after_tokens: int | None = None
    interval: float = 0.0
    chunk_size: int = 1
    seconds: float = 0.0
    usage_patch: tuple[tuple[str, Any], ...] = ()
    drop_usage: bool = False
    tokens: int = 0
    raw_head: bytes = b""
    raw_body: tuple[bytes, ...] = ()

    @property
    def is_status(self) -> bool:
        """True if the fault is an HTTP error answer (the ``models`` fallback list skips it)."""
        return self.kind in _STATUS_KINDS

    # --- HTTP error answers -----------------------------------------------------------------

    @classmethod
    def status_error(
        cls,
        status: int,
        message: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Any HTTP error status with OpenRouter's error body ``{"error": {code, message, metadata}}``.

        >>> Fault.status_error(404, "No endpoints found for m/a.").status
        404
        """
        return cls(
            kind="status",
            status=int(status),
            message=message if message is not None else _DEFAULT_MESSAGES.get(status, "Error"),
            metadata=dict(metadata or {}),
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def bad_request(cls, message: str = "Invalid request.", **metadata: Any) -> Fault:
        """400 with ``metadata`` (e.g. ``error_type="context_length_exceeded"``)."""
        return cls.status_error(400, message, metadata=metadata)

    @classmethod
    def unauthorized(cls, message: str = "User not found.") -> Fault:
        """401, as for an invalid or disabled key."""
        return cls.status_error(401, message)

    @classmethod
    def rate_limit(
        cls,
        retry_after: float | None = 1,
        *,
        limit: int = 20,
        remaining: int = 0,
        reset_ms: int | None = None,
        message: str = "Rate limit exceeded: free-models-per-min.",
    ) -> Fault:
        """429 with ``Retry-After`` (seconds; omitted when None) and ``X-RateLimit-*`` headers.

        ``X-RateLimit-Reset`` is epoch milliseconds, as OpenRouter sends it; by default it is
        ``retry_after`` seconds after the moment the error is sent. The headers are also echoed in
        ``error.metadata.headers``.
        """
        headers: dict[str, str] = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
        }
        if reset_ms is not None:
            headers["X-RateLimit-Reset"] = str(int(reset_ms))
        if retry_after is not None:
            headers["Retry-After"] = _fmt_seconds(retry_after)
        return cls(
            kind="status",
            status=429,
            message=message,
            metadata={"error_type": "rate_limit_exceeded"},
            headers=tuple(headers.items()),
            seconds=float(retry_after) if retry_after is not None else 0.0,
        )

    @classmethod
    def payment_required(
        cls,
        message: str = (
            "This request requires more credits, or fewer max_tokens. You requested up to 4096"
            " tokens, but can only afford 12."
        ),
    ) -> Fault:
        """402 insufficient credits."""
        return cls.status_error(
            402,
            message,
            metadata={"limit_source": "openrouter_credits", "error_type": "payment_required"},
        )

    @classmethod
    def moderation(
        cls,
        reasons: list[str] | tuple[str, ...] = ("harassment",),
        *,
        flagged_input: str = "...flagged text...",
        provider_name: str = "OpenAI",
        model_slug: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """403 moderation flag with metadata ``reasons``, ``flagged_input``, ``provider_name`` and
        ``model_slug`` (the requested model when None)."""
        reasons = list(reasons)
        meta: dict[str, Any] = {
            "reasons": reasons,
            "flagged_input": flagged_input,
            "provider_name": provider_name,
            "model_slug": model_slug,  # filled with the model when None
        }
        return cls.status_error(
            403,
            message
            or f"{provider_name} requires moderation on this model. Your input was"
            f" flagged for {', '.join(reasons)}.",
            metadata=meta,
        )

    @classmethod
    def server_error(
        cls,
        status: int = 500,
        message: str | None = None,
        *,
        provider_name: str | None = None,
        raw: Any = None,
        retry_after: float | None = None,
    ) -> Fault:
        """A 5xx: 500 (masked message), 502 provider error (metadata ``provider_name``, ``raw``),
        503 no provider available (optional ``Retry-After``), or any other 5xx."""
        if status < 500:
            raise ValueError(f"server_error needs a 5xx status, got {status}")
        meta: dict[str, Any] = {}
        if status == 502:
            meta = {"provider_name": provider_name or "OpenAI", "raw": raw or "upstream error"}
            meta["error_type"] = "provider_unavailable"
        elif status == 503:
            meta = {"error_type": "provider_overloaded"}
        elif provider_name or raw is not None:
            meta = {"provider_name": provider_name, "raw": raw}
        headers = {"Retry-After": _fmt_seconds(retry_after)} if retry_after is not None else {}
        return cls.status_error(status, message, metadata=meta, headers=headers)

    # --- connection and stream misbehaviour -------------------------------------------------

    @classmethod
    def hang(cls, *, after_tokens: int | None = None) -> Fault:
        """Never answer. With ``after_tokens`` (streams only) send the headers and that many
        content chunks, then stall without keep-alives. The connection stays open until the
        client gives up or the server stops."""
        return cls(kind="hang", after_tokens=after_tokens)

    @classmethod
    def reset(cls, *, after_tokens: int | None = None) -> Fault:
        """Reset the TCP connection (RST) before answering, or after ``after_tokens`` chunks."""
        return cls(kind="reset", after_tokens=after_tokens)

    @classmethod
    def stream_error(
        cls,
        after_tokens: int = 3,
        *,
        code: int = 502,
        message: str = "Provider disconnected",
        error_type: str = "provider_unavailable",
    ) -> Fault:
        """An error after output started. Streams: ``after_tokens`` content chunks, then one SSE
        event with a top-level ``error`` and ``finish_reason: "error"``, then the stream ends
        (no usage chunk, no ``[DONE]``). Non-streaming: status 200 with the partial message and
        ``choices[0].error``."""
        return cls(
            kind="stream_error",
            status=code,
            message=message,
            metadata={"error_type": error_type},
            after_tokens=after_tokens,
        )

    @classmethod
    def malformed_json(cls, *, after_tokens: int = 0) -> Fault:
        """A 200 whose JSON body is truncated; for streams, a ``data:`` line with broken JSON
        after ``after_tokens`` chunks (the stream then ends normally)."""
        return cls(kind="malformed_json", after_tokens=after_tokens)

    @classmethod
    def slow_drip(cls, interval: float = 0.01, *, chunk_size: int = 1) -> Fault:
        """A correct answer written ``chunk_size`` bytes at a time, ``interval`` seconds apart."""
        return cls(kind="slow_drip", interval=float(interval), chunk_size=max(1, int(chunk_size)))

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """A correct answer that starts ``seconds`` late (on top of the model's latency)."""
        return cls(kind="delay", seconds=float(seconds))


    # --- hostile usage: a correct answer that lies about what it cost ------------------------

    @classmethod
    def lying_usage(cls, **fields: Any) -> Fault:
        """A correct answer whose ``usage`` has these fields replaced, e.g. ``cost="abc"``,
        ``cost=1e300``, ``cost=-5``, ``prompt_tokens=-3``, ``completion_tokens=2**70``; a field
        given as ``None`` is removed (``cost=None``: no cost reported). Nested fields use
        ``"prompt_tokens_details.cached_tokens"`` as the name (pass them with ``**{...}``).

        >>> Fault.lying_usage(cost="abc").kind
        'usage'
        """
        return cls(kind="usage", usage_patch=tuple(fields.items()))

    @classmethod
    def no_usage(cls) -> Fault:
        """A correct answer without any ``usage`` (non-streamed: ``"usage"`` is absent; streamed:
        no usage chunk)."""
        return cls(kind="usage", drop_usage=True)

    @classmethod
    def ignore_max_tokens(cls, tokens: int = 4000) -> Fault:
        """An answer of ``tokens`` completion tokens whatever ``max_tokens`` asked for (billed
        and reported truthfully: the upstream simply overran)."""
        return cls(kind="ignore_max_tokens", tokens=int(tokens))

    # --- hostile bytes: whatever an upstream may send -----------------------------------------

    @classmethod
    def raw(
        cls,
        *pieces: bytes,
        status: int = 200,
        content_type: bytes | str = "application/json",
        headers: Mapping[str, bytes | str] | None = None,
        content_length: int | None = None,
        interval: float = 0.005,
    ) -> Fault:
        """A reply of exactly these bytes, for hostile-upstream tests: not UTF-8, cut inside a
        character, lying about its length... Each piece is written alone, ``interval`` seconds
        after the previous one (so a piece boundary can fall inside an SSE line or a UTF-8
        sequence), then the connection closes. The head carries ``Content-Length``
        (``content_length`` when given, true or not; ``-1`` leaves it out) and
        ``Connection: close``; header values may be bytes that are not Latin-1 text.

        >>> Fault.raw(b'{"id":', b'"x"}').raw_body
        (b'{"id":', b'"x"}')
        """
        def b(v: bytes | str) -> bytes:
            return v if isinstance(v, bytes) else v.encode("latin-1")

        length = sum(len(p) for p in pieces) if content_length is None else content_length
        lines = [b"HTTP/1.1 %d Raw" % status, b"Content-Type: " + b(content_type)]
        lines += [b(k) + b": " + b(v) for k, v in (headers or {}).items()]
        if length >= 0:
            lines.append(b"Content-Length: %d" % length)
        lines.append(b"Connection: close")
        return cls(kind="raw", status=status, raw_head=b"\r\n".join(lines) + b"\r\n\r\n",
                   raw_body=tuple(pieces), interval=float(interval))

    @property
    def is_reply_fault(self) -> bool:
        """True for faults that change the answer's content or usage, not its delivery."""
        return self.kind in ("usage", "ignore_max_tokens")

    def patch_usage(self, usage: dict[str, Any]) -> dict[str, Any] | None:
        """The usage object this fault sends instead of ``usage`` (None: no usage)."""
        if self.kind != "usage":
            return usage
        if self.drop_usage:
            return None
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in usage.items()}
        for name, value in self.usage_patch:
            *path, leaf = name.split(".")
            target = out
            for part in path:
                target = target.setdefault(part, {})
            if value is None:
                target.pop(leaf, None)
            else:
                target[leaf] = value
        return out

    def overrun(self, reply: Any, count_tokens: Any, price: Any) -> Any:
        """``reply`` (the fake's reply record) grown to ``tokens`` completion tokens, ignoring
        ``max_tokens``; ``count_tokens(text)`` and ``price(completion_tokens)`` (the catalog's
        (total, prompt, completion) cost) are the fake's own accounting."""
        from . import _replies as R

        words = ["token"] * max(1, self.tokens)
        content = " ".join(words)
        while count_tokens(content) > self.tokens and len(words) > 1:
            words = words[: max(1, len(words) * self.tokens // max(1, count_tokens(content)))]
            content = " ".join(words)
        completion = count_tokens(content)
        cost, pcost, ccost = price(completion)
        return replace(reply, content=content, tool_calls=None, finish_reason="stop",
                       completion_tokens=completion, cost=cost, prompt_cost=pcost,
                       completion_cost=ccost, pieces=R.split_pieces(content), reasoning=None,
                       reasoning_tokens=0)


_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "User not found.",
    402: "Insufficient credits.",
    403: "Forbidden.",
    404: "Not found.",
    408: "Request timed out.",
    413: "Payload too large.",
    422: "Unprocessable entity.",
    429: "Rate limit exceeded.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available provider meets your routing requirements.",
    504: "Gateway timeout.",
}


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{float(seconds):g}"
