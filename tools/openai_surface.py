"""How much of the ``openai`` client's surface ``orroute.OpenRouter`` follows (issue #17).

Runs the same checks against ``orroute.OpenRouter`` (the native client), against
``orroute.openai_client`` (openai's own client on orroute's transport) and against ``openai.OpenAI``
itself, all talking to a FakeOpenRouter, and prints which pass:

    PYTHONPATH=python python3 tools/openai_surface.py [--client native|transport|openai] [-v]

A check passes when the code an openai user writes runs and gives what openai gives. The native
client keeps orroute's own types (they follow openai's API, they are not openai's classes), so
``isinstance(..., openai.types...)`` is not checked; ``isinstance(err, openai.RateLimitError)`` is.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pydantic

import orroute
from orroute.testing import FakeOpenRouter, Fault

KEY = "sk-or-v1-surface-check-not-a-real-key"
MODEL = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"
HI = [{"role": "user", "content": "Say hi"}]
CHECKS: list[tuple[str, Callable[[Any, Any, FakeOpenRouter], None]]] = []


def check(name: str) -> Callable[[Callable[[Any, Any, FakeOpenRouter], None]], Any]:
    def add(fn: Callable[[Any, Any, FakeOpenRouter], None]) -> Any:
        CHECKS.append((name, fn))
        return fn

    return add


class City(pydantic.BaseModel):
    name: str


# --- construction ---------------------------------------------------------------------------------
@check("constructor timeout=httpx.Timeout")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    make(timeout=httpx.Timeout(30.0, connect=5.0)).chat.completions.create(model=MODEL, messages=HI)


@check("constructor timeout=float")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    make(timeout=30.0).chat.completions.create(model=MODEL, messages=HI)


@check("constructor default_headers=")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    make(default_headers={"X-Surface": "1"}).chat.completions.create(model=MODEL, messages=HI)
    assert fake.last_request.headers.get("x-surface") == "1"


@check("client.api_key attribute")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert isinstance(c.api_key, str) and c.api_key


@check("client.base_url attribute")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert str(c.base_url)


@check("client.max_retries / timeout attributes")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert isinstance(c.max_retries, int)
    assert c.timeout is not None


@check("with_options(timeout=, max_retries=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.with_options(timeout=20.0, max_retries=1).chat.completions.create(model=MODEL, messages=HI)


@check("copy()")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.copy(max_retries=1).chat.completions.create(model=MODEL, messages=HI)


# --- chat.completions.create ------------------------------------------------------------------------
@check("create(extra_body=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, extra_body={"top_k": 3})
    assert fake.last_request.json["top_k"] == 3


@check("create(extra_headers=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, extra_headers={"X-Extra": "yes"})
    assert fake.last_request.headers.get("x-extra") == "yes"


@check("create(extra_query=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, extra_query={"trace": "1"})


@check("create(timeout=httpx.Timeout)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, timeout=httpx.Timeout(20.0))


@check("create(temperature=openai.NOT_GIVEN)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, temperature=openai.NOT_GIVEN)
    assert "temperature" not in fake.last_request.json


@check("create(newer param) is sent")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    c.chat.completions.create(model=MODEL, messages=HI, prompt_cache_retention="24h")
    assert fake.last_request.json["prompt_cache_retention"] == "24h"


@check("stream: no usage chunk unless asked")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    chunks = list(c.chat.completions.create(model=MODEL, messages=HI, stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)  # the README's loop
    assert text and all(ch.choices for ch in chunks)


@check("stream_options include_usage")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    chunks = list(c.chat.completions.create(model=MODEL, messages=HI, stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


@check("with_raw_response.create")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=HI)
    assert raw.headers.get("content-type", "").startswith("application/json")
    assert raw.parse().choices[0].message.content


@check("chat.completions.parse(response_format=Model)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    r = c.chat.completions.parse(model=MODEL, messages=HI, response_format=City)
    assert isinstance(r.choices[0].message.parsed, City)


@check("chat.completions.stream(...) helper")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    with c.chat.completions.stream(model=MODEL, messages=HI) as s:
        for _event in s:
            pass
        assert s.get_final_completion().choices[0].message.content


# --- response objects -------------------------------------------------------------------------------
def _reply(c: Any) -> Any:
    return c.chat.completions.create(model=MODEL, messages=HI)


@check("model_dump()")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert _reply(c).model_dump()["choices"][0]["message"]["content"]


@check("model_dump(mode='json')")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert _reply(c).model_dump(mode="json")["object"] == "chat.completion"


@check("model_dump(exclude_unset=True)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert "id" in _reply(c).model_dump(exclude_unset=True)


@check("model_dump(by_alias=True, exclude_none=True)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    d = _reply(c).model_dump(by_alias=True, exclude_none=True)
    assert None not in d.values()


@check("model_dump(include=/exclude=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    r = _reply(c)
    assert set(r.model_dump(include={"id", "model"})) == {"id", "model"}
    assert "usage" not in r.model_dump(exclude={"usage"})


@check("model_dump_json(indent=, exclude_none=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert _reply(c).model_dump_json(indent=2, exclude_none=True).startswith("{\n")


@check("to_dict() / to_json()")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    r = _reply(c)
    assert r.to_dict()["id"] and r.to_json().startswith("{")


@check("model_copy(update=)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    r = _reply(c)
    assert r.model_copy(update={"model": "x"}).model == "x" and r.model == MODEL


@check("type(r).model_validate(dict)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    r = _reply(c)
    assert type(r).model_validate(r.model_dump()).id == r.id


# --- other endpoints --------------------------------------------------------------------------------
@check("models.list()")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert any(m.id == MODEL for m in c.models.list())


@check("models.retrieve(id)")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert c.models.retrieve(MODEL).id == MODEL


@check("embeddings.create")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    fake.add_model(EMBED, prompt_price="0.00000002", completion_price="0")
    r = c.embeddings.create(model=EMBED, input=["a", "b"])
    assert len(r.data) == 2 and r.data[0].embedding


# --- errors -----------------------------------------------------------------------------------------
_OPENAI_ERRORS = ["APIError", "APIStatusError", "APIConnectionError", "APITimeoutError",
                  "APIResponseValidationError", "BadRequestError", "AuthenticationError",
                  "PermissionDeniedError", "NotFoundError", "ConflictError",
                  "UnprocessableEntityError", "RateLimitError", "InternalServerError"]


@check("orroute has openai's error names")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    missing = [n for n in _OPENAI_ERRORS if not hasattr(orroute, n)]
    assert not missing, missing


def _rate_limited(c: Any, fake: FakeOpenRouter) -> BaseException:
    fake.fail(MODEL, Fault.rate_limit(retry_after=0), times=10)
    try:
        c.with_options(max_retries=0).chat.completions.create(model=MODEL, messages=HI)
    except Exception as e:  # noqa: BLE001
        return e
    finally:
        fake.clear_faults()
    raise AssertionError("no error raised")


@check("except openai.RateLimitError catches a 429")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    assert isinstance(_rate_limited(c, fake), openai.RateLimitError)


@check("errors carry status_code, body, code, param, type")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    e = _rate_limited(c, fake)
    assert e.status_code == 429 and e.body is not None  # type: ignore[attr-defined]
    for attr in ("code", "param", "type"):
        getattr(e, attr)


@check("except openai.APIConnectionError catches a refused connection")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    try:
        make(base_url="http://127.0.0.1:9/v1", max_retries=0).chat.completions.create(
            model=MODEL, messages=HI)
    except openai.APIConnectionError:
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(type(e).__mro__) from None


@check("async client: create and stream")
def _(make: Any, c: Any, fake: FakeOpenRouter) -> None:
    async def run() -> None:
        ac = make(asynchronous=True)
        r = await ac.chat.completions.create(model=MODEL, messages=HI)
        assert r.choices[0].message.content
        s = await ac.chat.completions.create(model=MODEL, messages=HI, stream=True)
        assert [ch async for ch in s]

    asyncio.run(run())


def _factories(kind: str, fake: FakeOpenRouter) -> Callable[..., Any]:
    def make(asynchronous: bool = False, **kw: Any) -> Any:
        kw.setdefault("base_url", fake.base_url)
        if kind == "native":
            cls = orroute.AsyncOpenRouter if asynchronous else orroute.OpenRouter
            return cls(api_key=KEY, **kw)
        if kind == "openai":
            cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
            return cls(api_key=KEY, **kw)
        manager = orroute.AIModelManager(api_key=KEY, base_url=kw.pop("base_url"),
                                         refresh_catalog=False, max_retries=0)
        helper = orroute.async_openai_client if asynchronous else orroute.openai_client
        return helper(manager, **kw)

    return make


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client", choices=["native", "transport", "openai"], default="native")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each failure's traceback")
    args = ap.parse_args()
    passed = 0
    with FakeOpenRouter(api_key=KEY) as fake:
        make = _factories(args.client, fake)
        for name, fn in CHECKS:
            fake.reset()
            try:
                fn(make, make(), fake)
                ok, why = True, ""
            except Exception as e:  # noqa: BLE001 - a failed check is reported, not raised
                ok, why = False, f"{type(e).__name__}: {str(e)[:100]}"
                if args.verbose:
                    traceback.print_exc()
            passed += ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}{'   ' + why if why else ''}")
    print(f"{args.client}: {passed} of {len(CHECKS)} openai surface checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
