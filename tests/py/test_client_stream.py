"""Streaming against FakeOpenRouter; every test has a sync and an async twin."""

from __future__ import annotations

import asyncio

import pytest

import orroute
from orroute.testing import FakeOpenRouter, Fault
from orroute.types import ChatCompletionChunk

MSGS = [{"role": "user", "content": "Tell me a story about a lighthouse keeper"}]
TOOL_REPLY = {
    "tool_calls": [
        {
            "id": "call_9",
            "type": "function",
            "function": {"name": "lookup", "arguments": {"q": "lighthouse", "n": 3}},
        }
    ]
}


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a"], keepalive_interval=0.05, use_uvloop=False) as f:
        yield f


def sync_client(fake, **kw):
    return orroute.OpenRouter(base_url=fake.base_url, **kw)


def async_client(fake, **kw):
    return orroute.AsyncOpenRouter(base_url=fake.base_url, **kw)


def text_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- the stream joins to the same answer, with usage at the end -----------------------------------


def test_stream_joins_deltas_and_exposes_usage(fake):
    client = sync_client(fake)
    full = client.chat.completions.create(model="m/a", messages=MSGS)
    with client.chat.completions.create(model="m/a", messages=MSGS, stream=True) as s:
        chunks = list(s)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert text_of(chunks) == full.choices[0].message.content == s.text
    assert s.usage.total_tokens == full.usage.total_tokens and s.usage.cost == pytest.approx(
        full.usage.cost
    )
    final = s.get_final_completion()
    assert final.choices[0].message.content == s.text and final.usage.cost == s.usage.cost
    assert fake.last_request.json["stream"] is True
    assert fake.wait_until(lambda: fake.open_streams == 0)


async def test_async_stream_joins_deltas_and_exposes_usage(fake):
    client = async_client(fake)
    full = await client.chat.completions.create(model="m/a", messages=MSGS)
    async with await client.chat.completions.create(model="m/a", messages=MSGS, stream=True) as s:
        chunks = [c async for c in s]
    assert text_of(chunks) == full.choices[0].message.content == s.text
    assert s.usage.total_tokens == full.usage.total_tokens
    assert s.get_final_completion().usage.cost == pytest.approx(full.usage.cost)


# --- tool-call deltas ----------------------------------------------------------------------------


def test_stream_assembles_tool_call_deltas(fake):
    fake.set_reply("m/a", TOOL_REPLY)
    s = sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    deltas = [tc for c in s if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function.name == "lookup"
    tc = s.get_final_completion().choices[0].message.tool_calls[0]
    assert tc.id == "call_9" and tc.function.name == "lookup"
    assert '"lighthouse"' in tc.function.arguments and tc.function.arguments.endswith("}")


async def test_async_stream_assembles_tool_call_deltas(fake):
    fake.set_reply("m/a", TOOL_REPLY)
    s = await async_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    _ = [c async for c in s]
    tc = s.get_final_completion().choices[0].message.tool_calls[0]
    assert tc.id == "call_9" and '"lighthouse"' in tc.function.arguments


# --- mid-stream error: content first, then a typed error, partial text kept ---------------------


def test_mid_stream_error_raises_after_content(fake):
    fake.fail("m/a", Fault.stream_error(after_tokens=3))
    got = []
    with pytest.raises(orroute.StreamError) as info:
        for c in sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True):
            got.append(c)  # noqa: PERF402 (keeps the chunks that came before the error)
    assert text_of(got) and info.value.partial == text_of(got)
    assert info.value.generation_id


async def test_async_mid_stream_error_raises_after_content(fake):
    fake.fail("m/a", Fault.stream_error(after_tokens=3))
    got = []
    with pytest.raises(orroute.StreamError) as info:
        async for c in await async_client(fake).chat.completions.create(
            model="m/a", messages=MSGS, stream=True
        ):
            got.append(c)
    assert text_of(got) and info.value.partial == text_of(got)


def test_malformed_chunk_raises_stream_error(fake):
    fake.fail("m/a", Fault.malformed_json(after_tokens=2))
    with pytest.raises(orroute.StreamError, match="not a JSON"):
        list(sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True))


async def test_async_malformed_chunk_raises_stream_error(fake):
    fake.fail("m/a", Fault.malformed_json(after_tokens=2))
    with pytest.raises(orroute.StreamError, match="not a JSON"):
        _ = [
            c
            async for c in await async_client(fake).chat.completions.create(
                model="m/a", messages=MSGS, stream=True
            )
        ]


# --- errors before the first byte are retried; a stall mid-stream times out -----------------------


def test_stream_retries_errors_before_first_byte(fake):
    fake.script("m/a", [Fault.server_error(502), Fault.rate_limit(retry_after=0)])
    s = sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    assert text_of(s)
    assert fake.request_count == 3


async def test_async_stream_retries_errors_before_first_byte(fake):
    fake.script("m/a", [Fault.server_error(502), Fault.rate_limit(retry_after=0)])
    s = await async_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    assert text_of([c async for c in s])
    assert fake.request_count == 3


def test_stream_error_status_raises_typed_error(fake):
    fake.fail("m/a", Fault.payment_required())
    with pytest.raises(orroute.PaymentRequiredError):
        next(
            iter(sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True))
        )


async def test_async_stream_error_status_raises_typed_error(fake):
    fake.fail("m/a", Fault.payment_required())
    s = await async_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    with pytest.raises(orroute.PaymentRequiredError):
        await s.__anext__()


def test_stalled_stream_hits_idle_timeout_after_content(fake):
    fake.fail("m/a", Fault.hang(after_tokens=2))
    got = []
    timeout = orroute.Timeout(connect=5, first_byte=5, idle=0.4)
    with pytest.raises(orroute.APITimeoutError):
        for c in sync_client(fake, timeout=timeout).chat.completions.create(
            model="m/a", messages=MSGS, stream=True
        ):
            got.append(c)  # noqa: PERF402 (keeps the chunks that came before the error)
    assert text_of(got)


async def test_async_stalled_stream_hits_idle_timeout_after_content(fake):
    fake.fail("m/a", Fault.hang(after_tokens=2))
    timeout = orroute.Timeout(connect=5, first_byte=5, idle=0.4)
    got = []
    with pytest.raises(orroute.APITimeoutError):
        async for c in await async_client(fake, timeout=timeout).chat.completions.create(
            model="m/a", messages=MSGS, stream=True
        ):
            got.append(c)
    assert text_of(got)


# --- closing early aborts the transfer --------------------------------------------------------------


def test_breaking_out_and_closing_aborts_the_transfer(fake):
    fake.set_model_profile("m/a", tokens_per_second=20)
    with sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True) as s:
        for c in s:
            if c.choices and c.choices[0].delta.content:
                break
    assert fake.wait_until(lambda: fake.open_streams == 0, timeout=2)


async def test_async_cancelling_the_task_aborts_the_transfer(fake):
    fake.set_model_profile("m/a", tokens_per_second=5)
    client = async_client(fake)
    first = asyncio.Event()

    async def consume():
        async for _ in await client.chat.completions.create(
            model="m/a", messages=MSGS, stream=True
        ):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.wait_until, lambda: fake.open_streams == 0, 2)


# --- keep-alive comments and slow drips -------------------------------------------------------------


def test_keepalive_comments_and_slow_drip_are_parsed(fake):
    fake.set_model_profile("m/a", ttft=0.2)
    fake.script("m/a", [Fault.slow_drip(interval=0.0005, chunk_size=3)])
    client = sync_client(fake)
    a = text_of(client.chat.completions.create(model="m/a", messages=MSGS, stream=True))
    b = text_of(client.chat.completions.create(model="m/a", messages=MSGS, stream=True))
    assert a == b and a


async def test_async_keepalive_comments_and_slow_drip_are_parsed(fake):
    fake.set_model_profile("m/a", ttft=0.2)
    fake.script("m/a", [Fault.slow_drip(interval=0.0005, chunk_size=3)])
    client = async_client(fake)
    a = text_of(
        [
            c
            async for c in await client.chat.completions.create(
                model="m/a", messages=MSGS, stream=True
            )
        ]
    )
    b = text_of(
        [
            c
            async for c in await client.chat.completions.create(
                model="m/a", messages=MSGS, stream=True
            )
        ]
    )
    assert a == b and a


# --- a slow consumer gets every chunk (the queue is bounded; the transfer pauses) ----------------


def test_slow_consumer_gets_every_chunk(fake):
    long = "word " * 3000
    fake.set_reply("m/a", long)
    s = sync_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    import time

    time.sleep(0.3)  # let the producer fill the queue and pause
    assert text_of(s) == long


async def test_async_slow_consumer_gets_every_chunk(fake):
    long = "word " * 3000
    fake.set_reply("m/a", long)
    s = await async_client(fake).chat.completions.create(model="m/a", messages=MSGS, stream=True)
    await asyncio.sleep(0.3)
    out = []
    async for c in s:
        out.append(c)
        if len(out) % 50 == 0:
            await asyncio.sleep(0)
    assert text_of(out) == long
