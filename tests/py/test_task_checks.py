"""What ``orroute.Task(...)`` refuses when it is made (before anything is queued, planned or
sent), with the message that names the field, and what it keeps of each argument. The usual task
(messages and max_tokens) takes a path of single comparisons; every other case has its own."""

from __future__ import annotations

import pickle
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

import orroute
from orroute import Task

BAD = [
    ({"type": ""}, "task type must be a non-empty string"),
    ({"type": None}, "task type must be a non-empty string"),
    ({"type": ["coding"]}, "task type must be a non-empty string"),
    ({"type": "codng"}, "did you mean 'coding'"),
    ({"type": "two words"}, "is not a name"),
    ({"messages": [{"content": "no role"}]}, "task message 0 must be a mapping with a 'role'"),
    ({"messages": [{"role": "user", "content": "a"}, "b"]}, "task message 1 must be a mapping"),
    ({"messages": [{"role": "user"}, 5]}, "task message 1 must be a mapping"),
    ({"input_size": -1}, "input_size must be >= 0, got -1"),
    ({"max_tokens": 0}, "max_tokens must be >= 1, got 0"),
    ({"quality": 1.5}, r"quality must be in \[0, 1\], got 1.5"),
    ({"budget": "five"}, "budget must be an amount in USD, got 'five'"),
    ({"budget": "-1"}, "budget must be >= 0, got -1"),
    ({"budget": float("nan")}, "budget must be >= 0, got NaN"),
    ({"id": 5}, "task id must be a str, got int"),
    ({"project": b"p"}, "task project must be a str, got bytes"),
    ({"conversation": ["c"]}, "task conversation must be a str, got list"),
    ({"params": {"model": "x"}}, "task params may not set 'model': the router does"),
    ({"params": {"temperature": 0, "stream": True, "max_tokens": 3}},
     "task params may not set 'max_tokens'"),
]


@pytest.mark.parametrize("kw, words", BAD, ids=[repr(kw)[:40] for kw, _ in BAD])
def test_a_bad_argument_is_refused_when_the_task_is_made(kw: dict[str, Any], words: str) -> None:
    kw = {"messages": "hi", **kw}
    with pytest.raises(orroute.InvalidArgumentError, match=words):
        Task(**kw)


class Text(str):  # a str subclass passes as text
    pass


def test_what_a_task_keeps_of_each_argument() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    params = MappingProxyType({"temperature": 0.5})
    task = Task(id=Text("i"), type=Text("coding"), messages=msgs, input_size=0, max_tokens=1,
                project=Text("p"), capabilities=["tools"], quality=0, budget=0.5,
                conversation=Text("c"), tags=MappingProxyType({"u": "a"}), params=params,
                cache=0)
    assert task.messages == msgs and task.messages is not msgs  # the task's own list
    assert task.params == {"temperature": 0.5} and task.params.__class__ is dict
    assert task.tags == {"u": "a"} and task.tags.__class__ is dict
    assert task.capabilities == ("tools",) and task.budget == Decimal("0.5")
    assert task.cache is False and Task(messages="hi", cache=[1]).cache is True
    assert (task.id, task.type, task.project, task.conversation) == ("i", "coding", "p", "c")
    plain = Task(messages=({"role": "user", "content": "a"},))
    assert plain.messages == [{"role": "user", "content": "a"}]
    assert (plain.params, plain.tags, plain.capabilities) == ({}, {}, ())
    assert plain.params is not Task(messages="hi").params  # not one dict shared by every task
    assert (plain.budget, plain.compress, plain.cache, plain.type) == (None, None, True, "general")
    assert pickle.loads(pickle.dumps(task)) == task


class _RoleOnSecondLook(dict):
    """A message whose ``"role" in m`` answers False, then True: asked again, it may not pass."""

    looks = 0

    def __contains__(self, key: object) -> bool:
        _RoleOnSecondLook.looks += 1
        return _RoleOnSecondLook.looks % 2 == 0


def test_a_message_refused_once_stays_refused() -> None:
    # the refusal is raised for the message the check saw, not found again by a second look
    with pytest.raises(orroute.InvalidArgumentError, match="task message 1 must be a mapping"):
        Task(messages=[{"role": "user", "content": "a"}, _RoleOnSecondLook(content="b")])
