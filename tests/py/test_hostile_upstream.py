"""Every byte an upstream sends is hostile until checked: replies that are not UTF-8, streams cut
inside a character, error bodies and headers of raw bytes, echoed keys. None of them may end in a
raw Python error (UnicodeDecodeError, KeyError, TypeError, a json error) after the call was paid,
through the manager, the client, the gateway or the openai drop-in, sync and async, streamed or
not. The upstream is a FakeOpenRouter answering ``Fault.raw`` bytes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _provider_util import provider

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter, Fault

MODEL = "test/a"  # synthetic: $1/M prompt, $2/M completion tokens
KEY = "sk-or-v1-hostile-upstream-test-key-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=[MODEL, "test/b"]) as f:
        yield f


def manager(fake: FakeOpenRouter, tmp_path: Path, **kw: Any) -> orroute.AIModelManager:
    kw.setdefault("retry_base_delay", 0.001)
    return orroute.AIModelManager(api_key=KEY, base_url=fake.base_url,
                                  ledger=str(tmp_path / "ledger.sqlite3"), **kw)


def completion(content: bytes = b"ok", *, id: bytes = b"gen-1", model: bytes = MODEL.encode(),
               provider: bytes = b"P", extra_message: bytes = b"") -> bytes:
    """A plain chat completion's JSON as raw bytes (fields may hold any bytes)."""
    return (b'{"id":"' + id + b'","model":"' + model + b'","provider":"' + provider
            + b'","object":"chat.completion","created":1,"choices":[{"index":0,"message":'
            b'{"role":"assistant","content":"' + content + b'"' + extra_message
            + b'},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,'
            b'"total_tokens":10,"cost":0.000012}}')


def sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events)


def chunk(delta: bytes, *, id: bytes = b"gen-1", model: bytes = MODEL.encode(),
          provider: bytes = b"P", finish: bytes = b"null") -> bytes:
    return (b'{"id":"' + id + b'","model":"' + model + b'","provider":"' + provider
            + b'","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":'
            + delta + b',"finish_reason":' + finish + b"}]}")


USAGE = (b'{"id":"gen-1","model":"test/a","object":"chat.completion.chunk","created":1,'
         b'"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10,'
         b'"cost":0.000012}}')


def stream_reply(*pieces: bytes) -> Fault:
    return Fault.raw(*pieces, content_type="text/event-stream", content_length=-1)


def hostile_stream(content: bytes, **kw: bytes) -> bytes:
    return sse(chunk(b'{"role":"assistant","content":"' + content + b'"}', **kw),
               chunk(b"{}", finish=b'"stop"', **kw), USAGE, b"[DONE]")


# --- the manager ----------------------------------------------------------------------------------


def test_manager_stream_with_invalid_utf8_in_a_delta_gives_replacement_chars(fake, tmp_path):
    """A delta holding a byte that is not UTF-8 reaches the consumer with U+FFFD, sync and
    async, and the run settles: no UnicodeDecodeError out of json.loads of the queued chunk."""
    m = manager(fake, tmp_path)
    fake.fail(MODEL, stream_reply(hostile_stream(b"bad \xff byte", provider=b"P\xfe")))
    chunks = list(m.stream_task_sync(Task(messages="hi", max_tokens=5), model=MODEL))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "bad \ufffd byte"

    async def run() -> str:
        out = []
        async for c in m.stream_task(Task(messages="hi", max_tokens=5), model=MODEL):
            if c["choices"]:
                out.append(c["choices"][0]["delta"].get("content") or "")
        return "".join(out)

    assert asyncio.run(run()) == "bad \ufffd byte"


def test_manager_stream_split_inside_a_character_keeps_the_character(fake, tmp_path):
    """An SSE event cut by the network between the bytes of one character is joined before it
    is read: the consumer sees the character, not two U+FFFD."""
    m = manager(fake, tmp_path)
    body = hostile_stream("héllo wörld €".encode())
    cut = body.index("é".encode()) + 1  # between the two bytes of é
    cut2 = body.index("€".encode()) + 2  # inside the three bytes of €
    fake.fail(MODEL, stream_reply(body[:cut], body[cut:cut2], body[cut2:]))
    chunks = list(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "héllo wörld €"


def test_manager_plain_reply_with_invalid_utf8_names_reaches_the_ledger_readably(fake, tmp_path):
    """The served model and provider of a reply are upstream bytes; the ledger keeps the row
    and reading the history back never raises."""
    m = manager(fake, tmp_path)
    fake.fail(MODEL, Fault.raw(completion(b"fine", model=b"test/a\xff", provider=b"Prov\xfe")))
    r = m.execute_task_sync(Task(messages="hi", max_tokens=5), model=MODEL)
    assert r.content == "fine"
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert len(rows) == 1
    for value in vars(rows[0]).values():  # every text field is text (it encodes back)
        if isinstance(value, str):
            value.encode()


def test_manager_plain_reply_with_repeated_keys_reads_each_as_before(fake, tmp_path):
    """A reply naming a top-level key twice: the text is the last "choices" (as the caller's
    ``response``, Python's json.loads, has it), the usage the ledger books is the first (as a
    lookup by name finds it). The engine finds them all in one pass over the
    members; this pins which one each reader takes."""
    m = manager(fake, tmp_path)
    body = (b'{"id":"gen-1","provider":"First","model":"test/a","object":"chat.completion",'
            b'"created":1,"choices":[{"index":0,"message":{"role":"assistant","content":"early"},'
            b'"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,'
            b'"total_tokens":10,"cost":0.000012},"provider":"Second","choices":[{"index":0,'
            b'"message":{"role":"assistant","content":"late"},"finish_reason":"stop"}],'
            b'"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"cost":0.5}}')
    fake.fail(MODEL, Fault.raw(body))
    r = m.execute_task_sync(Task(messages="hi", max_tokens=5), model=MODEL)
    assert r.content == "late"
    assert r.response["choices"][0]["message"]["content"] == "late"
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert len(rows) == 1
    assert (rows[0].prompt_tokens, rows[0].completion_tokens) == (8, 2)
    assert rows[0].cost == Decimal("0.000012")


def test_a_repeated_choices_key_cannot_hide_the_answer_from_the_usage_check(fake, tmp_path):
    """A reply whose first "choices" is short and whose last (the one the caller reads) is long,
    with a usage that claims the short one: the answer is counted with both, so the usage is
    found under-reported and the long answer booked, as when it is sent once."""
    long_text = " ".join(f"word{i}" for i in range(150))
    booked = []
    for repeated in (False, True):
        first = {"index": 0, "message": {"role": "assistant",
                                         "content": "ok" if repeated else long_text}}
        body = ('{"id":"gen-1","model":"' + MODEL + '","object":"chat.completion","created":1,'
                '"choices":' + json.dumps([first]) + ',"usage":{"prompt_tokens":8,'
                '"completion_tokens":1,"total_tokens":9}')
        if repeated:
            last = {"index": 0, "message": {"role": "assistant", "content": long_text}}
            body += ',"choices":' + json.dumps([last])
        fake.fail(MODEL, Fault.raw((body + "}").encode()))
        path = tmp_path / str(repeated)
        path.mkdir()
        m = manager(fake, path)
        r = m.execute_task_sync(Task(messages="hi", max_tokens=400), model=MODEL)
        assert r.content == long_text
        row = orroute.CostTracker(path / "ledger.sqlite3").usage_history()[0]
        booked.append((row.completion_tokens, r.cost_source))
    assert booked[0][0] >= 150 and booked[0][1] == "tokenizer"
    assert booked[1][0] >= booked[0][0] and booked[1][1] == "tokenizer"


def test_manager_error_body_not_utf8_is_an_api_error(fake, tmp_path):
    """A 500 whose body is neither JSON nor UTF-8 is an orroute error, not a decode error."""
    m = manager(fake, tmp_path, max_retries=0)
    fake.fail("*", Fault.raw(b"\xff\xfe upstream \xc3 broke", status=500))
    with pytest.raises(orroute.OrRouteError):
        m.execute_task_sync(Task(messages="hi", max_tokens=5), model=MODEL)


# --- the plain client -------------------------------------------------------------------------


def client(fake: FakeOpenRouter) -> orroute.OpenRouter:
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)


def test_client_error_body_not_utf8_is_an_api_status_error(fake):
    fake.fail(MODEL, Fault.raw(b"\xff\xfe upstream \xc3 broke", status=500))
    with pytest.raises(orroute.InternalServerError):
        client(fake).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_client_error_json_with_invalid_utf8_message_is_an_api_status_error(fake):
    fake.fail(MODEL, Fault.raw(b'{"error":{"code":400,"message":"bad \xff"}}', status=400))
    with pytest.raises(orroute.BadRequestError) as e:
        client(fake).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "bad \ufffd" in str(e.value)


def test_client_header_value_not_utf8_does_not_break_the_response(fake):
    fake.fail(MODEL, Fault.raw(completion(b"fine"), headers={"X-Odd": b"caf\xe9 \xff"}))
    raw = client(fake).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == "fine"
    assert "x-odd" in raw.headers


def test_client_stream_with_invalid_utf8_and_split_characters(fake):
    body = hostile_stream("caf\xe9 ".encode() + b"\xff")
    cut = body.index(b"\xc3") + 1
    fake.fail(MODEL, stream_reply(body[:cut], body[cut:]))
    with client(fake).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    ) as s:
        text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == "café \ufffd"


def test_client_plain_reply_with_invalid_utf8(fake):
    fake.fail(MODEL, Fault.raw(completion(b"bad \xff", id=b"gen-\xfe")))
    r = client(fake).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "bad \ufffd"


# --- the response cache ----------------------------------------------------------------------


def test_cache_hit_of_a_reply_with_invalid_utf8(fake, tmp_path):
    """The cache keeps what the upstream sent; serving it again never raises."""
    m = manager(fake, tmp_path, cache=str(tmp_path / "cache.sqlite3"))
    fake.fail(MODEL, Fault.raw(completion(b"bad \xff")), times=1)
    t = Task(messages="hi", max_tokens=5, params={"temperature": 0})
    first = m.execute_task_sync(t, model=MODEL)
    second = m.execute_task_sync(t, model=MODEL)
    assert first.content == second.content == "bad \ufffd"
    chunks = list(m.stream_task_sync(t, model=MODEL))  # a streamed hit replays the stored reply
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == "bad \ufffd"
    assert len([r for r in fake.requests if r.path.endswith("/chat/completions")]) == 1


# --- the gateway and the drop-in ---------------------------------------------------------------


def test_dropin_stream_with_invalid_utf8(fake, tmp_path):
    m = manager(fake, tmp_path)
    oc = orroute.openai_client(m)
    fake.fail(MODEL, stream_reply(hostile_stream(b"bad \xff byte")))
    s = oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                   stream=True, max_tokens=5)
    text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == "bad \ufffd byte"


def test_dropin_plain_with_invalid_utf8(fake, tmp_path):
    m = manager(fake, tmp_path)
    oc = orroute.openai_client(m)
    fake.fail(MODEL, Fault.raw(completion(b"bad \xff byte")))
    r = oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                   max_tokens=5)
    assert r.choices[0].message.content == "bad \ufffd byte"


def test_gateway_stream_relays_valid_utf8(fake, tmp_path):
    from orroute.gateway import Gateway, GatewaySettings

    fake.fail(MODEL, stream_reply(hostile_stream(b"bad \xff byte")))
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings) as gw:
        key = gw.keys.create("p")[0]
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
             "max_tokens": 5}), headers={"Authorization": f"Bearer {key}",
                                         "Content-Type": "application/json"})
        data = conn.getresponse().read()
        conn.close()
    data.decode("utf-8")  # what the gateway sends is UTF-8
    assert "bad \ufffd byte" in "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in data.decode().splitlines()
        if line.startswith("data: {") and json.loads(line[6:]).get("choices"))


def _strict_loads(data: bytes) -> Any:
    """``json.loads`` as a strict decoder (orjson) reads: no escape of a lone surrogate."""
    def check(x: Any) -> Any:
        if isinstance(x, str):
            x.encode("utf-8")  # a lone surrogate cannot be encoded: UnicodeEncodeError
        elif isinstance(x, dict):
            for k, v in x.items():
                check(k)
                check(v)
        elif isinstance(x, list):
            for v in x:
                check(v)
        return x

    return check(json.loads(data))


# a lone low, a lone high, and a real pair (an emoji) that stays as it is
SURROGATES = rb"lone \udc00 high \uD800 pair \ud83d\ude00"
REPAIRED = "lone \ufffd high \ufffd pair \U0001f600"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"],
                         ids=["chat", "messages"])
def test_gateway_replies_hold_no_escape_of_a_lone_surrogate(fake, tmp_path, path, stream):
    # "\udc00" is valid JSON text but no character: the gateway relayed it as the upstream sent
    # it, and a strict decoder (orjson) refused the reply; the lone high one ("\ud800") made the
    # reply unreadable (rapidjson refuses it). Both become U+FFFD, as JsonWriter writes a string
    # that is not UTF-8, on every endpoint, plain and streamed.
    from _gateway_util import call

    from orroute.gateway import Gateway, GatewaySettings

    if stream:
        fake.fail(MODEL, stream_reply(hostile_stream(SURROGATES)))
    else:
        fake.fail(MODEL, Fault.raw(completion(SURROGATES)))
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
            "stream": stream}
    with Gateway(settings) as gw:
        key = gw.keys.create("p")[0]
        status, _, data = call(gw, "POST", path, body, key)
    assert status == 200, data[:300]
    assert rb"\udc00" not in data.lower() and rb"\ud800" not in data.lower()
    if not stream:
        reply = _strict_loads(data)
        text = (reply["choices"][0]["message"]["content"] if path.endswith("completions")
                else "".join(b["text"] for b in reply["content"] if b["type"] == "text"))
        assert text == REPAIRED
        return
    events = [_strict_loads(line[6:]) for line in data.decode().splitlines()
              if line.startswith("data: {")]
    if path.endswith("completions"):
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                       if e.get("choices"))
    else:
        text = "".join(e["delta"].get("text") or "" for e in events
                       if e.get("type") == "content_block_delta")
    assert text == REPAIRED


def test_client_reply_and_stream_with_lone_surrogate_escapes(fake):
    fake.fail(MODEL, Fault.raw(completion(SURROGATES)), times=1)
    r = client(fake).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == REPAIRED
    fake.fail(MODEL, stream_reply(hostile_stream(SURROGATES)), times=1)
    with client(fake).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    ) as s:
        text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == REPAIRED


# --- sizes: nothing an upstream sends is buffered without bound ---------------------------------

BIG = 70 << 20  # past the 64 MiB a reply or one stream event may take


def endless(first: bytes, piece: int = 4 << 20) -> list[bytes]:
    """``first`` and then BIG bytes of 'a' with no line end, in pieces."""
    return [first] + [b"a" * piece] * (BIG // piece)


def test_client_stream_event_without_end_is_cut_not_buffered(fake):
    """A `data:` line that never ends (70 MiB and counting) stops the stream with an error that
    says why, instead of growing the parser's buffer for as long as the upstream sends."""
    fake.fail(MODEL, stream_reply(*endless(b'data: {"choices":[{"delta":{"content":"'),
                                  b'"}}]}\n\n'))
    c = client(fake)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(orroute.APIError, match="larger than"), \
            c.chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        for _ in s:
            pass


def test_client_reply_larger_than_the_limit_says_so(fake):
    """A plain reply past the limit is an error naming the size, not 'cancelled'."""
    fake.fail(MODEL, Fault.raw(*endless(b'{"x":"'), b'"}'))
    with pytest.raises(orroute.APIError, match="larger than") as e:
        client(fake).chat.completions.create(model=MODEL,
                                             messages=[{"role": "user", "content": "hi"}])
    assert not isinstance(e.value, orroute.APIConnectionError)


def test_manager_stream_event_without_end_is_cut(fake, tmp_path):
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail("*", stream_reply(*endless(b'data: {"choices":[{"delta":{"content":"'),
                                b'"}}]}\n\n'))
    with pytest.raises(orroute.OrRouteError, match="larger than"):
        for _ in m.stream_task_sync(Task(messages="hi", max_tokens=5), model=MODEL):
            pass


def keep_alive_forever(*first: bytes) -> Fault:
    """``first`` events, then an SSE comment every 0.1 s for 30 s: a stream that never ends."""
    return Fault.raw(*first, *[b": OPENROUTER PROCESSING\n\n"] * 300,
                     content_type="text/event-stream", content_length=-1, interval=0.1)


@pytest.mark.parametrize("first", [(), (sse(chunk(b'{"content":"hi"}')),)],
                         ids=["before-content", "after-content"])
def test_client_stream_of_keep_alives_only_hits_the_idle_timeout(fake, first):
    """Comments keep proxies from closing a quiet connection; they are not an answer: a stream
    that sends only them waits as long as the idle timeout says, not for as long as they come."""
    fake.fail(MODEL, keep_alive_forever(*first))
    c = orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(orroute.APITimeoutError), \
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                      stream=True) as s:
        for _ in s:
            pass
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("first", [(), (sse(chunk(b'{"content":"hi"}')),)],
                         ids=["before-content", "after-content"])
def test_manager_stream_of_keep_alives_only_hits_the_idle_timeout(fake, tmp_path, first):
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[], timeout=1.0)
    fake.fail("*", keep_alive_forever(*first))
    assert_stream_times_out_freeing_its_reservation(m)


def assert_stream_times_out_freeing_its_reservation(m: orroute.AIModelManager,
                                                    max_tokens: int = 5) -> None:
    """A stream of ``m`` ends in a timeout error within 10 s and holds no reservation after."""
    started = time.monotonic()
    with pytest.raises(orroute.OrRouteError, match="timeout"):
        for _ in m.stream_task_sync(Task(messages="hi", max_tokens=max_tokens), model=MODEL):
            pass
    assert time.monotonic() - started < 10
    assert m.reserved() == (0, 0)


def empty_events_forever(event: bytes) -> Fault:
    """A valid event that carries nothing of the answer every 0.1 s for 30 s."""
    return Fault.raw(*[sse(event)] * 300, content_type="text/event-stream", content_length=-1,
                     interval=0.1)


EMPTY_EVENTS = [b"{}", b'{"choices":[]}', chunk(b"{}"), chunk(b'{"content":""}'),
                chunk(b'{"role":"assistant"}'), USAGE]


@pytest.mark.parametrize("event", EMPTY_EVENTS,
                         ids=["object", "no-choices", "empty-delta", "empty-content", "role", "usage"])
def test_manager_stream_of_empty_events_hits_the_idle_timeout_and_frees_its_reservation(
        fake, tmp_path, event):
    """``data: {}`` is valid JSON but no answer: like a comment it does not restart the idle
    clock, so an upstream sending it forever cannot hold the call and its reservation."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[], timeout=1.0)
    fake.fail("*", empty_events_forever(event))
    assert_stream_times_out_freeing_its_reservation(m)


def test_manager_stream_trickling_an_endless_answer_ends_at_the_stream_deadline(fake, tmp_path):
    """Each piece restarts the idle clock: only the total deadline stops an upstream that answers
    one token every 0.1 s for ever (here 30 s; the default deadline is an hour)."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[], timeout=5.0, stream_deadline=1.0)
    fake.fail("*", Fault.raw(*[sse(chunk(b'{"content":" a"}'))] * 300,
                             content_type="text/event-stream", content_length=-1, interval=0.1))
    assert_stream_times_out_freeing_its_reservation(m, max_tokens=1000)


def test_client_stream_trickling_an_endless_answer_ends_at_the_stream_deadline(fake):
    """The bare client's stream with a number ``timeout`` (first byte and idle gap only), for the
    client or for the call, ends at the stream deadline all the same, sync and async."""
    fake.fail("*", Fault.raw(*[sse(chunk(b'{"content":" a"}'))] * 300,
                             content_type="text/event-stream", content_length=-1, interval=0.1))
    msgs = [{"role": "user", "content": "hi"}]
    kw: dict[str, Any] = {"api_key": KEY, "base_url": fake.base_url, "max_retries": 0,
                          "stream_deadline": 1.0}
    started = time.monotonic()
    with pytest.raises(orroute.APITimeoutError):
        for _ in orroute.OpenRouter(timeout=5.0, **kw).chat.completions.create(
                model=MODEL, messages=msgs, stream=True, timeout=5.0):
            pass

    async def run() -> None:
        c = orroute.AsyncOpenRouter(timeout=5.0, **kw)
        async for _ in await c.chat.completions.create(model=MODEL, messages=msgs, stream=True):
            pass

    with pytest.raises(orroute.APITimeoutError):
        asyncio.run(run())
    assert time.monotonic() - started < 10


def test_a_streams_reservation_is_held_as_long_as_the_stream_may_last(fake, tmp_path):
    """A reservation expires (15 min) and is reclaimed even while its process lives: a stream
    allowed to last longer (the default deadline is an hour) would have its worst case freed
    for others to spend while it still runs. Its reservation is held until its deadline."""
    import sqlite3

    m = manager(fake, tmp_path, max_retries=0, fallbacks=[], stream_deadline=7200.0)
    m.set_budget(1.0)
    fake.fail(MODEL, Fault.raw(*[sse(chunk(b'{"content":" a"}'))] * 30, content_type="text/event-stream",
                               content_length=-1, interval=0.1))
    stream = m.stream_task_sync(Task(messages="hi", max_tokens=1000), model=MODEL)
    next(iter(stream))  # under way
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    held_until = db.execute("SELECT max(expires_at) FROM reservations").fetchone()[0] / 1e6
    db.close()
    for _ in stream:
        pass
    assert held_until >= time.time() + 7200, held_until - time.time()


def test_a_stream_has_a_total_deadline_by_default():
    assert 0 < orroute._core.EngineConfig().stream_deadline <= 3600
    with pytest.raises(orroute.InvalidArgumentError):
        orroute.AIModelManager(api_key=KEY, stream_deadline=0)


@pytest.mark.parametrize("delta", [
    b'{"reasoning_details":[{"type":"reasoning.text","text":"' + b"think " * 200 + b'"}]}',
    b'{"reasoning_details":[{"type":"reasoning.summary","summary":"' + b"think " * 200 + b'"}]}',
], ids=["text", "summary"])
def test_manager_stream_of_reasoning_details_is_metered_and_cut(fake, tmp_path, delta):
    """Reasoning sent only as ``reasoning_details`` was not metered: an upstream ignoring
    max_tokens streamed it past the reservation (and the accumulator kept every entry)."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail("*", stream_reply(sse(*[chunk(delta)] * 500)))
    items = list(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL))
    assert len(items) < 10  # cut at the reservation, not relayed to the end
    assert items[-1]["choices"][0]["finish_reason"] == "length"
    assert m.reserved() == (0, 0)


def test_manager_stream_of_encrypted_reasoning_keeps_memory_bounded(fake, tmp_path):
    """Encrypted reasoning is no text to meter, but the accumulator kept a copy of every entry:
    200 MiB of it streamed grew the process by as much. What it keeps is now capped."""
    import resource

    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    entry = chunk(b'{"reasoning_details":[{"type":"reasoning.encrypted","data":"'
                  + b"A" * (1 << 20) + b'"}]}')
    fake.fail("*", stream_reply(*[sse(entry)] * 200, hostile_stream(b"ok")))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL):
        pass
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024


@pytest.mark.parametrize("fault", [
    Fault.raw(completion(), content_type="application/json"),
    Fault.raw(b"<html>oops</html>", content_type="text/html"),
    stream_reply(b""),
], ids=["json", "html", "empty"])
def test_a_stream_answered_with_no_event_is_an_error_not_an_empty_answer(fake, tmp_path, fault):
    """A 200 that is no event stream (a plain completion, a proxy's page, nothing) ended the
    stream as if the answer were empty: the caller got no text and no error."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail("*", fault)
    with pytest.raises(orroute.APIError, match="no event"):
        list(m.stream_task_sync(Task(messages="hi", max_tokens=20), model=MODEL))
    assert m.reserved() == (0, 0)


# --- keys: an upstream that echoes the key it was sent --------------------------------------------

ESCAPED_KEY = "".join(f"\\u{ord(c):04x}" for c in KEY).encode()  # JSON that reads as the key

ECHOES = [
    Fault.bad_request(f"bad key {KEY}"),
    Fault.status_error(400, "bad", metadata={"raw": f"key={KEY}"}),
    Fault.raw(b'{"error":{"code":400,"message":"bad ' + ESCAPED_KEY + b'"}}', status=400),
    Fault.raw(b'{"error":{"code":400,"message":"bad","metadata":{"raw":"' + ESCAPED_KEY
              + b'"}}}', status=400),
    Fault.raw(b"oops " + KEY.encode(), status=400, content_type="text/plain"),
    Fault.stream_error(after_tokens=1, message=f"boom {KEY}"),
    stream_reply(hostile_stream(b"your key is " + ESCAPED_KEY + b" and " + KEY.encode())),
    # a header the error is read from: the generation id an exception carries
    Fault.raw(b'{"error":{"code":400,"message":"bad"}}', status=400, headers={"X-Generation-Id": KEY}),
]
ECHO_IDS = ["message", "metadata", "escaped-message", "escaped-metadata", "not-json", "mid-stream",
            "streamed-content", "generation-id-header"]


def shown(value: Any) -> str:
    """Everything a caller could print of a result or an exception."""
    out = [str(value), repr(value)]
    for attr in ("body", "response", "args", "__dict__"):
        out.append(repr(getattr(value, attr, None)))
    return "\n".join(out)


def leaks(text: str) -> bool:
    return KEY in text or KEY[12:] in text or ESCAPED_KEY.decode() in text


def outcome(run: Any) -> str:
    try:
        return shown(run())
    except orroute.OrRouteError as e:
        return shown(e)


@pytest.mark.parametrize("fault", ECHOES, ids=ECHO_IDS)
def test_an_echoed_key_never_reaches_a_manager_caller(fake, tmp_path, fault):
    """Not in the exception (message, body, metadata), the result, the streamed chunks, sync or
    async, plain or escaped with JSON \\u escapes."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    task = Task(messages="hi", max_tokens=5)

    async def astream() -> list[Any]:
        return [c async for c in m.stream_task(task, model=MODEL)]

    runs = [lambda: m.execute_task_sync(task, model=MODEL),
            lambda: list(m.stream_task_sync(task, model=MODEL)),
            lambda: asyncio.run(astream())]
    for run in runs:
        fake.fail("*", fault)
        assert not leaks(outcome(run))
    ledger = (tmp_path / "ledger.sqlite3").read_bytes()
    assert KEY.encode() not in ledger and KEY[12:].encode() not in ledger


@pytest.mark.parametrize("fault", ECHOES, ids=ECHO_IDS)
def test_an_echoed_key_never_reaches_a_client_caller(fake, fault):
    c = client(fake)
    msgs = [{"role": "user", "content": "hi"}]

    def stream() -> list[Any]:
        with c.chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
            return list(s)

    for run in (lambda: c.chat.completions.create(model=MODEL, messages=msgs), stream):
        fake.fail("*", fault)
        assert not leaks(outcome(run))


@pytest.mark.parametrize("length", [2**31, 2**63 - 1], ids=["2GiB", "int64-max"])
def test_a_content_length_that_lies_ends_the_call_not_the_process(fake, tmp_path, length):
    """A head claiming gigabytes and a short body that then closes: an error, promptly, without
    an allocation of the claimed size."""
    fake.fail("*", Fault.raw(completion(b"short"), content_length=length))
    with pytest.raises(orroute.APIError):
        client(fake).chat.completions.create(model=MODEL,
                                             messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(orroute.OrRouteError):
        manager(fake, tmp_path, max_retries=0, fallbacks=[]).execute_task_sync(
            Task(messages="hi", max_tokens=5), model=MODEL)


# --- a direct provider (Anthropic's wire format) through the manager -----------------------------

ANT_KEY = "sk-ant-api03-hostile-0123456789abcdef"
CLAUDE = "anthropic/claude-sonnet-4.5"


def anthropic_manager(tmp_path: Path, orf: FakeOpenRouter, ant: Any) -> orroute.AIModelManager:
    from orroute.provider_config import parse_providers

    env = {"OPENROUTER_API_KEY": KEY, "ANTHROPIC_API_KEY": ANT_KEY,
           "OPENROUTER_BASE_URL": orf.base_url, "ANTHROPIC_BASE_URL": ant.base_url}
    providers = parse_providers({"providers": {"anthropic": {"priority": 0},
                                               "openrouter": {"priority": 1}}}, env)
    return orroute.AIModelManager(api_key=KEY, base_url=orf.base_url, fallbacks=[],
                                  ledger=str(tmp_path / "ledger.sqlite3"), providers=providers,
                                  refresh_catalog=False, max_retries=0)


ANT_MESSAGE = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
               b'"content":[{"type":"text","text":"bad \xff byte"}],"stop_reason":"end_turn",'
               b'"usage":{"input_tokens":8,"output_tokens":3}}')


def ant_stream(text: bytes) -> bytes:
    def ev(name: bytes, data: bytes) -> bytes:
        return b"event: " + name + b"\ndata: " + data + b"\n\n"

    return (ev(b"message_start", b'{"type":"message_start","message":{"id":"msg_1","type":"message",'
               b'"role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":'
               b'{"input_tokens":8,"output_tokens":1}}}')
            + ev(b"content_block_start", b'{"type":"content_block_start","index":0,'
                 b'"content_block":{"type":"text","text":""}}')
            + ev(b"content_block_delta", b'{"type":"content_block_delta","index":0,'
                 b'"delta":{"type":"text_delta","text":"' + text + b'"}}')
            + ev(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
            + ev(b"message_delta", b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},'
                 b'"usage":{"output_tokens":3}}')
            + ev(b"message_stop", b'{"type":"message_stop"}'))


def test_anthropic_replies_with_invalid_utf8_and_echoed_keys(tmp_path):
    from orroute.testing import FakeAnthropic

    with FakeOpenRouter(api_key=KEY) as orf, FakeAnthropic(api_key=ANT_KEY) as ant:
        m = anthropic_manager(tmp_path, orf, ant)
        task = Task(messages="hi", max_tokens=20)
        ant.fail("*", Fault.raw(ANT_MESSAGE))
        r = m.execute_task_sync(task, model=CLAUDE)
        assert r.content == "bad \ufffd byte" and r.provider == "anthropic"
        ant.fail("*", stream_reply(ant_stream(b"bad \xff byte")))
        chunks = list(m.stream_task_sync(task, model=CLAUDE))
        assert "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c.get("choices")) == "bad \ufffd byte"
        escaped = "".join(f"\\u{ord(c):04x}" for c in ANT_KEY).encode()
        plain = b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}'
        for body, headers in ((b'{"type":"error","error":{"type":"invalid_request_error","message":"k '
                               + ANT_KEY.encode() + b'"}}', {}),
                              (b'{"type":"error","error":{"type":"invalid_request_error","message":"k '
                               + escaped + b'"}}', {}),
                              (plain, {"request-id": ANT_KEY})):  # the error's generation id
            ant.fail("*", Fault.raw(body, status=400, headers=headers))
            orf.fail("*", Fault.server_error(503))  # the fallback fails too: the error is shown
            text = outcome(lambda: m.execute_task_sync(task, model=CLAUDE))
            assert ANT_KEY not in text and ANT_KEY[14:] not in text and escaped.decode() not in text


def ant_message(input_tokens: int, output_tokens: int) -> bytes:
    return (b'{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
            b'"content":[{"type":"text","text":"a fine answer"}],"stop_reason":"end_turn",'
            b'"usage":{"input_tokens":%d,"output_tokens":%d}}' % (input_tokens, output_tokens))


@pytest.mark.parametrize(("input_tokens", "output_tokens"),
                         [(1, 1), (0, 0), (500, 1)], ids=["one-token", "zero", "a-fifth"])
def test_a_direct_providers_usage_is_checked_against_our_count(tmp_path, input_tokens,
                                                              output_tokens):
    """A provider called directly (Anthropic) was charged at its prices for whatever token counts
    it reported: 1 token for a 2,000-token prompt booked ~$0.00002 instead of ~$0.007 (0 tokens,
    nothing). Its counts are now held to the rules the OpenRouter path keeps (docs/cost.md rule
    3): under a quarter of our count, our count stands in for them."""
    from orroute.testing import FakeAnthropic

    with FakeOpenRouter(api_key=KEY) as orf, FakeAnthropic(api_key=ANT_KEY) as ant:
        m = anthropic_manager(tmp_path, orf, ant)
        task = Task(messages="word " * 2000, max_tokens=20)
        plan = m._door.plan(m._engine_task(task, model=CLAUDE))
        ant.fail("*", Fault.raw(ant_message(input_tokens, output_tokens)))
        r = m.execute_task_sync(task, model=CLAUDE)
    assert r.provider == "anthropic"
    prompt_price = Decimal("0.000003")  # claude-sonnet-4-5 at Anthropic: $3/M input tokens
    assert r.cost >= plan["prompt_tokens"] * prompt_price / 2
    assert r.cost <= Decimal(plan["estimate"])
    assert r.cost_source.startswith("tokenizer")


def test_async_client_twin_invalid_utf8_error_body_and_echoed_key(fake):
    """The async client reads through the same core: the same three hostile replies."""
    msgs = [{"role": "user", "content": "hi"}]

    async def run() -> tuple[str, str, str]:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        body = hostile_stream("caf\xe9 ".encode() + b"\xff")
        cut = body.index(b"\xc3") + 1
        fake.fail(MODEL, stream_reply(body[:cut], body[cut:]))
        s = await c.chat.completions.create(model=MODEL, messages=msgs, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
        fake.fail(MODEL, Fault.raw(b"\xff\xfe upstream \xc3 broke", status=500))
        try:
            await c.chat.completions.create(model=MODEL, messages=msgs)
            bad = "no error"
        except orroute.InternalServerError as e:
            bad = shown(e)
        fake.fail(MODEL, Fault.stream_error(after_tokens=1, message=f"boom {KEY}"))
        try:
            s = await c.chat.completions.create(model=MODEL, messages=msgs, stream=True)
            echoed = repr([ch async for ch in s])
        except orroute.OrRouteError as e:
            echoed = shown(e)
        return text, bad, echoed

    text, bad, echoed = asyncio.run(run())
    assert text == "café \ufffd"
    assert "upstream" in bad and "\ufffd" in bad
    assert "boom" in echoed and not leaks(echoed)


def test_names_a_reply_gives_are_bounded(fake, tmp_path):
    """The served model and provider a reply names go to the ledger, the breakers and the result:
    an upstream naming a 100 kB provider gets them cut to 256 bytes, so neither a ledger row nor
    a breaker key grows with what the upstream sends."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    for i in range(3):
        fake.fail("*", Fault.raw(completion(b"fine", model=b"test/a" + b"x" * 100_000,
                                            provider=b"%d" % i + b"P" * 100_000)))
        r = m.execute_task_sync(Task(messages="hi", max_tokens=5), model=MODEL)
        assert r.content == "fine"
        assert len(r.provider or "") <= 256
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert len(rows) == 3
    assert all(len(row.model) <= 256 and len(row.provider or "") <= 256 for row in rows)


def test_tool_call_arguments_and_ids_with_invalid_utf8_stream_and_settle(fake, tmp_path):
    """Bytes that are not UTF-8 inside a streamed tool call's id, name and arguments, split
    between reads: the chunks carry U+FFFD and the run settles as the paid call it was."""
    m = manager(fake, tmp_path)
    start = chunk(b'{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_\xff",'
                  b'"type":"function","function":{"name":"get_\xfe","arguments":""}}]}')
    args = chunk(b'{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":\\"Z\xc3\xbcr'
                 b'\xff\\"}"}}]}')
    body = sse(start, args, chunk(b"{}", finish=b'"tool_calls"'), USAGE, b"[DONE]")
    cut = body.index(b"\xc3\xbc") + 1
    fake.fail(MODEL, stream_reply(body[:cut], body[cut:]))
    items = list(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL))
    deltas = [c["choices"][0]["delta"] for c in items if c["choices"]]
    calls = [tc for d in deltas for tc in d.get("tool_calls") or []]
    assert calls[0]["id"] == "call_\ufffd" and calls[0]["function"]["name"] == "get_\ufffd"
    assert "".join(tc["function"].get("arguments") or "" for tc in calls) == '{"city":"Zür\ufffd"}'
    (row,) = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert row.outcome == "ok" and row.cost > 0  # settled as the paid call it was


# --- keys split over stream events --------------------------------------------------------------

MASKED = KEY[:9] + "..." + KEY[-4:]  # how a scrubbed key reads


def split_delta(field: str, part: bytes, first: bool) -> bytes:
    """A delta carrying ``part`` as its content, or as its tool call's arguments or name (a
    consumer joins a streamed name as it joins the arguments)."""
    if field == "content":
        return b'{"role":"assistant","content":"' + part + b'"}'
    opening = b'"id":"call_1","type":"function",' if first else b""
    if field == "name":
        return b'{"tool_calls":[{"index":0,' + opening + b'"function":{"name":"' + part + b'"}}]}'
    name = b'"name":"f",' if first else b""
    return (b'{"tool_calls":[{"index":0,' + opening + b'"function":{' + name + b'"arguments":"'
            + part + b'"}}]}')


def split_key_stream(*parts: bytes, field: str = "content") -> tuple[Fault, str]:
    """A stream whose ``field`` (content, or a tool call's arguments) comes in ``parts``
    (together: text around the key), sent in two reads cut inside the second event; and the text
    the caller must see."""
    events = [chunk(split_delta(field, p, i == 0)) for i, p in enumerate(parts)]
    finish = b'"stop"' if field == "content" else b'"tool_calls"'
    body = sse(*events, chunk(b"{}", finish=finish), USAGE, b"[DONE]")
    cut = body.index(events[1]) + len(events[1]) // 2
    plain = json.loads(b'"' + b"".join(parts) + b'"')
    return stream_reply(body[:cut], body[cut:]), plain.replace(KEY, MASKED)


K = KEY.encode()
SPLITS = [
    (b"your key is " + K[:1], K[1:] + b" ok"),
    (b"your key is " + K[:9], K[9:] + b" ok"),
    (b"your key is " + K[:30], K[30:] + b" ok"),
    (b"your key is " + K[:-1], K[-1:] + b" ok"),
    (b"your key is " + K[:5], K[5:20], K[20:] + b" ok"),  # over three events
    (b"your key is " + ESCAPED_KEY[:60], ESCAPED_KEY[60:] + b" ok"),  # spelled with escapes
    (b"sk and sk-or-v1-", b"hostile is not it " + K[:12], K[12:]),  # false starts, key at the end
    (b"no key, just " + K[:12], b" a prefix"),  # held back, then released as it was
]
SPLIT_IDS = ["1", "prefix", "middle", "last-char", "three-events", "escaped", "false-starts",
             "prefix-only"]


FIELDS = ["content", "arguments", "name"]


def text_of(chunks: list[Any], field: str = "content") -> str:
    """What a consumer joins of ``field`` (content, or tool-call arguments or names) over
    ``chunks``, dicts or the client's typed chunks."""
    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    def of_delta(delta: Any) -> str:
        if field == "content":
            return get(delta, "content") or ""
        return "".join(get(get(tc, "function") or {}, field) or ""
                       for tc in get(delta, "tool_calls") or [])

    return "".join(of_delta(get(ch, "delta") or {}) for c in chunks for ch in get(c, "choices") or [])


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("parts", SPLITS, ids=SPLIT_IDS)
def test_a_key_split_over_events_never_reaches_a_client_caller(fake, parts, field):
    fault, expected = split_key_stream(*parts, field=field)
    msgs = [{"role": "user", "content": "hi"}]
    fake.fail(MODEL, fault)
    with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        chunks = list(s)
        final = s.get_final_completion() if hasattr(s, "get_final_completion") else None
    assert text_of(chunks, field) == expected
    assert not leaks(repr(final))

    async def run() -> list[Any]:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        fake.fail(MODEL, fault)
        s = await c.chat.completions.create(model=MODEL, messages=msgs, stream=True)
        return [ch async for ch in s]

    assert text_of(asyncio.run(run()), field) == expected


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("parts", SPLITS, ids=SPLIT_IDS)
def test_a_key_split_over_events_never_reaches_a_manager_caller(fake, tmp_path, parts, field):
    fault, expected = split_key_stream(*parts, field=field)
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    task = Task(messages="hi", max_tokens=50)

    async def astream() -> list[Any]:
        return [c async for c in m.stream_task(task, model=MODEL)]

    for run in (lambda: list(m.stream_task_sync(task, model=MODEL)), lambda: asyncio.run(astream())):
        fake.fail("*", fault)
        assert text_of(run(), field) == expected


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("parts", SPLITS, ids=SPLIT_IDS)
def test_a_key_split_over_events_never_reaches_a_dropin_caller(fake, tmp_path, parts, field):
    fault, expected = split_key_stream(*parts, field=field)
    oc = orroute.openai_client(manager(fake, tmp_path, max_retries=0, fallbacks=[]))
    fake.fail(MODEL, fault)
    s = oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                   stream=True, max_tokens=50)
    assert text_of(list(s), field) == expected


def test_a_key_split_over_events_never_reaches_a_gateway_client(fake, tmp_path):
    import http.client

    from orroute.gateway import Gateway, GatewaySettings

    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings) as gw:
        key = gw.keys.create("p")[0]
        for parts, field in [(parts, field) for field in FIELDS for parts in SPLITS]:
            fault, expected = split_key_stream(*parts, field=field)
            fake.fail(MODEL, fault)
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
            conn.request("POST", "/v1/chat/completions", body=json.dumps(
                {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
                 "max_tokens": 50}), headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
            data = conn.getresponse().read().decode()
            conn.close()
            chunks = [json.loads(line[6:]) for line in data.splitlines() if line.startswith("data: {")]
            assert text_of(chunks, field) == expected, (parts, field)


def error_event(message: bytes) -> bytes:
    """A mid-stream error event, as OpenRouter sends one."""
    return (b'{"id":"gen-1","model":"test/a","object":"chat.completion.chunk","created":1,'
            b'"error":{"code":502,"message":"' + message + b'"},"choices":[{"index":0,'
            b'"delta":{"content":""},"finish_reason":"error"}]}')


FAILED_MIDWAY = [
    sse(chunk(b'{"role":"assistant","content":"your key is ' + K[:30] + b'"}'),
        error_event(b"boom " + K[30:])),
    sse(chunk(b'{"role":"assistant","content":"your key is ' + K[:30] + b'"}'),
        b"not json " + K[30:]),
]


@pytest.mark.parametrize("body", FAILED_MIDWAY, ids=["error-event", "not-json"])
def test_a_stream_failing_midway_never_releases_the_start_of_a_key_it_held(fake, tmp_path, body):
    """The start of a key held back at the end of an event is dropped when the stream fails
    instead of ending: the error that follows may carry the rest of the key (client sync and
    async, manager)."""
    msgs = [{"role": "user", "content": "hi"}]
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])

    def seen(chunks: Iterator[Any]) -> str:
        got: list[Any] = []
        try:
            got.extend(chunks)
        except orroute.OrRouteError as e:
            return text_of(got) + "\n" + shown(e)
        return text_of(got)

    def from_client() -> Iterator[Any]:
        with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
            yield from s

    async def from_async_client() -> str:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        got: list[Any] = []
        try:
            async for ch in await c.chat.completions.create(model=MODEL, messages=msgs, stream=True):
                got.append(ch)
        except orroute.OrRouteError as e:
            return text_of(got) + "\n" + shown(e)
        return text_of(got)

    runs = [lambda: seen(from_client()), lambda: asyncio.run(from_async_client()),
            lambda: seen(iter(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL)))]
    for run in runs:
        fake.fail("*", stream_reply(body))
        text = run()
        assert "your key is" in text  # what came before the start of the key was delivered
        assert K[:30].decode() not in text and K[9:30].decode() not in text


def anthropic_event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def provider_stream_of(reply: Fault) -> tuple[int, list[Any]]:
    """The private per-provider client (ProviderStream) reading ``reply`` from a FakeAnthropic:
    how the stream ended (2: its end, else an error) and the chunks it gave before."""
    from orroute.testing import FakeAnthropic

    with FakeAnthropic(api_key=ANT_KEY) as ant:
        ant.fail("*", reply)
        stream = provider("anthropic", ant.base_url, keys=[ANT_KEY]).stream(json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}), "claude-sonnet-4-5")
        chunks = []
        while (item := stream.next(10.0))[0] == 0:
            chunks.append(item[1])
    return item[0], chunks


def test_a_key_split_over_anthropic_events_never_reaches_a_provider_stream_caller():
    """The private per-provider client (ProviderStream): a key split over two text deltas, and
    over two tool-input deltas, of an Anthropic stream is masked in the chunks it gives."""

    ak = ANT_KEY.encode()

    def delta(index: int, kind: bytes, field: bytes, text: bytes) -> bytes:
        return anthropic_event(b"content_block_delta", b'{"type":"content_block_delta","index":%d,'
                               b'"delta":{"type":"' % index + kind + b'","' + field + b'":"'
                               + text + b'"}}')

    body = (anthropic_event(b"message_start", b'{"type":"message_start","message":{"id":"msg_1",'
                            b'"type":"message","role":"assistant","model":"claude-sonnet-4-5",'
                            b'"content":[],"usage":{"input_tokens":8,"output_tokens":1}}}')
            + anthropic_event(b"content_block_start", b'{"type":"content_block_start","index":0,'
                              b'"content_block":{"type":"text","text":""}}')
            + delta(0, b"text_delta", b"text", b"your key is " + ak[:10])
            + delta(0, b"text_delta", b"text", ak[10:] + b" ok")
            + anthropic_event(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
            + anthropic_event(b"content_block_start", b'{"type":"content_block_start","index":1,'
                              b'"content_block":{"type":"tool_use","id":"toolu_1","name":"f",'
                              b'"input":{}}}')
            + delta(1, b"input_json_delta", b"partial_json", b'{\\"k\\":\\"' + ak[:20])
            + delta(1, b"input_json_delta", b"partial_json", ak[20:] + b'\\"}')
            + anthropic_event(b"content_block_stop", b'{"type":"content_block_stop","index":1}')
            + anthropic_event(b"message_delta", b'{"type":"message_delta","delta":{"stop_reason":'
                              b'"tool_use"},"usage":{"output_tokens":9}}')
            + anthropic_event(b"message_stop", b'{"type":"message_stop"}'))
    masked = ANT_KEY[:3] + "..." + ANT_KEY[-4:]
    cut = body.index(ak[10:])  # the second text delta arrives in a read of its own
    end, chunks = provider_stream_of(stream_reply(body[:cut], body[cut:]))
    assert end == 2  # the end, not an error
    assert text_of(chunks) == f"your key is {masked} ok"
    assert text_of(chunks, "arguments") == '{"k":"' + masked + '"}'
    assert ANT_KEY[3:] not in json.dumps(chunks)


def test_a_caller_naming_a_new_model_per_call_keeps_the_engine_bounded(fake, tmp_path):
    """With unknown models priced (``unpriced_model_price``), each made-up name reaches the engine:
    past Metrics' cap (512) they share the ``(other)`` figures instead of adding ~30 kB each, and
    names built to break a log line or a text format come back only as data."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[], unpriced_model_price=1)
    hostile = ['x/a"} 1\ninjected{model="b', "x/\\\r\n# HELP injected", "<script>x</script>"]
    names = hostile + [f"made-up/model-{i}" for i in range(600)]
    for name in names:
        try:
            m.execute_task_sync(Task(messages="hi", max_tokens=4), model=name)
        except orroute.OrRouteError:
            pass
    rows = m.metrics()
    assert len(rows) == 512 + 1  # Metrics::kMaxModels names of their own and "(other)"
    assert rows["(other)"]["calls"] == len(names) - 512
    assert all(rows[name]["calls"] == 1 for name in hostile)  # the names as they were, as data


# --- a key split over a tool call's id and its name -----------------------------------------------


def tool_call(id: bytes, name: bytes) -> bytes:
    """A reply message's tool call named ``name`` with id ``id`` (an upstream may put any text in both)."""
    return (b',"tool_calls":[{"id":"' + id + b'","type":"function","function":{"name":"' + name
            + b'","arguments":"{}"}}]')


def id_and_name(obj: Any) -> str:
    """A tool call's id and name, as a log line or a consumer showing the call puts them side by side
    (dicts or the client's typed objects; a streamed call's id may come in any of its deltas)."""
    def get(o: Any, name: str) -> Any:
        return o.get(name) if isinstance(o, dict) else getattr(o, name, None)

    return (get(obj, "id") or "") + (get(get(obj, "function") or {}, "name") or "")


# (id, name, what a consumer must see side by side)
ID_NAME = [(b"call_" + K[:p], K[p:] + b"_fn", "call_" + MASKED + "_fn") for p in (1, 9, 30, len(K) - 1)]
ID_NAME_IDS = ["1", "prefix", "middle", "last-char"]
INNOCENT = [(b"call_s", b"k-means"), (b"call_" + K[:12], b"get_weather")]  # a key's start, no key


@pytest.mark.parametrize(("id", "name", "expected"), ID_NAME, ids=ID_NAME_IDS)
def test_a_key_split_over_a_tool_calls_id_and_name_never_reaches_a_caller(fake, tmp_path, id, name,
                                                                          expected):
    """A reply whose tool call's id ends with the key's start and whose name goes on with its rest:
    the client and the manager (plain and streamed, the name in the id's event or over several)
    show the call with the key masked."""
    msgs = [{"role": "user", "content": "hi"}]
    fake.fail(MODEL, Fault.raw(completion(b"", extra_message=tool_call(id, name))))
    reply = client(fake).chat.completions.create(model=MODEL, messages=msgs)
    assert id_and_name(reply.choices[0].message.tool_calls[0]) == expected
    assert not leaks(repr(reply))
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail(MODEL, Fault.raw(completion(b"", extra_message=tool_call(id, name))))
    assert not leaks(shown(m.execute_task_sync(Task(messages="hi", max_tokens=50), model=MODEL)))
    cut = len(name) // 2
    for names in ([name], [name[:cut], name[cut:]]):  # the name whole with the id, or over two events
        events = [chunk(b'{"tool_calls":[{"index":0,"id":"' + id + b'","type":"function","function":'
                        b'{"name":"' + names[0] + b'","arguments":""}}]}')]
        events += [chunk(b'{"tool_calls":[{"index":0,"function":{"name":"' + n + b'"}}]}')
                   for n in names[1:]]
        events += [chunk(b'{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}'),
                   chunk(b"{}", finish=b'"tool_calls"'), USAGE, b"[DONE]"]
        fake.fail(MODEL, stream_reply(sse(*events)))
        with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
            calls = [tc for c in s for ch in c.choices for tc in ch.delta.tool_calls or []]
        assert "".join(id_and_name(tc) for tc in calls) == expected, names
        fake.fail(MODEL, stream_reply(sse(*events)))
        items = list(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL))
        calls = [tc for c in items for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
        assert "".join(id_and_name(tc) for tc in calls) == expected, names


@pytest.mark.parametrize(("id", "name"), INNOCENT, ids=["one-char", "prefix"])
def test_a_tool_calls_id_ending_like_a_key_and_its_name_come_through_whole(fake, id, name):
    msgs = [{"role": "user", "content": "hi"}]
    fake.fail(MODEL, Fault.raw(completion(b"", extra_message=tool_call(id, name))))
    call = client(fake).chat.completions.create(model=MODEL, messages=msgs).choices[0].message.tool_calls[0]
    assert (call.id, call.function.name) == (id.decode(), name.decode())
    events = [chunk(b'{"tool_calls":[{"index":0,"id":"' + id + b'","type":"function","function":'
                    b'{"name":"' + name[:2] + b'","arguments":""}}]}'),
              chunk(b'{"tool_calls":[{"index":0,"function":{"name":"' + name[2:] + b'"}}]}'),
              chunk(b"{}", finish=b'"tool_calls"'), USAGE, b"[DONE]"]
    fake.fail(MODEL, stream_reply(sse(*events)))
    with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        calls = [tc for c in s for ch in c.choices for tc in ch.delta.tool_calls or []]
        final = s.get_final_completion().choices[0].message.tool_calls[0]
    assert "".join(tc.id or "" for tc in calls) == id.decode()
    assert "".join(tc.function.name or "" for tc in calls if tc.function) == name.decode()
    assert (final.id, final.function.name) == (id.decode(), name.decode())


# --- events after data: [DONE] ----------------------------------------------------------------------

LYING_USAGE = USAGE.replace(b'"completion_tokens":2,"total_tokens":10', b'"completion_tokens":9999,"total_tokens":10007')
AFTER_DONE = stream_reply(sse(chunk(b'{"role":"assistant","content":"hi"}'), chunk(b"{}", finish=b'"stop"'),
                              USAGE, b"[DONE]", chunk(b'{"content":" and more"}'), LYING_USAGE,
                              chunk(b'{"content":" for ever"}')))


def test_events_after_done_are_no_part_of_a_client_answer(fake):
    """``data: [DONE]`` ends the stream: content and usage an upstream sends after it are ignored
    (the transfer is closed there) and the stream ends as it should, sync and async."""
    msgs = [{"role": "user", "content": "hi"}]
    fake.fail(MODEL, AFTER_DONE)
    with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        chunks = list(s)
        final = s.get_final_completion()
    assert text_of(chunks) == "hi" and final.choices[0].message.content == "hi"
    assert final.usage is not None and final.usage.completion_tokens == 2

    async def run() -> list[Any]:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        return [ch async for ch in await c.chat.completions.create(model=MODEL, messages=msgs, stream=True)]

    assert text_of(asyncio.run(run())) == "hi"


def manager_stream_texts(m: orroute.AIModelManager, model: str) -> list[str]:
    """The text of one task streamed from ``model`` by ``m``, sync then async."""
    task = Task(messages="hi", max_tokens=50)

    async def run() -> list[Any]:
        return [c async for c in m.stream_task(task, model=model)]

    return [text_of(list(m.stream_task_sync(task, model=model))), text_of(asyncio.run(run()))]


def test_events_after_done_are_no_part_of_a_manager_answer_nor_its_cost(fake, tmp_path):
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail(MODEL, AFTER_DONE)
    assert manager_stream_texts(m, MODEL) == ["hi", "hi"]
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert [(r.outcome, r.completion_tokens) for r in rows] == [("ok", 2), ("ok", 2)]


DEAR = {"id": "test/dear", "context_length": 100_000, "pricing": {"prompt": "0.01", "completion": "0.02"}}
COST_17 = b"0.12345678901234567"  # a double reads it as 0.12345678901234568


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "plain, metered"])
def test_a_cost_of_17_digits_is_booked_as_the_upstream_wrote_it(tmp_path, streamed):
    """The upstream's usage.cost is booked from its own digits, streamed or not: a stream's last
    usage went through a double (0.12345678901234568 booked), and a plain reply metered by its
    text (a budget's) is read in one pass now, the cost's digits with it."""
    usage = (b'"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"cost":'
             + COST_17 + b"}")
    model = DEAR["id"].encode()
    if streamed:
        fault = stream_reply(sse(chunk(b'{"role":"assistant","content":"hi"}', model=model),
                                 chunk(b"{}", finish=b'"stop"', model=model),
                                 b'{"id":"gen-1","model":"test/dear","choices":[],' + usage + b"}",
                                 b"[DONE]"))
    else:
        fault = Fault.raw(completion(b"hi", model=model)[:-len(b'"usage":{"prompt_tokens":8,'
                                                             b'"completion_tokens":2,"total_tokens"'
                                                             b':10,"cost":0.000012}}')] + usage + b"}")
    with FakeOpenRouter(models=[DEAR]) as dear:
        dear.fail(DEAR["id"], fault)
        m = manager(dear, tmp_path, max_retries=0, fallbacks=[], budget=100)
        if streamed:
            assert manager_stream_texts(m, DEAR["id"]) == ["hi", "hi"]
        else:
            task = Task(messages="hi", max_tokens=50)
            assert m.execute_task_sync(task, model=DEAR["id"]).content == "hi"
            assert asyncio.run(m.execute_task(task, model=DEAR["id"])).content == "hi"
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert [(r.cost, r.cost_source) for r in rows] == [(Decimal(COST_17.decode()), "upstream")] * 2


# Anthropic's end of stream is message_stop: what comes after it is treated as what comes after
# [DONE] (ignored, the transfer closed there), not as a failed call.
AFTER_MESSAGE_STOP = (ant_stream(b"hi")
                      + anthropic_event(b"content_block_delta", b'{"type":"content_block_delta",'
                                        b'"index":0,"delta":{"type":"text_delta","text":" and more"}}')
                      + anthropic_event(b"message_delta", b'{"type":"message_delta","delta":'
                                        b'{"stop_reason":"end_turn"},"usage":{"output_tokens":9999}}'))


def test_events_after_message_stop_are_no_part_of_a_manager_answer_nor_its_cost(tmp_path):
    from orroute.testing import FakeAnthropic

    with FakeOpenRouter(api_key=KEY) as orf, FakeAnthropic(api_key=ANT_KEY) as ant:
        m = anthropic_manager(tmp_path, orf, ant)
        orf.fail("*", Fault.server_error(503))  # no fallback could hide an Anthropic failure
        ant.fail("*", stream_reply(AFTER_MESSAGE_STOP))
        assert manager_stream_texts(m, CLAUDE) == ["hi", "hi"]
    rows = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert [(r.outcome, r.completion_tokens, r.tags["provider"]) for r in rows] == [
        ("ok", 3, "anthropic")] * 2


def test_events_after_message_stop_end_a_provider_stream_as_it_should():
    end, chunks = provider_stream_of(stream_reply(AFTER_MESSAGE_STOP))
    assert end == 2  # the end, not an error
    assert text_of(chunks) == "hi"
    assert [c["usage"]["completion_tokens"] for c in chunks if c.get("usage")] == [3]


# A stream the upstream ends (a clean end of a close-delimited body, a proxy closing its side)
# inside an event of the answer was cut: the consumer is told, as for a reset connection, instead
# of being handed the start of the answer as if it were all of it. A server that leaves out the
# blank line after its last `data: [DONE]` ended well.
CUT_INSIDE_AN_EVENT = {
    "inside_data": sse(chunk(b'{"role":"assistant","content":"Hel"}')) + b'data: {"id":"gen-1","choi',
    "before_blank_line": sse(chunk(b'{"role":"assistant","content":"Hel"}'))
    + b"data: " + chunk(b'{"content":"lo"}') + b"\n",
    "second_data_line": sse(chunk(b'{"role":"assistant","content":"Hel"}')) + b"data: {\ndata: ",
}


@pytest.mark.parametrize("body", CUT_INSIDE_AN_EVENT.values(), ids=CUT_INSIDE_AN_EVENT.keys())
def test_a_client_stream_cut_inside_an_event_is_a_connection_error(fake, body):
    msgs = [{"role": "user", "content": "hi"}]
    fake.fail(MODEL, stream_reply(body))
    got: list[Any] = []
    with (pytest.raises(orroute.APIConnectionError, match="inside an event"),
          client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s):
        got.extend(s)
    assert text_of(got) == "Hel"

    async def run() -> None:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        async for ch in await c.chat.completions.create(model=MODEL, messages=msgs, stream=True):
            got.append(ch)

    got.clear()
    fake.fail(MODEL, stream_reply(body))
    with pytest.raises(orroute.APIConnectionError, match="inside an event"):
        asyncio.run(run())
    assert text_of(got) == "Hel"


@pytest.mark.parametrize("body", CUT_INSIDE_AN_EVENT.values(), ids=CUT_INSIDE_AN_EVENT.keys())
def test_a_manager_stream_cut_inside_an_event_is_an_error_not_an_answer(fake, tmp_path, body):
    """The manager (and the gateway, which relays its stream and ends it with [DONE]) reads
    through the engine: a cut answer is booked as what was generated, outcome error, and the
    consumer is told, instead of an "ok" answer missing its end."""
    m = manager(fake, tmp_path, max_retries=0, fallbacks=[])
    fake.fail(MODEL, stream_reply(body))
    with pytest.raises(orroute.APIError):
        list(m.stream_task_sync(Task(messages="hi", max_tokens=50), model=MODEL))
    [row] = orroute.CostTracker(tmp_path / "ledger.sqlite3").usage_history()
    assert row.outcome == "error" and row.cost > 0
    assert m.reserved() == (0, 0)


@pytest.mark.parametrize("tail", [b"data: [DONE]\n", b"data: [DONE]", b": keep-alive"],
                         ids=["done_without_blank_line", "done_without_line_end", "comment"])
def test_a_client_stream_ending_without_a_last_blank_line_after_done_ends_well(fake, tail):
    msgs = [{"role": "user", "content": "hi"}]
    body = sse(chunk(b'{"role":"assistant","content":"hi"}'), chunk(b"{}", finish=b'"stop"'), USAGE)
    fake.fail(MODEL, stream_reply(body + tail))
    with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        assert text_of(list(s)) == "hi"
        assert s.usage is not None and s.usage.completion_tokens == 2


@pytest.mark.parametrize("header", [("X-Echo", f"key={KEY}"), (KEY, "named by the key")],
                         ids=["value", "name"])
def test_an_echoed_key_never_reaches_the_headers_a_raw_response_shows(fake, header):
    """``with_raw_response`` shows the reply's header fields: one holding the key (in its value
    or as its name) is scrubbed like the body, plain and streamed, sync and async."""
    msgs = [{"role": "user", "content": "hi"}]
    c = client(fake)
    shown_headers: list[str] = []
    fake.fail(MODEL, Fault.raw(completion(b"fine"), headers=dict([header])))
    shown_headers.append(repr(dict(c.chat.completions.with_raw_response.create(
        model=MODEL, messages=msgs).headers)))
    fake.fail(MODEL, Fault.raw(hostile_stream(b"fine"), content_type="text/event-stream",
                               content_length=-1, headers=dict([header])))
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, stream=True)
    assert text_of(list(raw.parse())) == "fine"
    shown_headers.append(repr(dict(raw.headers)))  # a stream's: once its first byte arrived

    async def run() -> str:
        ac = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        return repr(dict((await ac.chat.completions.with_raw_response.create(
            model=MODEL, messages=msgs)).headers))

    fake.fail(MODEL, Fault.raw(completion(b"fine"), headers=dict([header])))
    shown_headers.append(asyncio.run(run()))
    for text in shown_headers:
        assert "x-echo" in text or "sk-or-v1-...6789" in text
        assert not leaks(text)


# Gemini's OpenAI-compatible endpoint sends each tool call of a streamed answer whole, in a delta
# without `index` (openai/openai-python#2806): each is a call of its own (a new `id`), not more of
# the first one (names and arguments run together: "globglob", '{"a":1}{"b":2}'). A delta without
# index and without a new id goes on with the call before it (its arguments in pieces).
def tool_delta(call: bytes) -> bytes:
    return chunk(b'{"role":"assistant","tool_calls":[' + call + b"]}")


INDEXLESS_TOOL_CALLS = sse(
    tool_delta(b'{"id":"call_1","type":"function","function":{"name":"glob","arguments":'
               b'"{\\"pattern\\":\\"**/*\\"}"}}'),
    tool_delta(b'{"id":"call_2","type":"function","function":{"name":"glob","arguments":""}}'),
    tool_delta(b'{"function":{"arguments":"{\\"path\\":"}}'),
    tool_delta(b'{"id":"call_2","function":{"arguments":"\\"wiki\\"}"}}'),
    chunk(b"{}", finish=b'"tool_calls"'), USAGE, b"[DONE]")


def test_indexless_tool_call_deltas_are_assembled_call_by_call(fake):
    msgs = [{"role": "user", "content": "hi"}]
    want = [("call_1", "glob", {"pattern": "**/*"}), ("call_2", "glob", {"path": "wiki"})]

    def calls(completion: Any) -> list[tuple[str, str, Any]]:
        return [(t.id, t.function.name, json.loads(t.function.arguments))
                for t in completion.choices[0].message.tool_calls]

    fake.fail(MODEL, stream_reply(INDEXLESS_TOOL_CALLS))
    with client(fake).chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
        list(s)
        assert calls(s.get_final_completion()) == want

    async def run() -> Any:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
        async with await c.chat.completions.create(model=MODEL, messages=msgs, stream=True) as s:
            [_ async for _ in s]
            return s.get_final_completion()

    fake.fail(MODEL, stream_reply(INDEXLESS_TOOL_CALLS))
    assert calls(asyncio.run(run())) == want

def content_parts_reply(*texts: bytes) -> bytes:
    """A plain chat completion whose message's content is text parts (an upstream may send them)."""
    parts = b",".join(b'{"type":"text","text":"' + t + b'"}' for t in texts)
    return (b'{"id":"gen-1","model":"' + MODEL.encode() + b'","provider":"P","object":"chat.completion",'
            b'"created":1,"choices":[{"index":0,"message":{"role":"assistant","content":[' + parts
            + b']},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,'
            b'"total_tokens":10,"cost":0.000012}}')


@pytest.mark.parametrize("texts", [
    (b"your key is " + K[:8], K[8:20], K[20:34], K[34:] + b" ok"),  # no half of the key whole anywhere
    (b"your key is " + K[:23], K[23:] + b" ok"),  # the halves, each whole in a part
], ids=["four-parts", "halves"])
def test_a_key_split_over_a_replys_content_parts_never_reaches_a_manager_caller(fake, tmp_path, texts):
    """The result's content is the reply's text parts joined: a key the upstream split over them is
    whole there and in a consumer's join of the reply's parts, which both show it masked (the
    parts' text, joined, as the result's content); nothing of it reaches the ledger."""
    # without a ledger the reply is read in one pass; under one (its answer metered) as a document
    unledgered = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, retry_base_delay=0.001,
                                        max_retries=0, fallbacks=[])
    for m in (unledgered, manager(fake, tmp_path, max_retries=0, fallbacks=[])):
        fake.fail(MODEL, Fault.raw(content_parts_reply(*texts)))
        r = m.execute_task_sync(Task(messages="hi", max_tokens=50), model=MODEL)
        assert r.content == "your key is " + MASKED + " ok"
        assert not leaks(shown(r))
        parts = json.loads(r.completion_json)["choices"][0]["message"]["content"]
        assert "".join(p["text"] for p in parts) == r.content
    ledger = (tmp_path / "ledger.sqlite3").read_bytes()
    assert KEY.encode() not in ledger and KEY[12:].encode() not in ledger


def test_a_key_split_over_anthropic_text_blocks_never_reaches_a_manager_caller(tmp_path):
    """Anthropic's reply is read into a chat completion whose content is its text blocks joined:
    a key the upstream split over the blocks (no half of it whole in any) is whole only there,
    after the scrub of the upstream's own body; the caller sees it masked."""
    from orroute.testing import FakeAnthropic

    k = ANT_KEY.encode()
    blocks = (b"your key is " + k[:8], k[8:16], k[16:28], k[28:] + b" ok")
    body = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
            b'"content":[' + b",".join(b'{"type":"text","text":"' + t + b'"}' for t in blocks)
            + b'],"stop_reason":"end_turn","usage":{"input_tokens":8,"output_tokens":3}}')
    with FakeOpenRouter(api_key=KEY) as orf, FakeAnthropic(api_key=ANT_KEY) as ant:
        m = anthropic_manager(tmp_path, orf, ant)
        ant.fail("*", Fault.raw(body))
        r = m.execute_task_sync(Task(messages="hi", max_tokens=20), model=CLAUDE)
        assert r.provider == "anthropic"
        text = shown(r)
        assert ANT_KEY not in text and ANT_KEY[14:] not in text
        assert r.content.startswith("your key is sk-") and r.content.endswith("...cdef ok")


def test_a_2xx_error_reply_with_escapes_is_the_same_error_metered_or_not(tmp_path):
    """A 2xx reply that is an error (its ``error`` an object) is refused by the one-pass reading
    after it decoded strings in place, and read again as a document from a fresh copy: metered
    (under a budget, the generated text read in the same pass) or not, the caller gets the same
    error with the upstream's message decoded. Reading the copy the pass had rewritten gave the
    document shifted bytes (an escape decodes shorter)."""
    body = (b'{"id":"gen-1","error":{"message":"quota \\"exceeded\\"\\u0021 try\\tlater","code":429,'
            b'"metadata":{"raw":"caf\\u00e9"}}}')
    seen = []
    with FakeOpenRouter(models=[MODEL]) as fake:
        unmetered = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url,
                                           retry_base_delay=0.001, max_retries=0, fallbacks=[])
        metered = manager(fake, tmp_path, max_retries=0, fallbacks=[], budget=100)
        fake.fail(MODEL, Fault.raw(body))
        for m in (unmetered, metered):
            with pytest.raises(orroute.OrRouteError) as caught:
                m.execute_task_sync(Task(messages="hi", max_tokens=50), model=MODEL)
            seen.append((type(caught.value), str(caught.value)))
    assert seen[0] == seen[1]
    assert 'quota "exceeded"! try\tlater' in seen[0][1]
