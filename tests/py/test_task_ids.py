"""Task ids: 32 hex digits, never repeated in a process nor between a process and its fork."""

from __future__ import annotations

import os
import re

import pytest

from orroute import Task


def test_ids_are_hex_and_distinct() -> None:
    ids = [Task(messages="hi").id for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert Task(id="mine", messages="hi").id == "mine"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(r)
        os.write(w, " ".join(Task(messages="hi").id for _ in range(3)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child = set(f.read().split())
    os.waitpid(pid, 0)
    parent = {Task(messages="hi").id for _ in range(3)}
    assert len(child) == 3 and not child & parent
