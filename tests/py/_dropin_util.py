"""What the in-process drop-in tests share (test_transport.py, test_frameworks_*.py): a
FakeOpenRouter upstream, a manager on a fresh ledger, and the ledger rows a test's calls left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import orroute
from orroute.testing import FakeOpenRouter

UPSTREAM_KEY = "sk-or-v1-dropin-test-not-a-real-key"
MODEL = "openai/gpt-4o-mini"


@pytest.fixture
def event_loop_closed_after_the_test() -> Iterator[None]:
    """A thread event loop for the test, closed after it. Some frameworks run on the thread's
    event loop and make one when there is none, never closing it (pydantic-ai's
    ``Agent.run_sync``, litellm's service logger): dropped by the next ``asyncio.run``, it was
    collected unclosed during some later test, whose run then failed on that ResourceWarning.
    Use it with ``pytestmark = pytest.mark.usefixtures("event_loop_closed_after_the_test")``."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def dropin_fixtures() -> tuple[Callable[..., Any], ...]:
    """The fixtures ``fake`` (a FakeOpenRouter for the module, reset per test), ``tracker`` (a
    fresh ledger) and ``manager`` (a manager on both). Assign at module level:
    ``fake, tracker, manager = dropin_fixtures()``."""

    @pytest.fixture(scope="module", name="fake")
    def fake_fixture() -> Iterator[FakeOpenRouter]:
        with FakeOpenRouter(api_key=UPSTREAM_KEY) as f:
            yield f

    @pytest.fixture(name="tracker")
    def tracker_fixture(tmp_path: Path) -> Iterator[orroute.CostTracker]:
        t = orroute.CostTracker(tmp_path / "ledger.sqlite3")
        yield t
        t.close()

    @pytest.fixture(name="manager")
    def manager_fixture(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> Any:
        fake.reset()
        return make_manager(fake, tracker)

    return fake_fixture, tracker_fixture, manager_fixture


def make_manager(fake: FakeOpenRouter, tracker: orroute.CostTracker, **kwargs: Any) -> Any:
    """A manager on the fake and the test's ledger (the catalog is the bundled snapshot)."""
    return orroute.AIModelManager(api_key=UPSTREAM_KEY, base_url=fake.base_url, ledger=tracker,
                                  refresh_catalog=False, **kwargs)


def ledger_rows(tracker: orroute.CostTracker) -> list[Any]:
    return tracker.usage_history()


class Weather(pydantic.BaseModel):
    """The structured output every framework test asks for (a schema the fake fills in)."""

    city: str
    celsius: float


WEATHER_TOOL_RESULT = "sunny, 21 degrees"


def get_weather(city: str) -> str:
    """Returns the weather in a city (the tool every framework test offers)."""
    return f"{city}: {WEATHER_TOOL_RESULT}"


def assert_booked(tracker: orroute.CostTracker, calls: int, fake: FakeOpenRouter) -> None:
    """Every upstream call the framework made is in the ledger, settled."""
    rows = ledger_rows(tracker)
    assert len(rows) == calls == fake.request_count, (len(rows), calls, fake.request_count)
    assert all(r.outcome == "ok" and r.cost > 0 for r in rows)


def tool_result_sent(fake: FakeOpenRouter) -> bool:
    """The framework ran the tool and sent its result back upstream."""
    last = fake.requests[-1].messages
    return any(m.get("role") == "tool" and WEATHER_TOOL_RESULT in str(m.get("content"))
               for m in last)
