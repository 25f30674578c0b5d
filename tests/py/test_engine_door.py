"""``orroute._engine`` (a package) is the one door to the C++ engine and network client: no module
outside it touches ``_core.Engine``, the network client, the engine's tasks or config, or the
asyncio bridge. And a failure maps to the same exception whichever entry point met it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter, Fault

PACKAGE = Path(orroute.__file__).resolve().parent
DOOR = PACKAGE / "_engine"

# what only the door may name: the engine, the network client, their tasks/config/readers, and
# the bridge's notifier (attributes of _core, or names imported from it)
CORE_NAMES = frozenset({"Engine", "EngineConfig", "EngineTask", "NetClient", "ApiClient",
                        "ChatStream", "Notifier"})
# methods of the core engine and client that only the door calls (the door renames them)
ENGINE_METHODS = frozenset({"submit_async", "submit_stream", "net_client"})
BRIDGE_NAMES = frozenset({"_bridge", "_bridges", "_LoopBridge", "LoopBridge"})


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "_core" and node.attr in CORE_NAMES):
            out.append(f"{where}: _core.{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr in ENGINE_METHODS | {"_engine"}:
            out.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            if (node.module or "").endswith("_core") and names & CORE_NAMES:
                out.append(f"{where}: from {node.module} import {sorted(names & CORE_NAMES)}")
            if names & BRIDGE_NAMES:
                out.append(f"{where}: imports {sorted(names & BRIDGE_NAMES)}")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in BRIDGE_NAMES:
            out.append(f"{where}: defines {node.name}")
    return out


def test_only_the_door_touches_the_engine_the_network_client_and_the_bridge() -> None:
    found = [v for p in sorted(PACKAGE.rglob("*.py")) if DOOR not in p.parents
             for v in _violations(p)]
    assert found == []
    # the door itself does what the others may not (the check would see it)
    assert _violations(DOOR / "engine.py") and _violations(DOOR / "loop.py")


def test_the_check_sees_a_module_that_goes_around_the_door(tmp_path: Path) -> None:
    """The AST check above is not vacuous: each way around the door is caught."""
    bad = PACKAGE / "_door_probe_tmp.py"
    bad.write_text(
        "from . import _core\n"
        "from ._core import NetClient\n"
        "from .client import _bridge\n"
        "e = _core.Engine\n"
        "def f(m):\n"
        "    return m._engine.submit_async(None)\n",
        encoding="utf-8",
    )
    try:
        found = _violations(bad)
    finally:
        bad.unlink()
    assert len(found) == 5, found


# --- one failure, one exception: the client and the manager agree ----------------------------


@pytest.mark.parametrize("status, cls", [(429, orroute.RateLimitError),
                                         (400, orroute.BadRequestError),
                                         (503, orroute.InternalServerError)])
def test_a_failure_is_the_same_exception_from_the_client_and_the_manager(status, cls) -> None:
    with FakeOpenRouter() as fake:
        fake.fail("openai/gpt-4o-mini", Fault.status_error(status, headers={"Retry-After": "7"}))
        client = orroute.OpenRouter(api_key="sk-or-v1-door", base_url=fake.base_url, max_retries=0)
        with pytest.raises(orroute.APIError) as from_client:
            client.chat.completions.create(model="openai/gpt-4o-mini",
                                           messages=[{"role": "user", "content": "hi"}])
        manager = orroute.AIModelManager(api_key="sk-or-v1-door", base_url=fake.base_url,
                                         fallbacks=["openai/gpt-4o-mini"], max_retries=0,
                                         max_retry_wait=0.0)
        with pytest.raises(orroute.APIError) as from_manager:
            manager.execute_task_sync(Task(messages="hi", max_tokens=5))
    # one class either way (with openai imported, orroute's class's openai twin: _exceptions.py)
    assert type(from_client.value) is type(from_manager.value)
    assert isinstance(from_client.value, cls) and type(from_client.value).__name__ == cls.__name__
    assert from_client.value.status_code == from_manager.value.status_code == status
    if cls is orroute.RateLimitError:
        assert from_client.value.retry_after == from_manager.value.retry_after == 7


# --- keys: the engine rotates as the client does ----------------------------------------------


def test_the_manager_sets_aside_rejected_keys_streaming_too() -> None:
    good = "sk-or-v1-good-key-0000000000"
    keys = ["sk-or-v1-bad-key-1111111111", "sk-or-v1-bad-key-2222222222", good]
    with FakeOpenRouter(api_key=good) as fake:
        manager = orroute.AIModelManager(api_key=keys, base_url=fake.base_url,
                                         fallbacks=["openai/gpt-4o-mini"], max_retries=0)

        async def stream() -> str:
            parts = []
            async for chunk in manager.stream_task(Task(messages="hi", max_tokens=5)):
                parts += [c["delta"].get("content") or "" for c in chunk["choices"]]
            return "".join(parts)

        import asyncio

        assert asyncio.run(stream())
        assert manager.execute_task_sync(Task(messages="hi", max_tokens=5)).content
        sent = [r.api_key.reveal() for r in fake.requests
                if r.endpoint == "/chat/completions" and r.api_key is not None]
        assert set(sent) == set(keys) and sent[-1] == good


def test_when_every_key_is_rejected_the_manager_raises_authentication_error() -> None:
    with FakeOpenRouter(api_key="sk-or-v1-the-only-good-one-000") as fake:
        manager = orroute.AIModelManager(api_key=["sk-or-v1-bad-a-000000000",
                                                  "sk-or-v1-bad-b-000000000"],
                                         base_url=fake.base_url,
                                         fallbacks=["openai/gpt-4o-mini"], max_retries=0)
        with pytest.raises(orroute.AuthenticationError):
            manager.execute_task_sync(Task(messages="hi", max_tokens=5))
        assert len([r for r in fake.requests if r.endpoint == "/chat/completions"]) == 2
