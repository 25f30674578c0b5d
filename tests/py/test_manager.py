"""AIModelManager against FakeOpenRouter: fallbacks, breakers, Retry-After, rate limits, budgets."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b", "test/c"]  # synthetic: $1/M prompt, $2/M completion tokens


@pytest.fixture
def fake():
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw) -> orroute.AIModelManager:
    kw.setdefault("fallbacks", MODELS)
    kw.setdefault("retry_base_delay", 0.001)
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, **kw)


def chat_models(fake: FakeOpenRouter) -> list[str]:
    return [r.model for r in fake.requests if r.path.endswith("/chat/completions")]


def test_result_has_content_model_usage_cost_attempts_and_reasons(fake):
    m = manager(fake)
    r = m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert r.model == "test/a"
    assert r.content
    assert r.usage["prompt_tokens"] > 0 and r.usage["completion_tokens"] > 0
    assert isinstance(r.cost, Decimal) and r.cost > 0
    assert [a.model for a in r.attempts] == ["test/a"] and r.attempts[0].error is None
    assert any("fallback" in reason for reason in r.reasons)
    assert m.spent() == r.cost


def test_task_params_are_sent_as_json_writes_them(fake):
    # logit_bias is keyed by token id: callers pass ints (the openai SDK sends them as strings)
    params = {"logit_bias": {50256: -100, "15": 5}, "temperature": 0.25, "stop": ("a", "b"),
              "metadata": {"note": "café ☕"}}
    m = manager(fake)
    m.execute_task_sync(Task(messages="Say hello", max_tokens=20, params=params))
    asyncio.run(m.execute_task(Task(messages="Say hello", max_tokens=20, params=params)))
    sent = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 2
    for request in sent:
        assert request.json["logit_bias"] == {"50256": -100, "15": 5}
        assert request.json["temperature"] == 0.25 and request.json["stop"] == ["a", "b"]
        assert request.json["metadata"] == {"note": "café ☕"}
    with pytest.raises(orroute.InvalidArgumentError, match="keys must be str"):
        m.execute_task_sync(Task(messages="Say hello", params={"logit_bias": {(1, 2): 1}}))
    assert len(chat_models(fake)) == 2  # the bad one was refused before sending


def test_fallback_order_is_followed(fake):
    fake.fail("test/a", Fault.server_error())
    fake.fail("test/b", Fault.moderation())
    r = manager(fake, max_retries=1).execute_task_sync(Task(messages="hi"))
    assert r.model == "test/c"
    assert chat_models(fake) == ["test/a", "test/a", "test/b", "test/c"]
    assert [a.error for a in r.attempts] == ["server", "server", "moderation", None]


def test_payment_required_stops_without_fallbacks(fake):
    fake.fail("test/a", Fault.payment_required())
    with pytest.raises(orroute.PaymentRequiredError) as e:
        manager(fake).execute_task_sync(Task(messages="hi"))
    assert chat_models(fake) == ["test/a"]
    assert e.value.status_code == 402


def test_bad_request_and_auth_are_not_retried(fake):
    fake.fail("test/a", Fault.bad_request("invalid temperature"))
    with pytest.raises(orroute.BadRequestError):
        manager(fake).execute_task_sync(Task(messages="hi"))
    assert chat_models(fake) == ["test/a"]


def test_a_task_model_goes_before_the_configured_fallback_chain(fake):
    m = manager(fake)  # fallbacks test/a, test/b, test/c
    assert m.execute_task_sync(Task(messages="Say hello", max_tokens=20), model="test/c").model == (
        "test/c"
    )
    fake.fail("test/b", Fault.server_error(503))
    r = m.execute_task_sync(Task(messages="Say hello", max_tokens=20), model="test/b")
    assert r.model == "test/a"  # then the chain, without trying test/b twice
    assert chat_models(fake)[-1] == "test/a" and chat_models(fake).count("test/a") == 1


def test_context_too_long_skips_the_model_without_sending(fake):
    fake.add_model("test/tiny", context_length=64)
    r = manager(fake, fallbacks=["test/tiny", "test/b"]).execute_task_sync(
        Task(messages="word " * 500)
    )
    assert r.model == "test/b"
    assert r.attempts[0].error == "skipped:context_too_long"
    assert chat_models(fake) == ["test/b"]


def _images(n: int) -> Task:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    return Task(messages=[{"role": "user", "content": [{"type": "text", "text": "Which is it?"}, *[image] * n]}],
                max_tokens=20)


def test_a_prompt_whose_images_overflow_a_models_window_skips_it(fake):
    """Our count of a prompt is its text; the images are each model's rule (cost/prompt_bounds):
    the context check counted no image, so three images a gpt-4o-mini bills up to 48,169 tokens
    each were sent to its 128k window. Three fit gpt-4o (1,445 each)."""
    fake.add_model("vendor/gpt-4o-mini")
    fake.add_model("vendor/gpt-4o")
    r = manager(fake, fallbacks=["vendor/gpt-4o-mini", "vendor/gpt-4o"]).execute_task_sync(_images(3))
    assert r.model == "vendor/gpt-4o"
    assert r.attempts[0].error == "skipped:context_too_long"
    assert chat_models(fake) == ["vendor/gpt-4o"]
    # at detail "low" (2,833 each) they fit gpt-4o-mini
    low = _images(0)
    low.messages[0]["content"] += [{"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "low"}}] * 3
    assert manager(fake, fallbacks=["vendor/gpt-4o-mini", "vendor/gpt-4o"]).execute_task_sync(low).model == \
        "vendor/gpt-4o-mini"


def test_the_plans_prompt_tokens_count_the_images_at_the_models_rule(fake):
    """plan()["prompt_tokens"] was the text alone once images were priced apart: ten images on
    gpt-4o-mini planned as a dozen tokens."""
    fake.add_model("vendor/gpt-4o-mini", context_length=1_000_000)
    fake.add_model("vendor/gpt-4o")
    text = manager(fake, fallbacks=["vendor/gpt-4o"]).plan(_images(0))["prompt_tokens"]
    assert manager(fake, fallbacks=["vendor/gpt-4o"]).plan(_images(10))["prompt_tokens"] == text + 10 * 1445
    assert manager(fake, fallbacks=["vendor/gpt-4o-mini"]).plan(_images(10))["prompt_tokens"] == text + 10 * 48_169


def test_images_past_a_model_s_window_skip_it_without_sending(fake):
    """rev23: 130 images Gemini bills at least 258 tokens each (33,540 > a 32,768 window) went to
    the model that must reject them while our count was the text alone."""
    fake.add_model("google/gemini-2.5-flash-lite", context_length=32_768)
    fake.add_model("test/long", context_length=1_000_000)
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    task = Task(messages=[{"role": "user", "content": [{"type": "text", "text": "Which is a cat?"},
                                                       *[image] * 130]}], max_tokens=100)
    r = manager(fake, fallbacks=["google/gemini-2.5-flash-lite", "test/long"]).execute_task_sync(task)
    assert r.attempts[0].error == "skipped:context_too_long"
    assert chat_models(fake) == ["test/long"]


def test_circuit_opens_then_closes_after_recovery(fake):
    m = manager(
        fake,
        fallbacks=["test/a", "test/b"],
        max_retries=0,
        breaker={"failures": 3, "cooldown": 0.3, "successes_to_close": 1},
    )
    fake.fail("test/a", Fault.server_error())
    for _ in range(3):
        assert m.execute_task_sync(Task(messages="hi")).model == "test/b"
    assert m.health()["models"]["test/a"]["state"] == "circuit_open"
    seen = len(fake.requests_for("test/a"))
    for _ in range(5):
        r = m.execute_task_sync(Task(messages="hi"))
        assert r.attempts[0].error == "skipped:circuit_open"
    assert len(fake.requests_for("test/a")) == seen  # the open circuit sends nothing
    fake.fail("test/a", None)
    fake.wait_until(lambda: False, timeout=0.35)  # let the cooldown pass
    assert m.execute_task_sync(Task(messages="hi")).model == "test/a"  # the probe succeeds
    assert m.health()["models"]["test/a"]["state"] == "ok"


def test_retry_after_is_waited(fake):
    fake.fail("test/a", Fault.rate_limit(retry_after=0.3), times=1)
    r = manager(fake).execute_task_sync(Task(messages="hi"))
    assert r.model == "test/a"
    times = [q.time for q in fake.requests_for("test/a")]
    assert len(times) == 2 and times[1] - times[0] >= 0.29
    assert r.attempts[1].waited >= 0.29


def test_long_retry_after_moves_on_and_holds_the_model(fake):
    fake.fail("test/a", Fault.rate_limit(retry_after=60), times=1)
    m = manager(fake, max_retry_wait=5)
    assert m.execute_task_sync(Task(messages="hi")).model == "test/b"
    assert m.health()["models"]["test/a"]["state"] == "rate_limited"
    r = m.execute_task_sync(Task(messages="again"))
    assert r.model == "test/b" and r.attempts[0].error == "skipped:rate_limited"
    assert len(fake.requests_for("test/a")) == 1


def test_rate_limits_are_never_exceeded_at_the_server(fake):
    window, limit = 0.6, 3
    m = manager(
        fake,
        fallbacks=["test/a"],
        limits={"test/a": {"limit_requests": limit, "window": window}},
        max_admission_wait=10,
    )

    async def main():
        return await asyncio.gather(*(m.execute_task(Task(messages=f"q{i}")) for i in range(10)))

    results = asyncio.run(main())
    assert all(r.model == "test/a" for r in results)
    times = sorted(q.time for q in fake.requests_for("test/a"))
    assert len(times) == 10
    # Arrival jitter between the client's send and the server's clock: on a loaded 2-core machine
    # one request can be delayed by tens of ms and arrive bunched with the next. A limiter that
    # does not hold would send all 10 within a few ms, far inside window - slack.
    slack = 0.2
    for i in range(len(times)):
        in_window = [t for t in times[i:] if t - times[i] < window - slack]
        assert len(in_window) <= limit


def test_64_concurrent_tasks_never_push_spend_past_the_budget(fake):
    budget = Decimal("0.0005")
    m = manager(fake, fallbacks=["test/a"], budget=budget)

    async def one(i):
        try:
            return await m.execute_task(Task(messages=f"task {i}", max_tokens=100))
        except orroute.BudgetExceededError:
            return None

    async def main():
        return await asyncio.gather(*(one(i) for i in range(64)))

    results = asyncio.run(main())
    done = [r for r in results if r is not None]
    assert 0 < len(done) < 64
    assert m.spent() <= budget
    assert sum(r.cost for r in done) == m.spent()
    assert m.reserved() == (0, Decimal(0))


def test_budget_error_before_any_network_call(fake):
    m = manager(fake, budget=Decimal("0.0000001"))
    with pytest.raises(orroute.BudgetError):
        m.execute_task_sync(Task(messages="hi", max_tokens=1000))
    assert chat_models(fake) == []


def test_task_budget_skips_models_it_cannot_afford(fake):
    fake.add_model("test/pricey", prompt_price="0.01", completion_price="0.01")
    with pytest.raises(orroute.BudgetError):
        manager(fake, fallbacks=["test/pricey"]).execute_task_sync(
            Task(messages="hi", max_tokens=100, budget="0.001")
        )
    r = manager(fake, fallbacks=["test/pricey", "test/a"]).execute_task_sync(
        Task(messages="hi", max_tokens=100, budget="0.001")
    )
    assert r.model == "test/a"
    assert chat_models(fake) == ["test/a"]


def test_a_cancelled_task_holds_nothing_and_books_what_the_upstream_bills(fake):
    # A non-streamed call the upstream received runs to its end and is billed in full
    # (test_abandoned_calls.py has the other cases).
    fake.fail("test/a", Fault.hang())
    m = manager(fake, fallbacks=["test/a"], budget=1)

    async def main():
        t = asyncio.create_task(m.execute_task(Task(messages="hi", max_tokens=50)))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if fake.requests_for("test/a"):
                break
        assert m.reserved()[0] == 1
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    assert fake.wait_until(lambda: fake.open_connections == 0, timeout=5)
    # the abandoned call is booked by the settle worker, a moment after the connection closed
    assert fake.wait_until(lambda: m.reserved() == (0, Decimal(0)), timeout=5)
    assert m.spent() == m.plan(Task(messages="hi", max_tokens=50))["estimate"] > 0


def test_stream_task_yields_chunks_that_join_to_the_answer(fake):
    m = manager(fake)
    expected = m.execute_task_sync(Task(messages="stream me", max_tokens=30)).content

    async def main():
        parts = []
        async for chunk in m.stream_task(Task(messages="stream me", max_tokens=30)):
            for choice in chunk.get("choices", []):
                parts.append(choice.get("delta", {}).get("content") or "")
        return "".join(parts)

    assert asyncio.run(main()) == expected


def test_stream_task_falls_back_before_the_first_chunk(fake):
    fake.fail("test/a", Fault.server_error())

    async def main():
        return [c async for c in manager(fake, max_retries=0).stream_task(Task(messages="x"))]

    chunks = asyncio.run(main())
    assert chunks and all(c.get("model", "test/b") == "test/b" for c in chunks)



def test_a_stream_event_that_is_not_json_fails_the_stream_as_in_the_client(fake):
    # mid-stream garbage is not skipped: the answer would look complete while it is not
    fake.fail("test/a", Fault.malformed_json(after_tokens=2))

    async def main():
        return [c async for c in manager(fake, max_retries=0).stream_task(Task(messages="x"))]

    with pytest.raises(orroute.OrRouteError, match="not a JSON object"):
        asyncio.run(main())

def test_metrics_and_health_report_per_model_figures(fake):
    fake.fail("test/a", Fault.server_error(), times=1)
    m = manager(fake, max_retries=1)
    for i in range(5):
        m.execute_task_sync(Task(messages=f"hi {i}"))
    stats = m.metrics()["test/a"]
    assert stats["successes"] == 5 and stats["failures"] == 1
    assert stats["errors"] == {"server": 1}
    assert stats["retries"] == 1
    assert stats["latency_p50"] > 0 and stats["latency_p99"] >= stats["latency_p50"]
    assert stats["cost_per_success"] > 0
    assert m.health()["overall"] in ("ok", "degraded")


def test_metrics_as_dataframe(fake):
    pd = pytest.importorskip("pandas")
    m = manager(fake)
    m.execute_task_sync(Task(messages="hi"))
    frame = m.metrics(as_dataframe=True)
    assert isinstance(frame, pd.DataFrame) and "latency_p95" in frame.columns
    assert frame.loc["test/a", "successes"] == 1


def test_record_feedback(fake):
    m = manager(fake)
    r = m.execute_task_sync(Task(messages="hi"))
    m.record_feedback(r.id, 0.9)
    with pytest.raises(orroute.InvalidArgumentError):
        m.record_feedback(r.id, 2)
    with pytest.raises(KeyError):
        m.record_feedback("nope", 0.5)


def test_complexity_is_analyzed_and_reported(fake):
    m = manager(fake)
    simple = m.execute_task_sync(Task(messages="What is the capital of France?"))
    hard = m.execute_task_sync(
        Task(
            messages="Implement a lock-free queue in C++ step by step, then analyze and prove "
            "its correctness:\n```cpp\nstruct Q { std::atomic<int> head; };\n```"
        )
    )
    assert simple.complexity["tier"] == "economy"
    assert hard.complexity["score"] > simple.complexity["score"]
    assert hard.task_type == "coding"


def test_conversation_keeps_history_within_bounds_with_a_summarizer(fake):
    m = manager(fake)
    summaries = []

    def summarize(messages):
        summaries.append(len(messages))
        return "earlier turns"

    conv = m.conversation(
        system="be brief", max_history_tokens=200, keep_recent=2, summarizer=summarize
    )
    for i in range(6):
        conv.send_sync(f"question {i} " + "word " * 40)
    assert summaries
    assert conv.messages[0] == {"role": "system", "content": "be brief"}
    assert "earlier turns" in conv.messages[1]["content"]
    assert len(conv.history) <= 3
    last = fake.requests_for("test/a")[-1].messages
    assert last[0]["content"] == "be brief"


def test_conversation_switch_model_and_budget(fake):
    m = manager(fake, fallbacks=None, catalog=None)
    conv = m.conversation(model="test/c", budget="1")
    assert conv.send_sync("hi").model == "test/c"
    conv.switch_model("test/b")
    assert conv.send_sync("again").model == "test/b"
    assert conv.spent > 0


def test_async_and_sync_agree(fake):
    m = manager(fake)
    a = asyncio.run(m.execute_task(Task(messages="same", max_tokens=10)))
    b = m.execute_task_sync(Task(messages="same", max_tokens=10))
    assert a.content == b.content and a.model == b.model


def test_api_key_never_in_repr(fake):
    m = manager(fake)
    assert "sk-or-test" not in repr(m)


def test_without_a_reported_cost_every_usage_breakdown_is_priced() -> None:
    """An OpenAI-compatible server that sends no ``usage.cost``: the engine prices the usage from
    the catalog, input and output audio tokens at the model's audio prices."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            out = json.dumps({
                "id": "gen-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "hi"}}],
                "usage": usage,
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        m = orroute.AIModelManager(
            api_key="sk-or-test", base_url=f"http://127.0.0.1:{server.server_port}",
            ledger=":memory:", refresh_catalog=False, fallbacks=["openai/gpt-audio"],
        )
        # a prompt of some 500 tokens: the 1,000 reported are within twice our count and 512
        r = m.execute_task_sync(Task(messages="hi " * 500, max_tokens=500))
    finally:
        server.shutdown()
        server.server_close()
    # 400 x 0.0000025 + 600 x 0.000032 (audio) + 100 x 0.00001 + 400 x 0.000064 (audio_output)
    assert r.model == "openai/gpt-audio"
    assert r.cost == Decimal("0.0468")


def test_a_task_s_required_capabilities_narrow_the_ranked_candidates():
    # The manager dropped Task(capabilities=...) when it made the engine task, and so ranked
    # models that cannot take the task.
    m = orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9/api/v1",
                               refresh_catalog=False)
    models = m.selector.models
    plain = m.plan(Task(messages="Say hi"))["candidates"]
    assert any("vision" not in models[c].capabilities for c in plain)  # else this proves nothing
    vision = m.plan(Task(messages="Say hi", capabilities=["vision"]))["candidates"]
    assert vision and all("vision" in models[c].capabilities for c in vision)
