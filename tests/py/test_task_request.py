"""An ``orroute.Task`` as the engine's task: read by the core in one conversion
(``_core.engine_task_of``; an awaited manager call's ``Engine.submit_task`` does the same without
the object). Each field lands where the router reads it, the body is the one the client would
write, and a field set to a bad value after the Task was made is refused before anything is
sent (a Task's constructor validates; its slots can be assigned later)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import Task, _core, _engine
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b"]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw: Any) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                  fallbacks=MODELS, **kw)


def chats(fake: FakeOpenRouter) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def test_every_field_lands_where_the_router_reads_it() -> None:
    task = Task(id="t-1", type="coding", messages="hi é \u2028", max_tokens=7, project="p",
                capabilities=["tools"], quality=0.25, budget="0.5", conversation="c",
                tags={"team": "b", "user": "a", "app": 3}, params={"temperature": 0.5},
                cache=False)
    et = _engine.task_request(task, model="test/a", pin=True, stream=True, project="other")
    assert json.loads(et.request_json) == {"temperature": 0.5,
                                           "messages": [{"role": "user", "content": "hi é \u2028"}],
                                           "max_tokens": 7, "model": "test/a"}
    # the key order of {**params, "messages", "max_tokens", "model"}, as the client writes it
    assert list(json.loads(et.request_json)) == ["temperature", "messages", "max_tokens", "model"]
    assert (et.task_id, et.task_type, et.stream, et.use_cache) == ("t-1", "coding", True, False)
    assert et.fallbacks == ["test/a"]
    assert et.capabilities == ["tools"]
    assert et.max_cost == Decimal("0.5") and et.min_quality == 0.25
    assert (et.project, et.conversation) == ("p", "c")
    assert et.tags == [("app", "3"), ("team", "b"), ("user", "a")]  # sorted, values as str


def test_the_defaults_and_the_managers_project() -> None:
    task = Task(messages="hi")
    et = _engine.task_request(task, project="mine")
    assert json.loads(et.request_json) == {"messages": [{"role": "user", "content": "hi"}]}
    assert et.task_id == task.id and et.task_type == "general"
    assert (et.stream, et.use_cache, et.fallbacks, et.capabilities) == (False, True, [], [])
    assert (et.max_cost, et.min_quality, et.project, et.conversation, et.tags) == (
        None, None, "mine", "", [])
    assert _engine.task_request(task, model="test/b").fallbacks == []  # not pinned
    assert _engine.task_request({"input": "hi", "max_tokens": 3}).request_json == (
        '{"messages":[{"role":"user","content":"hi"}],"max_tokens":3}')
    # no params: the members written in the dict's order, without the dict
    assert _engine.task_request(Task(messages="hi", max_tokens=2), model="test/b").request_json \
        == '{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"model":"test/b"}'
    assert _engine.task_request(Task(messages="hi"), model="").request_json == (
        '{"messages":[{"role":"user","content":"hi"}]}')
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    with pytest.raises(orroute.InvalidArgumentError, match="deeper"):
        _engine.task_request(Task(messages=[{"role": "user", "content": deep}]))


def test_messages_assigned_later_are_read_as_a_list() -> None:
    task = Task(messages="hi")
    task.messages = ({"role": "user", "content": "a"}, {"role": "user", "content": "b"})
    assert [m["content"] for m in json.loads(_engine.task_request(task).request_json)["messages"]] \
        == ["a", "b"]


BAD_FIELDS = [
    ("messages", [], orroute.InvalidArgumentError, "no messages"),
    ("messages", None, orroute.InvalidArgumentError, "no messages"),
    ("messages", 5, TypeError, None),
    ("messages", [{"role": "user", "content": object()}], orroute.InvalidArgumentError, "JSON"),
    ("params", {"x": float("nan")}, orroute.InvalidArgumentError, None),
    ("params", 5, TypeError, "params"),
    ("id", 5, TypeError, "id"),
    ("type", b"coding", TypeError, "type"),
    ("project", 5, TypeError, "project"),
    ("conversation", ["c"], TypeError, "conversation"),
    ("capabilities", ["telepathy"], orroute.InvalidArgumentError, "telepathy"),
    ("capabilities", 5, TypeError, None),
    ("budget", "five", InvalidOperation, None),
    ("quality", "high", ValueError, None),
    ("tags", {"a": "\ud800"}, UnicodeError, None),
    ("tags", 5, (TypeError, AttributeError), None),
]


@pytest.mark.parametrize("field, value, error, words", BAD_FIELDS,
                         ids=[f"{f}={v!r}"[:40] for f, v, _, _ in BAD_FIELDS])
def test_a_bad_field_assigned_later_is_refused_before_anything_is_sent(
        fake: FakeOpenRouter, field: str, value: Any, error: Any, words: str | None) -> None:
    task = Task(messages="hi", max_tokens=5)
    setattr(task, field, value)
    with pytest.raises(error, match=words):
        _engine.task_request(task)
    m = manager(fake)
    with pytest.raises(error, match=words):
        asyncio.run(m.execute_task(task))  # the awaited call's one core function
    with pytest.raises(error, match=words):
        m.execute_task_sync(task)
    assert chats(fake) == []
    assert m.reserved() == (0, Decimal(0))


def test_an_awaited_and_a_blocking_call_send_the_same_body(fake: FakeOpenRouter) -> None:
    m = manager(fake)
    task = Task(messages=[{"role": "system", "content": "be brief"},
                          {"role": "user", "content": "hi \"there\""}],
                max_tokens=9, params={"temperature": 0.1, "seed": 3}, tags={"u": "x"})
    asyncio.run(m.execute_task(task, model="test/b"))
    m.execute_task_sync(task, model="test/b")
    awaited, blocking = chats(fake)
    assert awaited.body == blocking.body
    assert awaited.json["model"] == "test/b" and awaited.json["max_tokens"] == 9
    assert awaited.json["temperature"] == 0.1 and awaited.json["seed"] == 3


def test_a_pinned_awaited_call_tries_no_other_model(fake: FakeOpenRouter) -> None:
    fake.fail("test/a", Fault.server_error(), times=None)
    m = manager(fake, max_retries=0)
    with pytest.raises(orroute.APIError):
        asyncio.run(m._run(Task(messages="hi", max_tokens=5), "test/a", pin=True))
    assert {r.model for r in chats(fake)} == {"test/a"}
    assert asyncio.run(m.execute_task(Task(messages="hi", max_tokens=5),
                                      model="test/a")).model == "test/b"  # unpinned: falls back


def test_the_submitter_refuses_a_wrong_call_shape(fake: FakeOpenRouter) -> None:
    m = manager(fake)
    with pytest.raises(TypeError, match="expected"):
        m._door.submit_task(Task(messages="hi"))
    with pytest.raises(TypeError, match="Notifier"):
        m._door.submit_task(Task(messages="hi"), None, False, None, object(), True, 3, 1.0)
    assert chats(fake) == []


class _ListItems(dict):  # a mapping whose items() gives lists, as `for k, v in ...` takes them
    def items(self) -> Any:
        return [[k, v] for k, v in super().items()]


class _TripleItems(dict):
    def items(self) -> Any:
        return [(k, v, "extra") for k, v in super().items()]


def test_tags_are_read_as_pairs_whatever_sequence_items_gives() -> None:
    task = Task(messages="hi")
    task.tags = _ListItems(b="2", a=1)
    assert _engine.task_request(task).tags == [("a", "1"), ("b", "2")]
    task.tags = _TripleItems(a="1")
    with pytest.raises(ValueError, match="pairs"):
        _engine.task_request(task)


# The first budget read in a process, by two threads at once, while builtins.__import__ is a
# Python function that lets the GIL go (a profiler's or a lazy-import tool's wrapper): the core's
# decimal.Decimal, looked up then, must not be a static whose guard the second thread waits on
# holding the GIL (the process hung). In a child: the lookup happens once per process.
_TWO_FIRST_BUDGETS = """
import builtins, threading, time
from orroute import _engine
from orroute.task import Task

real_import = builtins.__import__
def slow_import(name, *args, **kw):
    if name == "decimal":
        time.sleep(0.2)
    return real_import(name, *args, **kw)
builtins.__import__ = slow_import

def read():
    _engine.task_request(Task(messages="hi", budget="0.01"))

threads = [threading.Thread(target=read, daemon=True) for _ in range(2)]
for t in threads:
    t.start()
    time.sleep(0.05)
for t in threads:
    t.join(30)
print(sum(t.is_alive() for t in threads), "stuck")
"""


def test_two_threads_reading_the_first_budgets_do_not_deadlock() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(orroute.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", _TWO_FIRST_BUDGETS], capture_output=True, check=False,
                         text=True, env=env, timeout=60)  # a hang guard, not a speed limit
    assert out.stdout.strip() == "0 stuck", out.stderr


@pytest.mark.parametrize("field", ["id", "project", "conversation"])
def test_a_text_field_given_bytes_is_refused_when_the_task_is_made(field: str) -> None:
    # The engine reads them as text; at 77a23c5 bytes passed pybind11's str conversion, and with
    # the core's one conversion they were refused only when the task ran.
    with pytest.raises(orroute.InvalidArgumentError, match=f"task {field} must be a str, got bytes"):
        Task(messages="hi", **{field: b"abc"})
    assert getattr(Task(messages="hi", **{field: "abc"}), field) == "abc"


class _SlottedTask(Task):
    __slots__ = ()


def test_a_field_is_read_as_python_reads_it_after_the_class_changes() -> None:
    # The core reads a Task's slots at their offsets while the class is as it saw it; a class
    # changed since (a field made a property), another __getattribute__ or a field deleted from
    # the instance is read (or refused) as getattr would.
    task = _SlottedTask(messages="hi", max_tokens=5)
    assert json.loads(_engine.task_request(task).request_json)["max_tokens"] == 5
    _SlottedTask.max_tokens = property(lambda self: 9)  # type: ignore[assignment]
    try:
        assert json.loads(_engine.task_request(task).request_json)["max_tokens"] == 9
    finally:
        del _SlottedTask.max_tokens
    assert json.loads(_engine.task_request(task).request_json)["max_tokens"] == 5

    class Watched(Task):
        __slots__ = ()

        def __getattribute__(self, name: str) -> Any:
            return "watched" if name == "project" else super().__getattribute__(name)

    assert _engine.task_request(Watched(messages="hi")).project == "watched"
    assert _engine.task_request(Task(messages="hi", project="p")).project == "p"
    del task.tags
    with pytest.raises(AttributeError, match="tags"):
        _engine.task_request(task)


def test_a_call_finished_inside_submit_task_hands_back_its_result(fake: FakeOpenRouter) -> None:
    # Served to the end on the event loop's thread (no time limit), the call comes back with its
    # summary and a FinishedResult: the whole result behind the TaskResult's lazy fields.
    m = manager(fake)

    async def call() -> Any:
        notifier, loop_fd, _ = _engine.bridge().lend_terms(False)
        return m._door.submit_task(Task(messages="hi", max_tokens=5), None, False, None,
                                   notifier, True, loop_fd, -1)

    # The inline wait hands back to the event loop when its descriptor turns readable (a signal
    # such as an earlier test's child's SIGCHLD through the wakeup fd): then the call is awaited
    # the loop's way, with no summary. One of a few tries is served inline on a quiet loop.
    for _ in range(5):
        handle, summary = asyncio.run(call())
        if summary is not None:
            break
        handle.cancel()  # not finished inline: let it go, and try again
    assert summary is not None and summary[0] is True and summary[13] is None  # no alerts
    assert type(handle) is orroute._core.FinishedResult
    full = handle.result()
    assert summary[2] is None  # the reply's text: completion(), read when a result needs it
    assert full["ok"] and (full["model"], full["completion"], full["content"]) == (
        summary[1], handle.completion(), summary[4])
    assert [a["model"] for a in full["attempts"]] == [summary[1]]
    assert handle.result() == full  # read again: the same
    with pytest.raises(TypeError):
        type(handle)()
    r = asyncio.run(m.execute_task(Task(messages="hi", max_tokens=5)))
    assert r.attempts[-1].model == r.model and r.candidates == MODELS and r.response["id"]


_PAD = tuple(f"aaa{i:02d}" for i in range(13))  # sorted first: every field's slot moves on


class _Relaid(Task):
    # the same field names again, as this class's own slots, after the padding: other offsets
    __slots__ = _PAD + Task.__slots__


def test_a_field_read_after_python_code_ran_is_read_at_its_own_types_offsets() -> None:
    # Reading a task may run the caller's code (here its messages' __iter__), which may read
    # another class's task (the core's offsets of that class) or change the task's class: the
    # fields read after are this task's as getattr reads them (at another class's offsets they
    # were a neighbouring object's memory: another task's values, or a crash).
    other = _Relaid(messages="hi")

    class Messages:
        def __iter__(self) -> Any:
            _core.engine_task_of(other, False, None, False, None)
            yield {"role": "user", "content": "x"}

    before = [Task(messages=f"t{i}", max_tokens=1000 + i) for i in range(500)]
    task = _SlottedTask(messages="hi", max_tokens=7, project="mine")
    after = [Task(messages=f"t{i}", max_tokens=5000 + i) for i in range(500)]
    task.messages = Messages()  # type: ignore[assignment]
    t = _core.engine_task_of(task, False, None, False, None)
    assert json.loads(t.request_json)["max_tokens"] == 7 and t.project == "mine"

    class Changing:
        def __iter__(self) -> Any:
            _SlottedTask.max_tokens = property(lambda self: 9)  # type: ignore[assignment]
            yield {"role": "user", "content": "x"}

    task.messages = Changing()  # type: ignore[assignment]
    try:
        assert json.loads(_core.engine_task_of(task, False, None, False, None).request_json)[
            "max_tokens"] == 9
    finally:
        del _SlottedTask.max_tokens
    assert len(before) == len(after) == 500


def test_a_pinned_call_goes_around_a_subclass_own_execute_task(fake: FakeOpenRouter) -> None:
    # _run(pin=True) (compression's summary call, a cascade's stages) runs this class's
    # execute_task: an override never sees the pinned model's private wrapper
    seen: list[object] = []

    class Mine(orroute.AIModelManager):
        async def execute_task(self, task: Task, *, model: str | None = None) -> Any:
            seen.append(model)
            return await super().execute_task(task, model=model)

    m = Mine(api_key="sk-or-test", base_url=fake.base_url, fallbacks=["test/a", "test/b"])
    pinned = asyncio.run(m._run(Task(messages="hi", max_tokens=5), "test/b", pin=True))
    assert pinned.model == "test/b" and seen == []
    assert asyncio.run(m.execute_task(Task(messages="hi", max_tokens=5), model="test/a"))
    assert seen == ["test/a"]


def test_a_plain_success_finished_inside_submit_task_comes_back_as_its_result(
        fake: FakeOpenRouter) -> None:
    # With the manager's maker, a call served to the end as a plain success (no alerts, no cost
    # problem, the reply's id) comes back as the TaskResult _made would make of its summary; an
    # awaited call's result is remembered for record_feedback as _made's are.
    from orroute.manager import _make_result

    m = manager(fake)
    task = Task(messages="hi", max_tokens=5, type="coding")

    details: list[type] = []

    async def call(make: Any) -> Any:
        notifier, loop_fd, _ = _engine.bridge().lend_terms(False)
        done = m._door.submit_task(task, None, False, None, notifier, True, loop_fd, -1,
                                   make, task.id, None)
        if type(done) is orroute.TaskResult:
            details.append(type(done.__dict__["_details"]))
        return done

    made = asyncio.run(call(_make_result))  # alone: its details hold the finished call
    assert type(made) is orroute.TaskResult and details == [orroute._core.FinishedResult]
    handle2, summary = asyncio.run(call(None))  # no maker: the summary, as before
    assert type(summary) is tuple
    by_made = m._made(summary, handle2, task.id)
    assert (made.model, made.task_type, made.cost, made.usage, made.task_id, made.content) == (
        by_made.model, by_made.task_type, by_made.cost, by_made.usage, task.id, by_made.content)
    assert made.id == json.loads(made.completion_json)["id"] and made.attempts[-1].model == made.model
    for bad in (len, object(), _core.task_submitter(m._door._core)):
        with pytest.raises(TypeError, match="make"):
            asyncio.run(call(bad))
    r = asyncio.run(m.execute_task(Task(messages="hi", max_tokens=5)))
    assert m._results[r.id] == (r.model, r.task_type)
    m.record_feedback(r.id, 1.0)  # found: no error
