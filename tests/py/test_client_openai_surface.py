"""The native client follows openai's surface where openai's callers rely on it: extra_query,
newer keywords, NOT_GIVEN, httpx.Timeout, the opt-in usage chunk, with_raw_response, parse,
the stream helper, model_dump's arguments, models.retrieve, embeddings, and errors that are
openai's error classes once openai is imported (tools/openai_surface.py counts the checks)."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest

import orroute
from orroute.testing import FakeOpenRouter, Fault

KEY = "sk-or-v1-surface-test-not-a-real-key"
MODEL = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"
HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeOpenRouter(api_key=KEY) as f:
        yield f


@pytest.fixture
def client(fake: FakeOpenRouter) -> orroute.OpenRouter:
    fake.reset()
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)


def test_extra_query_and_newer_keywords_are_sent(client: orroute.OpenRouter,
                                                 fake: FakeOpenRouter) -> None:
    client.chat.completions.create(model=MODEL, messages=HI, extra_query={"trace": "on"},
                                   prompt_cache_retention="24h", temperature=None)
    rec = fake.last_request
    assert rec.query == {"trace": "on"}
    assert rec.json["prompt_cache_retention"] == "24h"
    assert "temperature" not in rec.json


def test_openai_not_given_leaves_the_field_out(client: orroute.OpenRouter,
                                               fake: FakeOpenRouter) -> None:
    openai = pytest.importorskip("openai")
    client.chat.completions.create(model=MODEL, messages=HI, temperature=openai.NOT_GIVEN,
                                   timeout=openai.NOT_GIVEN)
    assert "temperature" not in fake.last_request.json


def test_httpx_timeout_bounds_the_wait(fake: FakeOpenRouter) -> None:
    httpx = pytest.importorskip("httpx")
    fake.reset()
    fake.set_model_profile(MODEL, latency=3.0)
    client = orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0,
                                timeout=httpx.Timeout(0.3, connect=2.0))
    with pytest.raises(orroute.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=HI)
    fake.reset()


def test_usage_chunk_only_when_asked(client: orroute.OpenRouter) -> None:
    with client.chat.completions.create(model=MODEL, messages=HI, stream=True) as s:
        chunks = list(s)
        # the README's loop: every chunk has a choice
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert text and s.usage is not None and s.usage.completion_tokens > 0  # still recorded
    asked = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True,
                                                stream_options={"include_usage": True}))
    assert asked[-1].choices == [] and asked[-1].usage.completion_tokens > 0
    assert len(asked) == len(chunks) + 1


def test_async_usage_chunk_only_when_asked(fake: FakeOpenRouter) -> None:
    async def run() -> tuple[list[Any], list[Any]]:
        client = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url)
        plain = [c async for c in await client.chat.completions.create(
            model=MODEL, messages=HI, stream=True)]
        asked = [c async for c in await client.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True})]
        return plain, asked

    plain, asked = asyncio.run(run())
    assert all(c.choices for c in plain)
    assert not asked[-1].choices and asked[-1].usage is not None


def test_with_raw_response(client: orroute.OpenRouter) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI)
    assert raw.status_code == 200
    assert raw.headers["Content-Type"].startswith("application/json")
    assert raw.parse().choices[0].message.content


def test_async_with_raw_response(fake: FakeOpenRouter) -> None:
    async def run() -> Any:
        client = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url)
        return await client.chat.completions.with_raw_response.create(model=MODEL, messages=HI)

    raw = asyncio.run(run())
    assert raw.status_code == 200 and raw.parse().choices[0].message.content


class City(pydantic.BaseModel):
    name: str
    population: int


def test_parse_validates_into_the_model(client: orroute.OpenRouter,
                                        fake: FakeOpenRouter) -> None:
    r = client.chat.completions.parse(model=MODEL, messages=HI, response_format=City)
    assert isinstance(r.choices[0].message.parsed, City)
    sent = fake.last_request.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "City"
    assert "parsed" not in r.model_dump()["choices"][0]["message"]


def test_stream_helper_events(client: orroute.OpenRouter) -> None:
    with client.chat.completions.stream(model=MODEL, messages=HI) as s:
        events = list(s)
        final = s.get_final_completion()
    deltas = [e.delta for e in events if e.type == "content.delta"]
    assert events[-1].type == "content.done" and events[-1].content == "".join(deltas)
    assert final.choices[0].message.content == "".join(deltas)


def test_model_dump_takes_pydantic_arguments(client: orroute.OpenRouter) -> None:
    r = client.chat.completions.create(model=MODEL, messages=HI)
    full = r.model_dump()
    assert r.model_dump(mode="json", by_alias=True, exclude_unset=True) == full
    assert set(r.model_dump(include={"id", "model"})) == {"id", "model"}
    assert "usage" not in r.model_dump(exclude={"usage"})
    assert r.model_dump_json(indent=2).startswith("{\n")
    copy = r.model_copy(update={"model": "other/model"})
    assert copy.model == "other/model" and r.model == MODEL
    again = type(r).model_validate(full)
    assert again == r and again is not r
    assert r.to_dict() == full and "id" in r.model_fields_set


def test_models_retrieve(client: orroute.OpenRouter) -> None:
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(orroute.NotFoundError) as info:
        client.models.retrieve("nobody/nothing")
    assert info.value.status_code == 404 and info.value.param == "model"


def test_embeddings(client: orroute.OpenRouter, fake: FakeOpenRouter) -> None:
    fake.add_model(EMBED, prompt_price="0.00000002", completion_price="0")
    r = client.embeddings.create(model=EMBED, input=["a", "b"], dimensions=8)
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 8 and r.usage.prompt_tokens > 0
    assert fake.last_request.json["dimensions"] == 8

    async def run() -> Any:
        ac = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url)
        return await ac.embeddings.create(model=EMBED, input="a", dimensions=8)

    assert asyncio.run(run()).data[0].embedding == r.data[0].embedding


def test_client_attributes(client: orroute.OpenRouter) -> None:
    assert client.api_key.endswith("-key") and "surface" not in client.api_key  # masked
    assert client.max_retries == 0
    other = client.copy(max_retries=3, default_headers={"X-A": "1"})
    assert other.max_retries == 3 and client.max_retries == 0


def test_errors_are_openai_errors_once_openai_is_imported(client: orroute.OpenRouter,
                                                          fake: FakeOpenRouter) -> None:
    openai = pytest.importorskip("openai")
    fake.fail(MODEL, Fault.rate_limit(retry_after=0))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    e = info.value
    assert isinstance(e, orroute.RateLimitError) and e.status_code == 429
    assert e.response.status_code == 429 and e.body is not None
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, openai.RateLimitError) and back.status_code == 429
    assert isinstance(orroute.PaymentRequiredError("x", status_code=402), openai.APIStatusError)
    assert isinstance(orroute.APITimeoutError("x"), openai.APITimeoutError)
    assert isinstance(orroute.ConflictError("x", status_code=409), openai.ConflictError)
    assert orroute.status_error_class(422) is orroute.UnprocessableEntityError


def test_errors_do_not_import_openai() -> None:
    code = ("import sys, orroute; e = orroute.RateLimitError('x', status_code=429); "
            "print('openai' in sys.modules, type(e).__mro__[1].__name__)")
    path = str(Path(orroute.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.split() == ["False", "APIStatusError"]
