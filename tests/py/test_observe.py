"""Logs, callbacks and OpenTelemetry spans of the manager's, the client's and the gateway's calls."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import orroute
from orroute import Task
from orroute.observe import CallEvent, flush_callbacks
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b"]
KEY = "sk-or-v1-test-key-not-real-observe"  # plainly fake


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw: Any) -> orroute.AIModelManager:
    kw.setdefault("fallbacks", ["test/a"])
    kw.setdefault("retry_base_delay", 0.001)
    kw.setdefault("max_retries", 0)
    return orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, **kw)


def client(fake: FakeOpenRouter, **kw: Any) -> orroute.OpenRouter:
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0, **kw)


def call_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "orroute" and " call " in r.getMessage()]


# ---- the log line ------------------------------------------------------------------------------


def test_one_info_line_per_call_with_model_provider_tokens_cost_latency_outcome(
        fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orroute")
    r = manager(fake).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    (rec,) = call_lines(caplog)
    msg = rec.getMessage()
    assert rec.levelno == logging.INFO
    assert "model=test/a" in msg and "outcome=ok" in msg
    assert f"prompt_tokens={r.usage.prompt_tokens} " in msg
    assert f"completion_tokens={r.usage.completion_tokens} " in msg
    assert f"cost={r.cost:f} " in msg
    assert "provider=" in msg and "provider=-" not in msg  # the fake names its provider
    assert "latency_ms=" in msg
    assert rec.orroute_call["outcome"] == "ok"  # structured, for JSON log handlers


def test_nothing_is_logged_above_info(fake: FakeOpenRouter,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="orroute")
    manager(fake).execute_task_sync(Task(messages="hi", max_tokens=5))
    assert call_lines(caplog) == []


def test_a_key_the_upstream_echoes_back_is_never_logged(
        fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="orroute")
    fake.fail("test/a", Fault.bad_request(f"invalid key {KEY} (Bearer {KEY})"))
    errors: list[CallEvent] = []
    with pytest.raises(orroute.BadRequestError):
        manager(fake, on_error=errors.append).execute_task_sync(Task(messages="hi"))
    fake.fail("test/a", Fault.bad_request(f"invalid key {KEY}"))
    with pytest.raises(orroute.BadRequestError):
        client(fake, on_error=errors.append).chat.completions.create(
            model="test/a", messages=[{"role": "user", "content": "hi"}])
    assert flush_callbacks()
    lines = call_lines(caplog)
    assert len(lines) == 2 and all("outcome=BadRequestError" in r.getMessage() for r in lines)
    assert "invalid key" in lines[0].getMessage()  # the message is there, the key is not
    assert KEY not in caplog.text and KEY[8:] not in caplog.text
    assert [e.outcome for e in errors] == ["BadRequestError", "BadRequestError"]
    assert [e.status for e in errors] == [400, 400]


def test_client_text_cannot_forge_log_lines(fake: FakeOpenRouter,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orroute")
    with pytest.raises(orroute.APIError):
        client(fake).chat.completions.create(
            model="nope/x\nINFO orroute forged outcome=ok", messages=[{"role": "user",
                                                                       "content": "hi"}])
    (rec,) = call_lines(caplog)
    assert "\n" not in rec.getMessage() and "\\n" in rec.getMessage()


# ---- callbacks -----------------------------------------------------------------------------------


def test_manager_callbacks_sync_and_async_see_request_and_response(fake: FakeOpenRouter) -> None:
    requests: list[CallEvent] = []
    responses: list[CallEvent] = []
    async_seen: list[tuple[str, bool]] = []

    async def on_response_async(e: CallEvent) -> None:
        await asyncio.sleep(0)
        async_seen.append((e.response_model, threading.current_thread() is main))

    main = threading.current_thread()
    m = manager(fake, on_request=requests.append, on_response=[responses.append,
                                                               on_response_async])

    async def go() -> orroute.TaskResult:
        r = await m.execute_task(Task(messages="Say hello", max_tokens=20))
        await asyncio.sleep(0.05)  # the async callback runs as a task on this loop
        return r

    r = asyncio.run(go())
    assert flush_callbacks()
    (req,) = requests
    (resp,) = responses
    assert req.source == "manager" and req.messages[0]["content"] == "Say hello"
    assert req.params == {"max_tokens": 20} and req.call_id == resp.call_id
    assert resp.result is r and resp.response_model == "test/a" and resp.outcome == "ok"
    assert (resp.prompt_tokens, resp.completion_tokens) == (r.usage.prompt_tokens,
                                                            r.usage.completion_tokens)
    assert resp.cost == r.cost and resp.latency > 0
    assert async_seen == [("test/a", True)]  # on the caller's loop, not a worker thread


def test_manager_stream_fires_response_at_the_end(fake: FakeOpenRouter) -> None:
    responses: list[CallEvent] = []
    m = manager(fake, on_response=responses.append)

    async def go() -> int:
        return len([c async for c in m.stream_task(Task(messages="Say hello", max_tokens=20))])

    chunks = asyncio.run(go())
    assert flush_callbacks()
    assert chunks > 1
    (resp,) = responses
    assert resp.stream and resp.outcome == "ok" and resp.completion_tokens > 0


def test_on_error_gets_the_exception(fake: FakeOpenRouter) -> None:
    fake.fail("test/a", Fault.server_error())
    errors: list[CallEvent] = []
    m = manager(fake, on_error=errors.append)
    with pytest.raises(orroute.InternalServerError) as exc:
        m.execute_task_sync(Task(messages="hi"))
    assert flush_callbacks()
    (e,) = errors
    assert e.error is exc.value and e.outcome == "InternalServerError" and e.status == 500


def test_on_budget_alert_fires_with_the_alert(fake: FakeOpenRouter, tmp_path: Path) -> None:
    tracker = orroute.CostTracker(tmp_path / "l.sqlite3")
    tracker.set_budget("0.0004", thresholds=[50])
    alerts: list[Any] = []
    m = manager(fake, ledger=tracker, on_budget_alert=alerts.append)
    with pytest.raises(orroute.BudgetExceededError):
        for _ in range(30):
            m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert flush_callbacks()
    assert [a.threshold_pct for a in alerts] == [50]
    assert alerts[0].limit == Decimal("0.0004")


def test_client_callbacks_plain_and_stream(fake: FakeOpenRouter) -> None:
    events: list[tuple[str, CallEvent]] = []
    c = client(fake, on_request=lambda e: events.append(("req", e)),
               on_response=lambda e: events.append(("resp", e)))
    r = c.chat.completions.create(model="test/a", messages=[{"role": "user", "content": "hi"}],
                                  temperature=0)
    with c.chat.completions.create(model="test/b", messages=[{"role": "user", "content": "hi"}],
                                   stream=True) as s:
        text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
    assert flush_callbacks()
    kinds = [k for k, _ in events]
    assert kinds == ["req", "resp", "req", "resp"]
    plain, streamed = events[1][1], events[3][1]
    assert plain.result is r and plain.params == {"temperature": 0}
    assert plain.prompt_tokens == r.usage.prompt_tokens and plain.cost == r.usage.cost_decimal
    assert text and streamed.stream and streamed.response_model == "test/b"
    assert streamed.completion_tokens > 0 and streamed.result is None


def test_client_stream_closed_early_is_reported_cancelled(fake: FakeOpenRouter) -> None:
    errors: list[CallEvent] = []
    c = client(fake, on_error=errors.append)
    with c.chat.completions.create(model="test/a", messages=[{"role": "user", "content": "hi"}],
                                   stream=True, max_tokens=200) as s:
        next(iter(s))
    assert flush_callbacks()
    assert [e.outcome for e in errors] == ["cancelled"]


def test_a_raising_callback_is_logged_and_the_call_succeeds(
        fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[CallEvent] = []

    def broken(e: CallEvent) -> None:
        raise RuntimeError("callback bug")

    m = manager(fake, on_request=broken, on_response=[broken, seen.append])
    r = m.execute_task_sync(Task(messages="hi", max_tokens=5))
    assert flush_callbacks()
    assert r.content and len(seen) == 1  # the next callback still ran
    failures = [x for x in caplog.records if "callback" in x.getMessage() and x.exc_info]
    assert len(failures) == 2 and "broken" in failures[0].getMessage()


def test_a_hung_callback_neither_delays_the_call_nor_stops_later_callbacks(
        fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    seen: list[str] = []

    def hangs(e: CallEvent) -> None:
        if not seen:  # the first call's callback hangs
            seen.append("hung")
            release.wait(30)

    m = manager(fake, on_response=[hangs, lambda e: seen.append(e.outcome)])
    m.callbacks.callback_timeout = 0.2
    t0 = time.monotonic()
    m.execute_task_sync(Task(messages="hi", max_tokens=5))
    first = time.monotonic() - t0
    time.sleep(0.4)  # past the limit
    m.execute_task_sync(Task(messages="hi", max_tokens=5))
    try:
        assert flush_callbacks(5)
        assert first < 5  # the call did not wait for its callback
        # the callbacks queued behind the hung one (the first call's) and the second call's ran
        assert seen == ["hung", "ok", "ok"]
        assert any("has run for more than" in x.getMessage() for x in caplog.records)
    finally:
        release.set()


def test_an_async_callback_that_never_ends_is_cancelled_and_does_not_block_the_loop(
        fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    cancelled = []

    async def forever(e: CallEvent) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(e.call_id)
            raise

    m = manager(fake, on_response=forever)
    m.callbacks.callback_timeout = 0.2

    async def go() -> float:
        t0 = time.monotonic()
        await m.execute_task(Task(messages="hi", max_tokens=5))
        await m.execute_task(Task(messages="hi", max_tokens=5))  # the loop is free
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.5)
        return elapsed

    elapsed = asyncio.run(go())
    assert elapsed < 5 and len(cancelled) == 2
    assert any("was cancelled" in x.getMessage() for x in caplog.records)


def test_gateway_callbacks(fake: FakeOpenRouter, tmp_path: Path) -> None:
    import openai

    from orroute.gateway import Gateway, GatewaySettings

    events: list[CallEvent] = []
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings, on_request=events.append, on_response=events.append,
                 on_error=events.append) as gw:
        key = gw.keys.create("proj")[0]
        oc = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        r = oc.chat.completions.create(model="test/a", messages=[{"role": "user",
                                                                   "content": "hi"}])
        chunks = list(oc.chat.completions.create(
            model="test/b", messages=[{"role": "user", "content": "hi"}], stream=True))
        fake.fail("test/a", Fault.server_error())
        with pytest.raises(openai.APIStatusError):
            oc.chat.completions.create(model="test/a", messages=[{"role": "user",
                                                                   "content": "hi"}])
        oc.close()
    assert flush_callbacks()
    assert chunks
    assert all(e.source == "gateway" and e.project == "proj" for e in events)
    assert [e.outcome or "req" for e in events] == ["req", "ok", "req", "ok", "req",
                                                    "InternalServerError"]
    assert events[1].response_model == "test/a"
    assert events[1].completion_tokens == r.usage.completion_tokens
    assert events[3].stream and events[3].response_model == "test/b"


# ---- OpenTelemetry ------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    """A tracer provider with an in-memory exporter, set as the global one for this test."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = None, False
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE._done = saved


def test_spans_follow_the_genai_conventions(fake: FakeOpenRouter, spans: Any) -> None:
    r = manager(fake).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    c = client(fake).chat.completions.create(
        model="test/b", messages=[{"role": "user", "content": "hi"}], temperature=0.5)
    manager_span, client_span = spans.get_finished_spans()
    a = manager_span.attributes
    assert manager_span.name == "chat" and manager_span.kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat" and a["orroute.source"] == "manager"
    assert a["gen_ai.response.model"] == "test/a" and a["gen_ai.request.max_tokens"] == 20
    assert a["gen_ai.usage.input_tokens"] == r.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == r.usage.completion_tokens
    assert a["orroute.cost_usd"] == pytest.approx(float(r.cost))
    assert a["gen_ai.system"] == r.response["provider"]
    assert a["gen_ai.response.finish_reasons"] == (r.response["choices"][0]["finish_reason"],)
    assert manager_span.status.is_ok
    b = client_span.attributes
    assert client_span.name == "chat test/b" and b["gen_ai.request.model"] == "test/b"
    assert b["gen_ai.request.temperature"] == 0.5 and b["gen_ai.response.id"] == c.id
    assert b["gen_ai.usage.output_tokens"] == c.usage.completion_tokens
    assert manager_span.end_time - manager_span.start_time > 0


def test_a_failed_call_has_an_error_span(fake: FakeOpenRouter, spans: Any) -> None:
    fake.fail("test/a", Fault.rate_limit(retry_after=0))
    with pytest.raises(orroute.RateLimitError):
        client(fake).chat.completions.create(model="test/a",
                                             messages=[{"role": "user", "content": "hi"}])
    (span,) = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "RateLimitError"


def test_without_opentelemetry_in_use_nothing_is_imported(fake: FakeOpenRouter) -> None:
    code = (
        "import sys, orroute\n"
        f"m = orroute.AIModelManager(api_key='sk-or-x', base_url={fake.base_url!r},"
        " fallbacks=['test/a'])\n"
        "m.execute_task_sync(orroute.Task(messages='hi', max_tokens=5))\n"
        "print(sorted(k for k in sys.modules if k.startswith('opentelemetry')))\n"
    )
    env = {"PYTHONPATH": str(Path(orroute.__file__).resolve().parents[1]), "PATH": "/usr/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_a_cache_hit_span_says_so_with_the_saving(fake: FakeOpenRouter, spans: Any,
                                                  tmp_path: Path) -> None:
    from orroute.cache import ResponseCache

    m = manager(fake, cache=ResponseCache(tmp_path / "c.sqlite3"))
    first = m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    miss, hit = spans.get_finished_spans()
    assert miss.attributes["orroute.cache_hit"] is False
    assert hit.attributes["orroute.cache_hit"] is True and hit.status.is_ok
    assert hit.attributes["orroute.cost_usd"] == 0
    assert hit.attributes["orroute.saved_usd"] == pytest.approx(float(first.cost))
    assert hit.attributes["gen_ai.usage.output_tokens"] == first.usage.completion_tokens


def test_the_gateway_never_logs_its_upstream_key_echoed_back(
        fake: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import openai

    from orroute.gateway import Gateway, GatewaySettings

    caplog.set_level(logging.DEBUG, logger="orroute")
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings) as gw:
        key = gw.keys.create("proj")[0]
        oc = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        fake.fail("test/a", Fault.bad_request(f"invalid key {KEY}"))
        with pytest.raises(openai.BadRequestError):
            oc.chat.completions.create(model="test/a", messages=[{"role": "user",
                                                                   "content": "hi"}])
        oc.close()
    lines = [r for r in call_lines(caplog) if r.getMessage().startswith("gateway call")]
    assert len(lines) == 1 and "outcome=BadRequestError" in lines[0].getMessage()
    assert KEY not in caplog.text and KEY[8:] not in caplog.text


def test_a_callback_added_later_watches_calls_of_the_observer_and_its_twins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the per-call "is anything watching?" reads a list of every callback kept by add(): one
    # added after construction, or through a twin sharing the callbacks (with_source), counts
    from orroute.observe import Observer

    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)  # no tracing
    logging.getLogger("orroute").setLevel(logging.WARNING)
    try:
        obs = Observer("manager")
        twin = obs.with_source("gateway")
        assert not obs._watched() and not twin._watched()
        twin.add("on_error", lambda event: None)
        assert obs._watched() and twin._watched()
        assert Observer("client", on_response=[lambda event: None])._watched()
    finally:
        logging.getLogger("orroute").setLevel(logging.NOTSET)


def test_the_per_call_check_follows_every_logging_change(monkeypatch: pytest.MonkeyPatch) -> None:
    # _watched reads logging's own cached answer (Logger._cache) when it has one: every way of
    # changing what isEnabledFor(INFO) says must show at the next check, each asked twice (the
    # second read comes from the cache the first one filled)
    from orroute.observe import Observer

    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)  # no tracing
    log, root = logging.getLogger("orroute"), logging.getLogger()
    obs = Observer("manager")

    def watched() -> bool:
        first, second = obs._watched(), obs._watched()
        assert first == second == log.isEnabledFor(logging.INFO)
        return first

    saved_root = root.level
    try:
        log.setLevel(logging.WARNING)
        assert not watched()
        log.setLevel(logging.INFO)
        assert watched()
        log.disabled = True  # what dictConfig does to existing loggers: no cache change
        assert not watched()
        log.disabled = False
        assert watched()
        logging.disable(logging.INFO)
        assert not watched()
        logging.disable(logging.NOTSET)
        assert watched()
        log.setLevel(logging.NOTSET)  # the level comes from the root's
        root.setLevel(logging.WARNING)
        assert not watched()
        root.setLevel(logging.DEBUG)
        assert watched()
    finally:
        log.disabled = False
        logging.disable(logging.NOTSET)
        log.setLevel(logging.NOTSET)
        root.setLevel(saved_root)


def test_the_per_call_check_asks_a_logger_class_of_its_own() -> None:
    # a logger class with its own isEnabledFor (logging.setLoggerClass before orroute's logger
    # is made) is asked on every check: its answers are not logging's cache
    script = (
        "import logging, sys\n"
        "class Loud(logging.Logger):\n"
        "    def isEnabledFor(self, level):  # logging's cache filled, then overruled\n"
        "        return super().isEnabledFor(level) or Loud.on\n"
        "Loud.on = False\n"
        "logging.setLoggerClass(Loud)\n"
        "logging.getLogger('orroute').setLevel(logging.WARNING)\n"
        "from orroute.observe import Observer\n"
        "obs = Observer('manager')\n"
        "assert not obs._watched() and not obs._watched()\n"
        "Loud.on = True\n"
        "assert obs._watched()\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("how", ["instance", "class"])
def test_the_per_call_check_asks_a_logger_whose_is_enabled_for_was_replaced(
        monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    # logging's cached answer is isEnabledFor's only while the logger answers with
    # logging.Logger's own: one replaced on the instance (mock.patch.object, a test's idiom) or
    # by a class given to the logger after it was made is asked, as enabled() asks it
    from orroute.observe import Observer

    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)  # no tracing
    log = logging.getLogger("orroute")

    class Loud(logging.Logger):
        def isEnabledFor(self, level: int) -> bool:
            return True

    obs = Observer("manager")
    log.setLevel(logging.WARNING)
    try:
        assert not obs._watched()  # logging's cache now says INFO is off
        if how == "instance":
            with mock.patch.object(log, "isEnabledFor", lambda level: True):
                assert log.isEnabledFor(logging.INFO)
                assert obs._watched()
            assert not obs._watched()  # logging.Logger's own again: its cache is read again
        else:
            monkeypatch.setattr(log, "__class__", Loud)
            assert log.isEnabledFor(logging.INFO)
            assert obs._watched()
    finally:
        log.setLevel(logging.NOTSET)
