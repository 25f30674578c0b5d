"""orroute.Transport / AsyncTransport and the openai_client helpers: a real openai client whose
calls go through orroute in process (selection, budgets, fallbacks, the ledger), with openai's own
types, streams and exceptions.

The openai tests use the openai installed (2.x here; scripts/test-openai3.sh runs this file under
openai 3.x, which builds on httpx2); the tests on a plain HTTP client run once per httpx-like
library installed (the ``http`` fixture: httpx and httpx2)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")
OPENAI_MAJOR = int(openai.__version__.split(".")[0])
#: The HTTP library the installed openai builds on (its exceptions are what openai wraps).
httpx = pytest.importorskip("httpx2" if OPENAI_MAJOR >= 3 else "httpx")
LIBS = [name for name in ("httpx", "httpx2") if importlib.util.find_spec(name) is not None]

from _dropin_util import MODEL, UPSTREAM_KEY, dropin_fixtures, ledger_rows, make_manager

import orroute
from orroute.testing import FakeOpenRouter, Fault

fake, tracker, manager = dropin_fixtures()


@pytest.fixture(params=LIBS)
def http(request: pytest.FixtureRequest) -> Any:
    """Each httpx-like library installed: one transport serves clients of either."""
    return pytest.importorskip(request.param)

HI = [{"role": "user", "content": "Say hi"}]


def test_helper_returns_a_real_openai_client_booked_in_the_ledger(
    manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter
) -> None:
    client = orroute.openai_client(manager, project="app")
    assert isinstance(client, openai.OpenAI)
    assert isinstance(client._client, httpx.Client)  # the library this openai builds on
    r = client.chat.completions.create(model=MODEL, messages=HI)
    assert type(r) is openai.types.chat.ChatCompletion
    assert r.choices[0].message.content
    assert r.model == MODEL
    assert fake.request_count == 1
    rows = ledger_rows(tracker)
    assert [(row.model, row.project, row.outcome) for row in rows] == [(MODEL, "app", "ok")]
    assert rows[0].prompt_tokens == r.usage.prompt_tokens
    assert rows[0].completion_tokens == r.usage.completion_tokens


def test_alias_is_resolved_by_the_router(manager: Any, tracker: orroute.CostTracker) -> None:
    client = orroute.openai_client(manager)
    r = client.chat.completions.create(model="orroute/cheapest", messages=HI)
    assert r.model != "orroute/cheapest"
    assert [row.model for row in ledger_rows(tracker)] == [r.model]


def test_stream_is_parsed_by_openai_and_matches_the_ledger(
    manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter
) -> None:
    client = orroute.openai_client(manager)
    plain = client.chat.completions.create(model=MODEL, messages=HI, seed=7)
    with client.chat.completions.create(model=MODEL, messages=HI, seed=7, stream=True) as s:
        chunks = list(s)
    assert all(type(c) is openai.types.chat.ChatCompletionChunk for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    rows = ledger_rows(tracker)
    assert len(rows) == 2 and rows[1].completion_tokens == plain.usage.completion_tokens
    assert fake.open_streams == 0


def test_usage_chunk_only_when_asked_as_openai_does(manager: Any) -> None:
    client = orroute.openai_client(manager)
    plain = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    # openai's documented loop: every chunk has a choice
    assert "".join(c.choices[0].delta.content or "" for c in plain)
    asked = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True,
                                                stream_options={"include_usage": True}))
    assert asked[-1].choices == [] and asked[-1].usage.completion_tokens > 0
    assert len(asked) == len(plain) + 1


def test_closing_a_stream_early_stops_the_upstream_transfer(
    fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    fake.reset()
    fake.set_model_profile(MODEL, tokens_per_second=3)  # ~10 s of output: still running
    try:
        client = orroute.openai_client(make_manager(fake, tracker))
        messages = [{"role": "user", "content": "Write a long story " * 20}]
        s = client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        next(iter(s))
        assert fake.open_streams == 1
        s.close()
        assert fake.wait_until(lambda: fake.open_streams == 0, timeout=3)
    finally:
        fake.reset()


@pytest.mark.parametrize("via", ["openai", *LIBS])
def test_a_stream_dropped_unclosed_stops_the_upstream_transfer(
    fake: FakeOpenRouter, tracker: orroute.CostTracker, via: str
) -> None:
    fake.reset()
    fake.set_model_profile(MODEL, tokens_per_second=3)  # ~10 s of output
    try:
        manager = make_manager(fake, tracker)
        messages = [{"role": "user", "content": "Write a long story " * 20}]
        chunks: Any = None
        if via == "openai":
            s: Any = orroute.openai_client(manager).chat.completions.create(
                model=MODEL, messages=messages, stream=True)
            next(iter(s))
        else:
            lib = pytest.importorskip(via)
            http = lib.Client(transport=orroute.Transport(manager), base_url="http://x/v1")
            s = http.send(http.build_request("POST", "/chat/completions", json={
                "model": MODEL, "messages": messages, "stream": True}), stream=True)
            chunks = s.iter_raw()  # kept: httpx2 closes the response when it is collected
            next(chunks)
        assert fake.open_streams == 1
        del s  # neither read to the end nor closed
        chunks = None
        gc.collect()
        assert fake.wait_until(lambda: fake.open_streams == 0, timeout=3)
        assert fake.wait_until(lambda: manager.reserved()[0] == 0, timeout=5)  # hold released
    finally:
        fake.reset()


async def test_an_async_stream_dropped_unclosed_stops_without_waiting_for_a_gc(
    fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    """openai's AsyncStream and its ``__stream__`` generator refer to each other (as do httpx's
    response and its bound stream): dropped unclosed, the body is freed only by a cyclic garbage
    collection, so nothing tells the transport. A reader that takes nothing while the pipe is
    full is gone after the write timeout, as over a socket: the run stops, settled at what was
    streamed (before: held until the stream deadline, an hour)."""
    fake.reset()
    fake.fail(MODEL, Fault.ignore_max_tokens(8000))  # ~1 MB of chunks: the pipe fills
    gc.disable()  # the cyclic collector runs when allocations say so: not here
    try:
        transport = orroute.AsyncTransport(make_manager(fake, tracker), write_timeout=0.3)
        client = openai.AsyncOpenAI(base_url=orroute.transport.BASE_URL, api_key="-",
                                    http_client=httpx.AsyncClient(transport=transport))
        s = await client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=8000, stream=True)
        chunks = s.__aiter__()
        await chunks.__anext__()
        del s, chunks  # neither read to the end nor closed
        for _ in range(250):  # the pipe fills, then the write timeout passes
            await asyncio.sleep(0.02)
            if transport.manager.reserved()[0] == 0:
                break
        assert transport.manager.reserved()[0] == 0
        [row] = ledger_rows(tracker)
        assert 0 < row.completion_tokens < 8000  # what was streamed, billed
        assert row.cost > 0
    finally:
        gc.enable()
        gc.collect()
        fake.reset()


def _the_idle_reader_error(err: BaseException | None) -> bool:
    """True if `err` is the ReadError a pipe stopped for an idle reader raises, as the installed
    openai shows it: itself (openai 2.x) or the cause of its APIConnectionError (3.x)."""
    while err is not None and not isinstance(err, httpx.ReadError):
        err = err.__cause__
    return err is not None and "write_timeout" in str(err)


async def test_an_async_reader_too_slow_for_the_write_timeout_gets_an_error_not_an_end(
    fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    """A reader alive but idle past write_timeout with the pipe full (a consumer's slow work per
    chunk, a debugger) loses the stream, as over a socket; it must see an error when it reads
    again. It saw a clean end: the part read passed for the whole answer (and the 64 kB queued
    were dropped unseen)."""
    fake.reset()
    fake.fail(MODEL, Fault.ignore_max_tokens(8000))  # ~1 MB of chunks: the pipe fills
    transport = orroute.AsyncTransport(make_manager(fake, tracker), write_timeout=0.3)
    client = openai.AsyncOpenAI(base_url=orroute.transport.BASE_URL, api_key="-",
                                http_client=httpx.AsyncClient(transport=transport))
    s = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8000, stream=True)
    chunks = s.__aiter__()
    await chunks.__anext__()
    for _ in range(250):  # the pipe fills, then the write timeout passes
        await asyncio.sleep(0.02)
        if transport.manager.reserved()[0] == 0:
            break
    with pytest.raises((httpx.ReadError, openai.APIConnectionError)) as stopped:
        async for _ in chunks:
            pass
    assert _the_idle_reader_error(stopped.value)
    [row] = ledger_rows(tracker)
    assert 0 < row.completion_tokens < 8000 and row.cost > 0  # what was streamed, billed
    fake.reset()


def test_a_sync_reader_too_slow_for_the_write_timeout_gets_an_error_not_an_end(
    fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    """The sync transport's reader idle past write_timeout: an error when it reads again, not a
    clean end of a truncated answer."""
    fake.reset()
    fake.fail(MODEL, Fault.ignore_max_tokens(8000))
    transport = orroute.Transport(make_manager(fake, tracker), write_timeout=0.3)
    client = openai.OpenAI(base_url=orroute.transport.BASE_URL, api_key="-",
                           http_client=httpx.Client(transport=transport))
    s = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8000, stream=True)
    chunks = iter(s)
    next(chunks)
    for _ in range(250):  # the loop thread fills the pipe, then the write timeout passes
        time.sleep(0.02)
        if transport.manager.reserved()[0] == 0:
            break
    with pytest.raises((httpx.ReadError, openai.APIConnectionError)) as stopped:
        for _ in chunks:
            pass
    assert _the_idle_reader_error(stopped.value)
    fake.reset()


def test_budget_refusal_is_openai_402_with_a_code_and_nothing_is_sent(
    fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    fake.reset()
    client = orroute.openai_client(make_manager(fake, tracker, budget="0.000001"))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4o", messages=HI, max_tokens=2000)
    assert info.value.status_code == 402
    assert info.value.code == "budget_exceeded"
    assert "budget" in info.value.message
    assert fake.request_count == 0


def test_invalid_request_is_openai_bad_request_before_sending(
    manager: Any, fake: FakeOpenRouter
) -> None:
    client = orroute.openai_client(manager)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=HI, temperature=3)
    assert info.value.param == "temperature"
    assert fake.request_count == 0


def test_unsupported_path_is_an_openai_404(manager: Any) -> None:
    client = orroute.openai_client(manager)
    with pytest.raises(openai.NotFoundError) as info:
        client.files.list()
    assert "no route" in info.value.message


def test_upstream_rate_limit_falls_back_along_a_route(
    manager: Any, fake: FakeOpenRouter, tracker: orroute.CostTracker
) -> None:
    fake.fail(MODEL, Fault.rate_limit(retry_after=0))
    client = orroute.openai_client(manager, routes={"chat": [MODEL, "openai/gpt-4o"]})
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=HI)
    assert raw.headers["x-orroute-model"] == "openai/gpt-4o"
    assert raw.parse().model == "openai/gpt-4o"
    assert [r.outcome for r in ledger_rows(tracker)][-1] == "ok"


def test_upstream_error_without_fallback_is_openai_error(manager: Any, fake: FakeOpenRouter) -> None:
    fake.fail(MODEL, Fault.server_error(503))
    client = orroute.openai_client(manager, fallback=False)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.status_code == 503


def test_unreachable_upstream_is_openai_connection_error(tracker: orroute.CostTracker) -> None:
    manager = orroute.AIModelManager(api_key="sk-or-v1-x", base_url="http://127.0.0.1:9/api/v1",
                                     ledger=tracker, refresh_catalog=False, max_retries=0)
    client = orroute.openai_client(manager)
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert not isinstance(info.value, openai.APITimeoutError)


def test_models_retrieve_and_list(manager: Any) -> None:
    client = orroute.openai_client(manager)
    assert client.models.retrieve(MODEL).id == MODEL
    ids = {m.id for m in client.models.list()}
    assert {"orroute/auto", MODEL} <= ids
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nobody/no-such-model")


def test_async_plain_and_stream(manager: Any, tracker: orroute.CostTracker) -> None:
    async def run() -> tuple[Any, str]:
        client = orroute.async_openai_client(manager)
        assert isinstance(client, openai.AsyncOpenAI)
        assert isinstance(client._client, httpx.AsyncClient)
        r = await client.chat.completions.create(model=MODEL, messages=HI, seed=3)
        s = await client.chat.completions.create(model=MODEL, messages=HI, seed=3, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
        await client.close()
        return r, text

    r, text = asyncio.run(run())
    assert text == r.choices[0].message.content
    assert len(ledger_rows(tracker)) == 2


def test_async_concurrent_calls(manager: Any, tracker: orroute.CostTracker) -> None:
    async def run() -> list[Any]:
        client = orroute.async_openai_client(manager)
        return await asyncio.gather(*(
            client.chat.completions.create(model=MODEL, messages=[
                {"role": "user", "content": f"question {i}"}]) for i in range(8)))

    out = asyncio.run(run())
    assert len({r.id for r in out}) == 8
    assert len(ledger_rows(tracker)) == 8


def test_transport_serves_a_plain_httpx_client(manager: Any, http: Any) -> None:
    with http.Client(transport=orroute.Transport(manager), base_url="http://x/v1") as client:
        r = client.post("/chat/completions", json={"model": MODEL, "messages": HI})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
        r = client.post("/chat/completions", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["param"] == "body"


def test_async_transport_serves_a_plain_async_client(manager: Any, http: Any) -> None:
    async def run() -> list[bytes]:
        async with http.AsyncClient(transport=orroute.AsyncTransport(manager),
                                    base_url="http://x/v1") as client:
            body = {"model": MODEL, "messages": HI, "stream": True}
            async with client.stream("POST", "/chat/completions", json=body) as r:
                assert r.status_code == 200
                return [line async for line in r.aiter_lines() if line]

    lines = asyncio.run(run())
    assert lines[0].startswith("data: {") and lines[-1] == "data: [DONE]"


def test_transport_needs_only_the_library_of_its_client() -> None:
    """openai 3.x users may not have httpx at all: with httpx unimportable the transport is
    built on httpx2 alone and serves an httpx2 client."""
    if "httpx2" not in LIBS:
        pytest.skip("httpx2 is not installed")
    code = ("import sys; sys.modules['httpx'] = None\n"
            "import httpx2, orroute\n"
            "m = orroute.AIModelManager(api_key='sk-or-v1-x', base_url='http://127.0.0.1:9/v1',"
            " refresh_catalog=False, ledger=None)\n"
            "c = httpx2.Client(transport=orroute.Transport(m), base_url='http://x/v1')\n"
            "r = c.post('/chat/completions', content=b'{not json')\n"
            "print(r.status_code, r.json()['error']['param'], 'httpx' in sys.modules and "
            "sys.modules['httpx'] is not None)")
    env_path = str(Path(orroute.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["400", "body", "False"]


def test_a_bug_in_request_handling_is_an_openai_500(manager: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from orroute.gateway import app

    def broken(body: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(app, "validate_chat", broken)
    client = orroute.openai_client(manager)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.status_code == 500 and "boom" not in info.value.message


def test_manager_and_its_arguments_are_exclusive(manager: Any) -> None:
    with pytest.raises(TypeError):
        orroute.Transport(manager, budget=1)


def test_import_orroute_does_not_import_httpx_or_openai() -> None:
    code = ("import sys, orroute; orroute.Task; "
            "print(sorted(m for m in ('httpx', 'httpx2', 'openai') if m in sys.modules))")
    env_path = str(Path(orroute.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "[]"


def test_an_upstream_echoing_its_key_never_shows_it_to_the_caller(
    manager: Any, fake: FakeOpenRouter, http: Any
) -> None:
    """The manager's upstream key, echoed by the upstream (an error, or a choice's error in a
    200), is scrubbed as the gateway scrubs its own: the transport's app has no key of its own
    (the manager holds it), so the app must take the manager's."""
    client = http.Client(transport=orroute.Transport(manager), base_url="http://orroute.invalid/v1")
    body = {"model": MODEL, "max_tokens": 8, "messages": HI}
    try:
        for fault, path in ((Fault.bad_request(f"bad key {UPSTREAM_KEY}"), "/chat/completions"),
                            (Fault.bad_request(f"bad key {UPSTREAM_KEY}"), "/messages"),
                            (Fault.stream_error(after_tokens=1, message=f"boom {UPSTREAM_KEY}"),
                             "/chat/completions")):
            fake.fail(MODEL, fault)
            r = client.post(path, json=body)
            assert r.status_code in (200, 400, 502), r.content
            assert b"bad key" in r.content or b"boom" in r.content
            assert UPSTREAM_KEY.encode() not in r.content
    finally:
        fake.clear_faults(MODEL)
        client.close()


def test_an_upstream_that_stalls_mid_stream_ends_with_httpx_read_timeout(
    manager: Any, fake: FakeOpenRouter, http: Any
) -> None:
    """The caller's httpx read timeout holds in process as over a socket: a stream whose upstream
    goes silent raises ``httpx.ReadTimeout`` (openai: APITimeoutError) instead of waiting for
    the engine's own, much longer, timeout; the run is cancelled and the next call works."""
    fake.fail(MODEL, Fault.hang(after_tokens=2))
    body = {"model": MODEL, "max_tokens": 50, "stream": True, "messages": HI}
    try:
        with http.Client(transport=orroute.Transport(manager), timeout=http.Timeout(5, read=0.5),
                         base_url="http://orroute.invalid/v1") as client:
            with pytest.raises(http.ReadTimeout), \
                    client.stream("POST", "/chat/completions", json=body) as r:
                assert r.status_code == 200
                for _ in r.iter_bytes():
                    pass
            fake.clear_faults(MODEL)
            assert client.post("/chat/completions", json={**body, "stream": False}).status_code == 200
    finally:
        fake.clear_faults(MODEL)


def test_an_upstream_that_never_answers_a_plain_call_ends_with_read_timeout(
    manager: Any, fake: FakeOpenRouter, http: Any
) -> None:
    """A non-streamed call's head comes only with the whole reply: the read timeout covers the
    wait for it too, as a socket read would (not the engine's own, much longer, timeout)."""
    fake.fail(MODEL, Fault.hang())
    body = {"model": MODEL, "max_tokens": 50, "messages": HI}
    try:
        with http.Client(transport=orroute.Transport(manager), timeout=http.Timeout(5, read=0.5),
                         base_url="http://orroute.invalid/v1") as client:
            with pytest.raises(http.ReadTimeout):
                client.post("/chat/completions", json=body)
            # the run was stopped: its hold released (by the engine, shortly)
            assert fake.wait_until(lambda: manager.reserved()[0] == 0, timeout=5)
            fake.clear_faults(MODEL)
            assert client.post("/chat/completions", json=body).status_code == 200
    finally:
        fake.clear_faults(MODEL)


def test_openai_timeout_on_a_hung_upstream_is_api_timeout_error(
    manager: Any, fake: FakeOpenRouter
) -> None:
    fake.fail(MODEL, Fault.hang())
    try:
        client = orroute.openai_client(manager, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model=MODEL, messages=HI)
    finally:
        fake.clear_faults(MODEL)
