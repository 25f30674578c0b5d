"""``n > 1`` with ``stream: true``: n engine streams relayed as one SSE stream.

Each of the n completions is its own engine run (reserved, admitted, sent and settled on its
own, as for plain ``n``). Their chunks are relayed as they come, each choice's ``index`` set to
its run's number; the usage chunks (empty ``choices``, sent last by each run) are held and sent
once, summed, before ``data: [DONE]``. The status is chosen once every run has news: if one
failed by then, the client gets its HTTP error and the other runs are cancelled; if one breaks later, the error goes in-band as
for one stream and the others are cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._client_surface import wants_usage_chunk
from .._engine import wait_any as _wait_any
from .._http_server import head_bytes
from ._json import dumps, loads
from .choices import sum_usage
from .outcome import SERVER as _SERVER
from .outcome import SSE as _SSE
from .outcome import ChatOutcome
from .outcome import sent as _sent

if TYPE_CHECKING:
    from .._http_server import Connection, RawRequest
    from .app import GatewayApp
    from .keys import GatewayKey

__all__ = ["relay_n"]


def _frame(chunk: Any, index: int, usage: list[Any]) -> bytes:
    """One chunk as ``data: ...``, its choices renumbered; a usage-only chunk is held back."""
    if not isinstance(chunk, dict):
        return b""
    choices = chunk.get("choices")
    if not choices and isinstance(chunk.get("usage"), dict):
        usage.append(chunk)
        return b""
    for c in choices or []:
        if isinstance(c, dict):
            c["index"] = index
    return b"data: " + dumps(chunk) + b"\n\n"


async def relay_n(app: GatewayApp, conn: Connection, raw: RawRequest, one: dict[str, Any],
                  key: GatewayKey, close: bool, n: int, prepaid: Any = None) -> None:
    """The n streams (each drawing its share of ``prepaid``, GatewayApp._chat_n) relayed as one."""
    one_raw = dumps(one)
    # n choices ask for n answers: never n copies of one cached answer
    runs = [app.engine.stream(app._task(one, raw, key, one_raw, use_cache=False, prepaid=prepaid),
                              app.settings.stream_queue)
            for _ in range(n)]
    done = [False] * n
    usage: list[Any] = []
    app.in_flight += 1
    for run in runs:
        app._streams.add(run)
    try:
        pending: list[list[bytes]] = [[] for _ in runs]
        for i, run in enumerate(runs):  # every run's first news before the status is chosen
            while not pending[i] and not run.finished():
                await _wait_any([run])
                pending[i] = run.take()
        for run in runs:  # one failed before the head: its status is the answer
            if run.finished():
                res = run.result()
                if not res["ok"]:
                    done = [True] * n
                    status, payload, headers = app._failure(res, key.project, n)
                    out = ChatOutcome(res["model"], _sent(res["attempts"]))
                    app._send(conn, status, payload, close, out.headers() + headers)
                    return
        out = ChatOutcome(runs[0].model(), sum(r.attempts() for r in runs))
        chunked = raw.version != "HTTP/1.0"
        conn.last_status = 200
        conn.write(head_bytes(200, [*_SSE, _SERVER, *out.headers()], chunked=chunked,
                              close=close or not chunked))
        failure: bytes = b""
        while True:
            data = b"".join(_frame(loads(c), i, usage) for i, cs in enumerate(pending) for c in cs)
            pending = [[] for _ in runs]
            if data:
                conn.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
                await conn.drain()
            if conn.closed:
                return
            for i, run in enumerate(runs):
                if not done[i] and run.finished():
                    done[i] = True
                    res = run.result()
                    if not res["ok"] and not failure:
                        failure = b"data: " + app._failure(res, key.project, n)[1] + b"\n\n"
            if failure or all(done):
                break
            live = [r for i, r in enumerate(runs) if not done[i]]
            await _wait_any(live)
            pending = [r.take() if not done[i] else [] for i, r in enumerate(runs)]
        tail = failure
        if not failure and usage and wants_usage_chunk(one):  # only when asked, as openai does
            last = {**usage[-1], "choices": [], "usage": sum_usage([u["usage"] for u in usage])}
            tail = b"data: " + dumps(last) + b"\n\n"
        tail += b"data: [DONE]\n\n"
        conn.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(tail), tail) if chunked else tail)
        if not chunked:
            conn.close()
    finally:
        app.in_flight -= 1
        for i, run in enumerate(runs):
            app._streams.discard(run)
            app._paused_before += run.pauses()
            if not done[i] or not run.finished():
                run.cancel()  # the client left, or a sibling failed: stop it, release its hold
