"""App attribution (``app_name`` -> ``X-Title`` / ``X-OpenRouter-Title``, ``app_url`` ->
``HTTP-Referer``) is settable on ``AIModelManager`` as on the client, and text that would end a
header line (CR, LF, other control characters) is refused before anything is sent: one rule, in
C++ (``check_header_value``), for the client, the engine and per-call headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

KEY = "sk-or-v1-attribution-000000000"
MSGS = [{"role": "user", "content": "hi"}]
INJECTIONS = ["evil\r\nX-Injected: 1", "evil\nX-Injected: 1", "nul\x00byte", "bell\x07"]


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as f:
        yield f


def _chats(fake: FakeOpenRouter) -> list:
    return [r for r in fake.requests if r.endpoint == "/chat/completions"]


def test_the_manager_sends_app_name_and_url_like_the_client(fake) -> None:
    kw = {"api_key": KEY, "base_url": fake.base_url, "app_name": "My App",
          "app_url": "https://my.app.example/path?q=1"}
    orroute.OpenRouter(**kw).chat.completions.create(model="openai/gpt-4o-mini", messages=MSGS)
    m = orroute.AIModelManager(**kw, fallbacks=["openai/gpt-4o-mini"])
    m.execute_task_sync(Task(messages="hi", max_tokens=5))

    async def streamed() -> None:
        async for _ in m.stream_task(Task(messages="hi", max_tokens=5)):
            pass

    import asyncio

    asyncio.run(streamed())
    seen = [(r.headers.get("x-title"), r.headers.get("x-openrouter-title"),
             r.headers.get("http-referer")) for r in _chats(fake)]
    assert seen == [("My App", "My App", "https://my.app.example/path?q=1")] * 3


def test_the_manager_sends_headers_as_the_client_does_no_accept_line_on_a_plain_call(fake) -> None:
    # the client's rule (test_client.py): no Accept line on a plain call, SSE asked by a stream;
    # the user agent too
    m = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, fallbacks=["openai/gpt-4o-mini"])
    m.execute_task_sync(Task(messages="hi", max_tokens=5))

    async def streamed() -> None:
        async for _ in m.stream_task(Task(messages="hi", max_tokens=5)):
            pass

    import asyncio

    asyncio.run(streamed())
    plain, stream = _chats(fake)
    assert "accept" not in plain.headers
    assert stream.headers["accept"] == "text/event-stream"
    for r in (plain, stream):
        assert r.headers["content-type"] == "application/json"
    # the user agent the client sends (package and Python version: what an upstream's logs and
    # OpenRouter's app analytics see), on the manager's chat calls and its catalog reads alike
    orroute.OpenRouter(api_key=KEY, base_url=fake.base_url).chat.completions.create(
        model="openai/gpt-4o-mini", messages=MSGS, max_tokens=5)
    client_agent = _chats(fake)[-1].headers["user-agent"]
    assert client_agent.startswith(f"orroute/{orroute.__version__} python/")
    assert [r.headers["user-agent"] for r in fake.requests] == [client_agent] * len(fake.requests)


def test_without_them_no_attribution_header_is_sent(fake) -> None:
    m = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url,
                               fallbacks=["openai/gpt-4o-mini"])
    m.execute_task_sync(Task(messages="hi", max_tokens=5))
    (req,) = _chats(fake)
    assert "http-referer" not in req.headers and "x-title" not in req.headers


@pytest.mark.parametrize("value", INJECTIONS, ids=repr)
@pytest.mark.parametrize("field", ["app_name", "app_url"])
def test_header_injection_is_refused_by_the_manager_and_the_client(fake, field, value) -> None:
    kw = {"api_key": KEY, "base_url": fake.base_url, field: value}
    with pytest.raises(orroute.InvalidArgumentError, match=field):
        orroute.AIModelManager(**kw)
    with pytest.raises(orroute.InvalidArgumentError, match=field):
        orroute.OpenRouter(**kw)
    assert fake.requests == []


def test_a_per_call_header_cannot_inject_one(fake) -> None:
    client = orroute.OpenRouter(api_key=KEY, base_url=fake.base_url)
    for headers in ({"X-Tag": "a\r\nX-Injected: 1"}, {"X-Bad\r\nX-Injected": "1"}):
        with pytest.raises(orroute.InvalidArgumentError):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=MSGS,
                                           extra_headers=headers)
    assert _chats(fake) == []
