"""The ``orroute/cascade`` model alias: verify the cheap model's answer, escalate when a check fails.

A chat completion whose ``model`` is ``orroute/cascade`` runs
:meth:`orroute.AIModelManager.execute_cascade` with a :class:`orroute.routing.VerifiedCascade`:
every stage is a pinned call on the gateway's router, reserved against the key's project budget,
settled and recorded in the ledger (tagged with the gateway key) like any other completion.

Which cascade:

- stages: the request's ``orroute.stages`` (model ids, cheapest first), else the config file's
  ``[gateway.cascade] stages``, else the engine's first choice under ``cost_optimized`` then
  under ``quality_first`` for this request;
- verifiers: the request's ``orroute.verifiers`` (only ``json_valid``, ``arithmetic`` and
  ``self_consistency``: nothing a client names runs code), else ``[gateway.cascade]
  verifiers`` (any registered name), plus what the request itself implies: ``response_format``
  JSON or a JSON schema is checked, offered ``tools`` validate the answer's tool calls.

The reply is the accepted stage's completion (``model`` says which one answered) with an
``orroute`` field: ``{"cascade": {"accepted", "cost", "stages": [{"model", "escalated", "score",
"cost", "samples", "verdicts": [{"name", "outcome", "score", "reason"}]}]}}``. Streamed
(``stream: true``), the earlier stages run and are verified first, the final stage streams, and
one last chunk with no choices carries the same ``orroute`` field before ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import APIError, BudgetError, OrRouteError, UnpricedModelError
from .._http_server import Connection, RawRequest, head_bytes
from ._json import dumps
from .errors import HttpError, bad_field
from .validate import task_type_header

if TYPE_CHECKING:
    from .._cascade_run import CascadeResult, StageRecord, VerifiedCascade
    from .app import ChatOutcome, GatewayApp
    from .keys import GatewayKey

__all__ = ["CASCADE_ALIAS", "CascadeRoute"]

CASCADE_ALIAS = "orroute/cascade"
#: Verifiers a request may name itself (none of them runs what a model wrote).
CLIENT_VERIFIERS = frozenset({"json_valid", "arithmetic", "self_consistency"})
MAX_STAGES = 4
MAX_SAMPLES = 5
#: Body fields that are the router's or the gateway's, not the upstream request's.
_NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "max_tokens", "n",
                         "orroute", "models"})


def _stage_json(s: StageRecord) -> dict[str, Any]:
    return {"model": s.model, "escalated": s.escalated, "score": s.score, "cost": str(s.cost),
            "samples": len(s.samples),
            "prompt_tokens": sum(r.usage["prompt_tokens"] for r in (s.result, *s.samples)),
            "completion_tokens": sum(r.usage["completion_tokens"]
                                     for r in (s.result, *s.samples)),
            "verdicts": [{"name": v.name, "outcome": v.outcome, "score": v.score,
                          "reason": v.reason} for v in s.verdicts]}


def extension(result: CascadeResult) -> dict[str, Any]:
    """The reply's ``orroute`` field: which stage was accepted, every stage, what it all cost."""
    return {"cascade": {"accepted": result.model, "cost": str(result.cost),
                        "stages": [_stage_json(s) for s in result.stages]}}


def _attempts(result: CascadeResult) -> int:
    """Upstream requests the cascade made (samples and retries included)."""
    return sum(1 for r in result.calls for a in r.attempts
               if not (a.error or "").startswith("skipped"))


def _request_options(body: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """The request's own ``orroute.stages`` / ``orroute.verifiers``, validated (400 otherwise)."""
    ext = body.get("orroute")
    if ext is None:
        return None, None
    if not isinstance(ext, dict):
        raise bad_field("orroute", "'orroute' must be an object")
    unknown = set(ext) - {"stages", "verifiers"}
    if unknown:
        raise bad_field("orroute", f"'orroute' has an unknown field {min(unknown)[:40]!r}")
    stages = ext.get("stages")
    if stages is not None and not (
            isinstance(stages, list) and 1 <= len(stages) <= MAX_STAGES
            and all(isinstance(m, str) and m.strip() and len(m) <= 200 and m.isprintable()
                    for m in stages)
            and len(set(stages)) == len(stages)):
        raise bad_field("orroute.stages",
                        f"'orroute.stages' must be 1 to {MAX_STAGES} distinct model ids "
                        "(printable, at most 200 characters)")
    verifiers = ext.get("verifiers")
    if verifiers is not None:
        if not isinstance(verifiers, list) or not all(isinstance(v, str) for v in verifiers):
            raise bad_field("orroute.verifiers", "'orroute.verifiers' must be an array of names")
        bad = [v for v in verifiers if v not in CLIENT_VERIFIERS]
        if bad:
            raise bad_field("orroute.verifiers",
                            f"'orroute.verifiers' may name {sorted(CLIENT_VERIFIERS)}, "
                            f"not {bad[0][:40]!r}")
    return stages, verifiers


def _implied(body: Mapping[str, Any]) -> list[Any]:
    """Verifiers the request itself asks for: its JSON output format, its tools."""
    from ..verify import json_schema, json_valid, tool_calls

    out: list[Any] = []
    rf = body.get("response_format")
    if isinstance(rf, dict):
        spec = rf.get("json_schema") if rf.get("type") == "json_schema" else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            try:
                out.append(json_schema(schema))
            except OrRouteError as e:
                raise bad_field("response_format", f"'response_format' schema: {e}") from None
        elif rf.get("type") in ("json_object", "json_schema"):
            out.append(json_valid())
    tools = body.get("tools")
    if tools:
        try:
            out.append(tool_calls(tools))
        except OrRouteError as e:
            raise bad_field("tools", f"'tools': {e}") from None
    return out


class CascadeRoute:
    """Serves ``orroute/cascade`` for one :class:`GatewayApp` (see the module docstring).
    ``outcome`` is the app's ``ChatOutcome`` and ``sse_headers`` its event-stream headers
    (given, not imported: app.py imports this module)."""

    def __init__(self, app: GatewayApp, outcome: type[ChatOutcome],
                 sse_headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self.outcome = outcome
        self.sse_headers = list(sse_headers)

    # -- which cascade ---------------------------------------------------------------------------
    def _default_stages(self, body: Mapping[str, Any]) -> list[str]:
        """The engine's first choice under ``cost_optimized``, then under ``quality_first``."""
        from .. import _engine

        stages: list[str] = []
        for strategy in ("cost_optimized", "quality_first"):
            et = _engine.engine_task(dumps({"messages": body["messages"]}).decode(),
                                     strategy=strategy,
                                     capabilities=self.app._capabilities(dict(body)))
            candidates = self.app.engine.plan(et)["candidates"]
            if candidates and candidates[0] not in stages:
                stages.append(candidates[0])
        if not stages:
            raise HttpError(503, "orroute/cascade: no model can answer this request",
                            type_="service_unavailable", code="no_model_available")
        return stages

    def cascade(self, body: Mapping[str, Any]) -> VerifiedCascade:
        """The cascade for this request (stages and verifiers as the module docstring says)."""
        from .._cascade_run import VerifiedCascade
        from ..verify import get_verifier, self_consistency

        stages, names = _request_options(body)
        conf = self.app.settings.cascade
        stages = stages or list(conf.get("stages") or []) or self._default_stages(body)
        verifiers: list[Any] = []
        for name in names if names is not None else list(conf.get("verifiers") or []):
            verifiers.append(self_consistency(3) if name == "self_consistency"
                             else get_verifier(name))
        verifiers += _implied(body)
        return VerifiedCascade(stages, verifiers)

    def task(self, raw: RawRequest, body: Mapping[str, Any], key: GatewayKey) -> Any:
        """The router task: the body's messages and fields, the key's project and tag."""
        from ..task import Task

        params = {k: v for k, v in body.items() if k not in _NOT_PARAMS}
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        params.pop("max_completion_tokens", None)
        return Task(type=task_type_header(raw.headers) or "general",
                    messages=body["messages"], max_tokens=limit, project=key.project,
                    tags={"gateway_key": key.id}, params=params)

    # -- serving ---------------------------------------------------------------------------------
    async def serve(self, conn: Connection, raw: RawRequest, body: dict[str, Any],
                    key: GatewayKey, close: bool) -> ChatOutcome | None:
        """Answers one ``orroute/cascade`` completion, plain or streamed."""
        cascade = self.cascade(body)
        task = self.task(raw, body, key)
        self.app.in_flight += 1
        try:
            if body.get("stream"):
                return await self._stream(conn, raw, task, cascade, key, close)
            try:
                result = await self.app.manager.execute_cascade(task, cascade)
            except (APIError, BudgetError) as e:
                return self._failed(conn, e, key, close)
            reply = dict(result.result.response)
            reply["model"] = result.model
            reply["orroute"] = extension(result)
            out = self._outcome(result)
            self.app._send(conn, 200, dumps(reply), close, out.headers())
            return out
        finally:
            self.app.in_flight -= 1

    def _outcome(self, result: CascadeResult) -> ChatOutcome:
        return self.outcome(result.model, _attempts(result))

    def _error_reply(self, e: APIError | BudgetError,
                     project: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        """A stage's failure as the gateway answers any completion's: 400 unpriced model, 402
        budget, else the upstream failure (5xx, 429 with Retry-After, keys scrubbed)."""
        if isinstance(e, UnpricedModelError):
            return 400, HttpError(400, str(e), param="model", code="unpriced_model").body(), []
        if isinstance(e, BudgetError):
            refusal = {"budget_error_type": type(e).__name__, "message": str(e), "plan": {}}
            return 402, HttpError(402, self.app._budget_message(refusal, project),
                                  type_="insufficient_quota", code="budget_exceeded").body(), []
        return self.app.upstream_failure(e)

    def _failed(self, conn: Connection, e: APIError | BudgetError, key: GatewayKey,
                close: bool) -> ChatOutcome | None:
        """A stage failed before anything was written: answered as the gateway answers that
        failure; what earlier stages cost is in the ledger."""
        status, payload, headers = self._error_reply(e, key.project)
        attempts = getattr(e, "attempts", None) or []
        out = self.outcome(attempts[-1].model if attempts else CASCADE_ALIAS,
                          sum(1 for a in attempts if not (a.error or "").startswith("skipped")))
        self.app._send(conn, status, payload, close, out.headers() + headers)
        return out if status != 402 else None

    async def _stream(self, conn: Connection, raw: RawRequest, task: Any,
                      cascade: VerifiedCascade, key: GatewayKey,
                      close: bool) -> ChatOutcome | None:
        stream = await self.app.manager.execute_cascade(task, cascade, stream=True)
        chunks = stream.__aiter__()
        try:
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                first = None
            except (APIError, BudgetError) as e:  # nothing written yet: a plain error reply
                return self._failed(conn, e, key, close)
            chunked = raw.version != "HTTP/1.0"
            conn.last_status = 200
            conn.write(head_bytes(200, self.sse_headers, chunked=chunked,
                                  close=close or not chunked))

            async def send(data: bytes) -> None:
                conn.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
                await conn.drain()  # a slow client: the stage's queue fills, the upstream pauses

            try:
                if first is not None:
                    await send(b"data: " + dumps(first) + b"\n\n")
                async for chunk in chunks:
                    if conn.closed:
                        return None
                    await send(b"data: " + dumps(chunk) + b"\n\n")
                result = stream.result
                assert result is not None  # the iteration finished
                last = {"id": result.result.id, "object": "chat.completion.chunk",
                        "model": result.model, "choices": [], "orroute": extension(result)}
                tail = b"data: " + dumps(last) + b"\n\n"
            except (APIError, BudgetError) as e:  # broke after the headers: say so in-band
                tail = b"data: " + self._error_reply(e, key.project)[1] + b"\n\n"
                result = None
            tail += b"data: [DONE]\n\n"
            conn.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(tail), tail) if chunked else tail)
            if not chunked:
                conn.close()
            return self._outcome(result) if result is not None else None
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # cancels a stage still running
