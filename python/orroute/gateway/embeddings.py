"""``POST /v1/embeddings``: passed to the upstream's ``/embeddings``, metered like a completion.

Money fails closed: before anything is sent, the worst case is reserved in the ledger for the
key's project (every input token at the model's prompt price; a string has at most one token per
UTF-8 byte, a token array its length), so a budget refuses with 402 as for chat. The answer is
settled by the engine's rule for an upstream's usage (``Engine.audit_usage``, docs/cost.md rule
3): its ``usage.cost`` when within the engine's ``cost_check_multiple`` (2x by default) of the
catalog price of its tokens either way, its tokens
when not far below our count of the input. A model the gateway cannot price is refused.

Embedding models are not in OpenRouter's default ``/models`` list (text output only): the
gateway reads ``/models?output_modalities=embeddings`` the first time it meets one, and again
at most once a minute for a model it still does not know.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import _core, _engine
from .._exceptions import (
    APIError,
    APITimeoutError,
    ApprovalDeniedError,
    BudgetExceededError,
    EmergencyCutoffError,
)
from ..tokenizer import count_tokens
from ._json import dumps, loads
from .errors import HttpError, bad_field
from .validate import positive_int

if TYPE_CHECKING:
    from .._http_server import Connection, RawRequest
    from .app import GatewayApp
    from .keys import GatewayKey

__all__ = ["EmbeddingsRoute", "worst_case_tokens"]

_cost_log = logging.getLogger("orroute.cost")
_REFETCH_AFTER = 60.0  # seconds between catalog reads for unknown embedding models
_CUT_WAIT = 5.0  # seconds to wait for a cancelled call's transfer to end
MAX_INPUTS = 2048  # OpenAI's limit per request


def worst_case_tokens(value: Any) -> int:
    """The most tokens ``input`` can be: UTF-8 bytes of each string (no BPE token is shorter
    than a byte, plus one per string for any framing), the length of each token array. 400 for
    anything else."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise bad_field("input", "'input' must be a string or a non-empty array")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return len(value)
    if len(value) > MAX_INPUTS:
        raise bad_field("input", f"'input' may hold at most {MAX_INPUTS} items")
    total = 0
    for i, v in enumerate(value):
        if isinstance(v, str):
            total += len(v.encode()) + 1
        elif isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool)
                                               for t in v):
            total += len(v)
        else:
            raise bad_field(f"input[{i}]", f"'input[{i}]' must be a string or an array of "
                            "token ids")
    return total


def counted_tokens(value: Any, model: str) -> int:
    """Our tokenizer's count of an ``input`` that :func:`worst_case_tokens` accepted: what the
    upstream's usage is checked against."""
    items = [value] if isinstance(value, str) else value
    if all(isinstance(v, int) for v in items):
        return len(items)
    return sum(count_tokens(v, model=model) if isinstance(v, str) else len(v) for v in items)


async def _cut(call: Any) -> bool:
    """Cancels ``call`` and waits for the end of the transfer it cut (the transport's next
    turn). False when that end was not seen (a second cancellation, or not within
    ``_CUT_WAIT``): whether the request went out is then unknown."""
    call.cancel()
    try:
        # the bridge's own wait: _engine.wait returns at once for a call already done (cancelled)
        await asyncio.wait_for(_engine.bridge().wait(call), _CUT_WAIT)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        return False
    return True


class EmbeddingsRoute:
    """The ``/v1/embeddings`` handler of one GatewayApp (event loop thread only)."""

    def __init__(self, app: GatewayApp) -> None:
        self.app = app
        self._extra: Any = None  # a Catalog of embedding models read from the upstream
        self._fetched = -math.inf

    async def _catalog_for(self, model: str) -> Any:
        """A catalog that prices ``model``, or None."""
        if self.app.catalog.get(model) is not None:
            return self.app.catalog
        if self._extra is not None and self._extra.get(model) is not None:
            return self._extra
        if time.monotonic() - self._fetched < _REFETCH_AFTER:
            return None
        self._fetched = time.monotonic()
        status, data = await self.app._upstream_json("/models?output_modalities=embeddings")
        if status == 200 and isinstance(data, dict):
            from ..catalog import Catalog

            try:
                self._extra = Catalog.from_json(dumps(data))
            except Exception:  # noqa: BLE001 - an unreadable list prices nothing
                self._extra = None
        if self._extra is not None and self._extra.get(model) is not None:
            return self._extra
        return None

    async def serve(self, conn: Connection, raw: RawRequest, key: GatewayKey,
                    close: bool) -> None:
        app = self.app
        try:
            try:
                body = loads(raw.body)
            except ValueError:
                raise bad_field("body", "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise bad_field("body", "the request body must be a JSON object")
            model = body.get("model")
            if not isinstance(model, str) or not model.strip():
                raise bad_field("model", "'model' must be a non-empty string")
            tokens = worst_case_tokens(body.get("input"))
            positive_int(body, "dimensions")
            if body.get("encoding_format") not in (None, "float", "base64"):
                raise bad_field("encoding_format", "'encoding_format' must be float or base64")
            catalog = await self._catalog_for(model)
            if catalog is None:
                raise HttpError(400, f"the model '{_core.client_text(model)}' cannot be priced, so "
                                "it is not called (an embedding model of the upstream's catalog?)",
                                param="model", code="model_not_found")
            worst = catalog.cost(model, prompt_tokens=tokens, completion_tokens=0)
            await self._call(conn, body, model, key, close, catalog, worst)
        except HttpError as e:
            app._send(conn, e.status, e.body(), close)

    async def _call(self, conn: Connection, body: dict[str, Any], model: str, key: GatewayKey,
                    close: bool, catalog: Any, worst: Decimal) -> None:
        app = self.app
        try:
            hold = app.tracker.reserve(worst, project=key.project, model=model,
                                       tags={"gateway_key": key.id})
        except (BudgetExceededError, EmergencyCutoffError, ApprovalDeniedError) as e:
            raise HttpError(402, f"budget exceeded for project {key.project!r}: {e}",
                            type_="insufficient_quota", code="budget_exceeded") from None
        settled = False
        t0 = time.perf_counter()
        call = app.engine.net.start("POST", "/embeddings", body=body, max_retries=1,
                                    timeouts=(10.0, None, None, app.settings.timeout))

        def book(cost: Decimal, **fields: Any) -> None:
            """Settles the call at ``cost`` and the worst case of each attempt the upstream got
            in full and we cut (a timeout): a non-streamed call runs to its end and is billed
            (docs/cost.md, rule 5). A failed call with nothing to bill is a row at 0 with no
            estimate, as the engine writes a failed chat call's (``Run::settle_failed``); one
            the client cancelled before anything was billed is released below."""
            nonlocal settled
            cost += worst * call.abandoned_attempts
            outcome = fields.get("outcome", "ok")
            if outcome != "ok" and not cost:
                if outcome == "cancelled":
                    return
                fields["estimated_cost"] = None  # nothing billed: no estimate was missed
            hold.settle(cost, model=model, attempts=call.attempts,
                        latency=time.perf_counter() - t0, **fields)
            settled = True

        try:
            await _engine.wait(call)
            if not call.ok:  # the one table, presented as the chat route presents it
                error = _engine.api_error(call.error())
                status, payload, headers = app.upstream_failure(error)
                book(Decimal(0), outcome="error",
                     error_class="timeout" if isinstance(error, APITimeoutError) else "server")
                app._send(conn, status, payload, close, headers)
                return
            reply = call.body_json()  # the text itself when it is not JSON
            if not isinstance(reply, dict):
                # Answered, so billed (docs/cost.md, rule 5), at a size only the upstream knows:
                # the reservation is booked, and no junk is relayed as an embedding list.
                book(worst, outcome="error", error_class="server")
                app._send(conn, 502, HttpError(
                    502, "the upstream's reply is not a JSON object", type_="upstream_error",
                    code="upstream_bad_reply").body(), close)
                return
            try:  # an error in a 2xx body is an error (the client's rule): nothing billed
                _engine.check_body_error(reply)
            except APIError as e:
                status, payload, headers = app.upstream_failure(e)
                book(Decimal(0), outcome="error", error_class="server")
                app._send(conn, status, payload, close, headers)
                return  # the reservation released below, unless an attempt was cut
            # the engine's rule for what an upstream's usage may book (docs/cost.md, rule 3), the
            # cost read from the reply's own digits (a float does not hold every decimal)
            cost, source, problem, tokens = app.engine.audit_usage(
                getattr(catalog, "_core", catalog), model, call,
                counted_tokens(body["input"], model), worst)
            if problem:
                _cost_log.warning("%s: cost from %s (%s)", model, source, problem)
            book(cost, prompt_tokens=tokens)
            app._send(conn, 200, dumps(reply), close)
        except asyncio.CancelledError:  # the client hung up (or the gateway stops)
            # A request that went out runs to its end upstream and is billed, as the engine books
            # a chat call cut so: the cut attempt is counted once its transfer has ended.
            ended = await _cut(call)
            book(Decimal(0) if ended else worst, outcome="cancelled", error_class="cancelled")
            raise
        finally:
            if not settled:
                call.cancel()
                hold.release()
