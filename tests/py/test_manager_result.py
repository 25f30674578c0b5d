"""A manager result's id, text and response come from the engine's one parse of the reply (the
OpenAI-shaped ``response`` is parsed only when read): plain, streamed and cached replies give
the same fields as the reply itself (text parts: Catch2 ``[chat_text]``)."""

from __future__ import annotations

import asyncio
import gc
import json
import pickle
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.manager import Usage
from orroute.testing import FakeOpenRouter

MODELS = ["test/a", "test/b"]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                  fallbacks=MODELS, **kw)


def test_id_content_and_response_are_the_replys(fake):
    r = manager(fake).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    sent = json.loads(r.completion_json)
    assert r.response == sent
    assert r.id == sent["id"] and r.id.startswith("gen-")
    assert r.content == sent["choices"][0]["message"]["content"] and r.content


def test_a_reply_without_content_gives_empty_text(fake):
    fake.set_reply("*", {"tool_calls": [{"id": "c1", "type": "function",
                                         "function": {"name": "f", "arguments": "{}"}}]})
    r = manager(fake).execute_task_sync(Task(messages="call f", max_tokens=20))
    assert r.content == ""
    assert r.response["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "f"


def test_the_streamed_result_has_the_assembled_text(fake):
    m = manager(fake)

    async def main():
        parts, final = [], None
        async for item in m._stream_settled(Task(messages="stream me", max_tokens=30)):
            if isinstance(item, dict):
                for choice in item.get("choices", []):
                    parts.append(choice.get("delta", {}).get("content") or "")
            else:
                final = item
        return "".join(parts), final

    text, final = asyncio.run(main())
    assert final is not None and text
    assert final.content == text
    assert final.id == final.response["id"]


def test_a_cache_hit_has_the_cached_text(fake, tmp_path: Path):
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    first = m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    again = m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert again.cost_source == "cache"
    assert again.content == first.content
    assert again.response["choices"][0]["message"]["content"] == first.content


def test_the_response_is_parsed_once_and_can_be_replaced(fake):
    r = manager(fake).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert r.response is r.response
    r.response = {"id": "x"}
    assert r.response == {"id": "x"}


def test_dataclass_helpers_see_response_as_a_field_as_before(fake):
    """``response`` was a plain dataclass field: asdict lists it, replace and the constructor
    take it, and a replaced response survives replace (the lazy parse must not change that)."""
    import dataclasses

    r = manager(fake).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    d = dataclasses.asdict(r)
    assert d["response"] == json.loads(r.completion_json)
    assert not any(k.startswith("_") for k in d)
    assert dataclasses.replace(r, content="other").response == r.response
    assert dataclasses.replace(r, response={"id": "y"}).response == {"id": "y"}
    r.response = {"id": "x"}
    assert dataclasses.replace(r, content="other").response == {"id": "x"}
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.init}
    assert orroute.TaskResult(**{**fields, "response": {"id": "z"}}).response == {"id": "z"}


def test_a_reply_with_invalid_utf8_gives_a_result_not_a_decode_error():
    """An upstream's raw bytes are not ours to trust: a reply that is JSON but not UTF-8 (a
    stray 0xff in the text) reaches the caller with U+FFFD in its place, as a result, instead of
    a UnicodeDecodeError out of the binding after the call was made and paid."""
    import socket
    import threading

    body = (b'{"id":"gen-\xff1","model":"test/a","provider":"P\xfe","object":"chat.completion",'
            b'"choices":[{"index":0,"message":{"role":"assistant","content":"bad \xff byte"},'
            b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,'
            b'"total_tokens":5,"cost":0.00001}}')
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += c.recv(65536)
                head, rest = data.split(b"\r\n\r\n", 1)
                if not head.startswith(b"POST"):
                    c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                n = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                         if h.lower().startswith(b"content-length"))
                while len(rest) < n:
                    rest += c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve, daemon=True).start()
    try:
        m = orroute.AIModelManager(api_key="sk-or-test", fallbacks=["openai/gpt-4o-mini"],
                                   base_url=f"http://127.0.0.1:{srv.getsockname()[1]}/api/v1")
        r = m.execute_task_sync(Task(messages="hi", max_tokens=5))
    finally:
        srv.close()
    assert r.content == "bad \ufffd byte"
    assert r.id == "gen-\ufffd1"
    assert r.response["choices"][0]["message"]["content"] == r.content


def test_an_awaited_result_reads_its_attempts_and_plan_as_a_blocking_one_does(fake):
    """The awaited path hands over the engine's result without its attempts and plan, which are
    built when first read: they must read as the blocking path's (built at once), and survive
    pickling, copying and ``dataclasses`` helpers without the engine's object."""
    import copy
    import dataclasses
    import pickle

    from orroute.testing import Fault

    fake.fail("test/a", Fault.server_error())
    task = Task(messages="Say hello", max_tokens=20, type="coding")
    blocking = manager(fake).execute_task_sync(task)
    m = manager(fake)  # breakers of its own: the same attempts
    awaited = asyncio.run(m.execute_task(task))
    assert awaited.model == blocking.model == "test/b"
    assert [(a.model, a.error, a.status) for a in awaited.attempts] == \
        [(a.model, a.error, a.status) for a in blocking.attempts]
    assert awaited.fallbacks == blocking.fallbacks == 1
    for name in ("reasons", "candidates", "task_type", "complexity"):
        assert getattr(awaited, name) == getattr(blocking, name), name
    assert awaited.candidates == MODELS and awaited.task_type == "coding"
    assert set(awaited.complexity) >= {"score", "tier", "features"}

    fake.clear_faults()
    fresh = asyncio.run(m.execute_task(Task(messages="Say hello", max_tokens=20)))
    for again in (pickle.loads(pickle.dumps(fresh)), copy.deepcopy(fresh), copy.copy(fresh)):
        assert again == fresh
        assert again.attempts == fresh.attempts and again.complexity == fresh.complexity
    assert dataclasses.asdict(fresh)["candidates"] == MODELS
    assert dataclasses.replace(fresh, content="x").attempts == fresh.attempts
    fresh.reasons = ["mine"]
    assert fresh.reasons == ["mine"]


def test_a_result_made_by_the_engine_has_every_field_the_constructor_sets(fake):
    """Results of calls are made without the dataclass ``__init__`` (it is most of their cost):
    each must hold what the constructor would store, for every field, on both paths."""
    import dataclasses

    m = manager(fake)
    for r in (m.execute_task_sync(Task(messages="Say hello", max_tokens=20)),
              asyncio.run(m.execute_task(Task(messages="Say hello", max_tokens=20)))):
        made = dataclasses.replace(r)  # through __init__, every field given
        # (what the lazy fields are made from: the engine's result, the token counts)
        assert set(vars(r)) - {"_details", "_tokens"} == set(vars(made)) - {"_details", "_tokens"}
        assert r == made and repr(r) == repr(made)


def test_the_usage_is_made_when_first_read_and_kept(fake):
    """A result's ``usage`` is made on its first read from the counts the engine settled: the
    same Usage object after, pickled and copied made, and a value given or assigned kept."""
    m = manager(fake)
    for r in (m.execute_task_sync(Task(messages="Say hello", max_tokens=20)),
              asyncio.run(m.execute_task(Task(messages="Say hello", max_tokens=20)))):
        usage = r.usage
        assert isinstance(usage, Usage) and usage is r.usage
        assert usage.total_tokens == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        state = r.__getstate__()
        assert state["_usage"] == usage and "_tokens" not in state and "_details" not in state
        again = pickle.loads(pickle.dumps(r))
        assert again.usage == usage and isinstance(again.usage, Usage)
        r.usage = {"total_tokens": 1}
        assert r.usage == {"total_tokens": 1}
        r.usage = None  # None assigned is kept too (not made again from the counts)
        assert r.usage is None
        assert pickle.loads(pickle.dumps(r)).usage is None
    given = orroute.TaskResult(id="r", task_id="t", content="c", model="m/a", usage=None,
                               cost=0)  # type: ignore[arg-type]
    assert given.usage is None


def test_a_task_result_built_by_hand_has_empty_details():
    r = orroute.TaskResult(id="r", task_id="t", content="c", model="m/a",
                           usage={"prompt_tokens": 1}, cost=0)  # type: ignore[arg-type]
    assert (r.attempts, r.reasons, r.candidates, r.complexity, r.response) == ([], [], [], {}, {})


def test_each_figure_of_a_summary_lands_in_its_field(fake):
    """``_made`` puts a call summary's figures (bind_route.cpp's figures() order, then the task
    type) in the result's fields: distinct values, so two fields swapped fail."""
    import dataclasses
    from decimal import Decimal

    m = manager(fake)
    details = {"attempts": [], "plan": {"reasons": ["r1"], "candidates": ["test/a"],
                                        "complexity": {"score": 0.5}}}
    summary = (True, "test/a", '{"id": "gen-9"}', "gen-9", "the text", 7, 3, Decimal("0.25"),
               "catalog", "", 1, "prov", "prov/model", None, "coding")
    compression = object()
    r = m._made(summary, details, "task-1", compression)
    assert (r.id, r.task_id, r.content, r.model, r.cost, r.task_type, r.cost_source,
            r.cut_at_reservation, r.provider, r.provider_model, r.completion_json) == (
        "gen-9", "task-1", "the text", "test/a", Decimal("0.25"), "coding", "catalog", True,
        "prov", "prov/model", '{"id": "gen-9"}')
    assert r.compression is compression and r.cut_at_reservation is True
    assert r.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert (r.reasons, r.candidates, r.complexity) == (["r1"], ["test/a"], {"score": 0.5})
    assert r.response == {"id": "gen-9"}
    assert m._results["gen-9"] == ("test/a", "coding")  # record_feedback finds it
    # no content (None or ""), no completion id: "" and a fresh result id; no compression: None
    bare = m._made(summary[:3] + ("", None) + summary[5:10] + (0,) + summary[11:], details)
    assert bare.content == "" and bare.task_id == "" and bare.compression is None
    assert len(bare.id) == 24 and bare.cut_at_reservation is False
    assert type(r) is orroute.TaskResult and r == dataclasses.replace(r)


def test_the_result_maker_refuses_what_it_cannot_fill():
    """The core's maker (``_core.task_result_maker``) takes a template that has every key it
    sets (a copy is never grown) and a summary's tuple only: anything else is an error, not a
    crash."""
    from orroute import _core
    from orroute.manager import _RESULT_STATE, TaskResult

    with pytest.raises(orroute.InvalidArgumentError, match="_details"):
        _core.task_result_maker(TaskResult, {k: v for k, v in _RESULT_STATE.items()
                                             if k != "_details"})
    with pytest.raises(orroute.InvalidArgumentError):
        _core.task_result_maker(TaskResult, list(_RESULT_STATE.items()))
    make = _core.task_result_maker(TaskResult, dict(_RESULT_STATE))
    for bad in ((), ("x",) * 14, ["x"] * 15, None, "x" * 15):
        with pytest.raises(TypeError):
            make(bad, None, "id", "", None)
    with pytest.raises(TypeError):
        make(("x",) * 15, None, "id")


def test_the_completion_text_is_read_from_the_engine_when_first_read(fake):
    """An awaited result's ``completion_json`` is the reply's text, decoded when first read from
    the engine's result (the summary carries None in its place): the same text as the blocking
    path's, kept by pickling, copying and the ``dataclasses`` helpers, and a value assigned
    replaces it."""
    import copy
    import dataclasses

    m = manager(fake)
    task = Task(messages="Say hello", max_tokens=20)
    blocking = m.execute_task_sync(task)
    awaited = asyncio.run(m.execute_task(task))
    for r in (blocking, awaited):
        text = r.completion_json
        assert isinstance(text, str) and json.loads(text)["id"] == r.id
        assert r.completion_json is text  # decoded once, then kept
        assert r.response == json.loads(text)
        for again in (pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r),
                      dataclasses.replace(r)):
            assert again.completion_json == text
        assert "_details" not in pickle.loads(pickle.dumps(r)).__dict__
        assert dataclasses.asdict(r)["completion_json"] == text
        r.completion_json = "{}"
        assert r.completion_json == "{}"
    by_hand = orroute.TaskResult(id="r", task_id="t", content="c", model="m/a", usage=None,
                                 cost=0)  # type: ignore[arg-type]
    assert by_hand.completion_json == "" and by_hand.response == {}


def test_the_pending_result_gives_its_completion_apart_from_its_summary(fake):
    """``summary()`` (read on every call) leaves the reply's text out (None in its place):
    ``completion()`` gives it, as ``result()['completion']`` does."""
    from orroute import _engine

    m = manager(fake)
    pending = m._door.submit(m._engine_task(Task(messages="Say hello", max_tokens=20)))

    async def wait() -> None:
        await _engine.wait(pending)

    asyncio.run(wait())
    summary = pending.summary()
    assert summary[0] is True and summary[2] is None
    assert pending.completion() == pending.result()["completion"]
    assert json.loads(pending.completion())["id"] == summary[3]


def test_results_made_one_after_another_keep_their_own_figures(fake):
    """The maker keeps the figures that repeat call after call (model, task type, cost source,
    cut flag, provider and its model name) from one result to the next: results made from
    different summaries, alternating, each hold their own, and the template given is not
    changed."""
    from decimal import Decimal

    from orroute import _core
    from orroute.manager import _RESULT_STATE, TaskResult

    template = dict(_RESULT_STATE)
    make = _core.task_result_maker(TaskResult, template)
    a = (True, "test/a", None, "gen-a", "text a", 1, 2, Decimal("0.1"), "upstream", "", False,
         "", "", None, "general")
    b = (True, "test/b", '{"id": "gen-b"}', "gen-b", "text b", 3, 4, Decimal("0.2"), "catalog",
         "", True, "prov", "prov/b", None, "coding")
    model = "test/" + str(len("a"))[:0] + "a"  # equal to a's model, another str
    assert model == "test/a" and model is not a[1]
    a_again = (a[0], model) + a[2:]

    def fields(r: TaskResult) -> tuple:
        return (r.id, r.model, r.task_type, r.cost_source, r.cut_at_reservation, r.provider,
                r.provider_model, r.content, r.cost, r.completion_json)

    want_a = ("gen-a", "test/a", "general", "upstream", False, "", "", "text a", Decimal("0.1"),
              "")
    want_b = ("gen-b", "test/b", "coding", "catalog", True, "prov", "prov/b", "text b",
              Decimal("0.2"), '{"id": "gen-b"}')
    made = [make(s, None, s[3], "", None) for s in (a, b, a, a_again, b, b, a)]
    assert [fields(r) for r in made] == [want_a, want_b, want_a, want_a, want_b, want_b, want_a]
    assert template == _RESULT_STATE
    assert all(template[k] is None for k in ("model", "cost", "_completion_json"))


def test_the_result_maker_makes_its_class_as_new_makes_it():
    """The maker's result is ``cls.__new__(cls)`` with the state as its ``__dict__``: a class with
    a ``__new__`` of its own has it called; with object's (allocated alone, without the inline
    attribute values the dict replaces) the instance is as object.__new__ makes it: its
    attributes its dict's, assignable, pickled with it."""
    from decimal import Decimal

    from orroute import _core
    from orroute.manager import _RESULT_STATE, TaskResult

    calls = []

    class Counted(TaskResult):
        def __new__(cls, *args, **kw):
            calls.append(cls)
            return super().__new__(cls)

    s = (True, "test/a", None, "gen-a", "text a", 1, 2, Decimal("0.1"), "upstream", "", False,
         "", "", None, "general")
    r = _core.task_result_maker(Counted, dict(_RESULT_STATE))(s, None, "gen-a", "t", None)
    assert calls == [Counted] and type(r) is Counted and (r.id, r.task_id) == ("gen-a", "t")
    plain = _core.task_result_maker(TaskResult, dict(_RESULT_STATE))(s, None, "gen-a", "t", None)
    assert type(plain) is TaskResult and vars(plain)["id"] == "gen-a" and plain.content == "text a"
    plain.extra = 1
    assert plain.__dict__["extra"] == 1 and plain.extra == 1
    again = pickle.loads(pickle.dumps(plain))
    assert (again.task_id, again.cost, again.usage.total_tokens) == ("t", Decimal("0.1"), 3)
    assert gc.is_tracked(plain)


def test_record_feedback_remembers_the_last_results_of_every_path(fake, monkeypatch):
    """The last _FEEDBACK_MEMORY results are always found by record_feedback, at most twice as
    many, whichever way a result was made (awaited: in the core or by _made; blocking: _made)."""
    import orroute.manager as mgr

    monkeypatch.setattr(mgr, "_FEEDBACK_MEMORY", 2)

    async def awaited(m: orroute.AIModelManager) -> list:
        return [await m.execute_task(Task(messages="hi", max_tokens=5)) for _ in range(5)]

    def blocking(m: orroute.AIModelManager) -> list:
        return [m.execute_task_sync(Task(messages="hi", max_tokens=5)) for _ in range(5)]

    for run in (lambda m: asyncio.run(awaited(m)), blocking):
        m = manager(fake)
        results = run(m)
        for r in results[2:]:
            m.record_feedback(r.id, 1.0)  # the last three: found
        for r in results[:2]:  # the first two: forgotten (the memory rotated twice since)
            with pytest.raises(orroute.NotFoundInCatalogError):
                m.record_feedback(r.id, 1.0)
