"""The response cache: hit, miss, TTL, sampling, streaming replay, the ledger row with the saving,
no reservation on a hit, opt-outs, the Redis backend, the gateway and ``orroute cache``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import Task
from orroute.analytics import CACHE_HIT_OUTCOME
from orroute.cache import ResponseCache
from orroute.observe import CallEvent, flush_callbacks
from orroute.testing import FakeOpenRouter

MODELS = ["test/a", "test/b"]
KEY = "sk-or-v1-test-key-not-real-cache"


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def chats(fake: FakeOpenRouter) -> int:
    return sum(r.path.endswith("/chat/completions") for r in fake.requests)


def manager(fake: FakeOpenRouter, **kw: Any) -> orroute.AIModelManager:
    kw.setdefault("fallbacks", ["test/a"])
    return orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, **kw)


def client(fake: FakeOpenRouter, **kw: Any) -> orroute.OpenRouter:
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0, **kw)


MSG = [{"role": "user", "content": "What is 2+2?"}]


# ---- the manager (the engine consults the cache) -------------------------------------------------


def test_a_repeated_task_is_answered_from_the_cache_for_free(fake: FakeOpenRouter,
                                                             tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite3"
    m = manager(fake, ledger=str(ledger), cache=True)
    first = m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    second = m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert chats(fake) == 1
    assert second.content == first.content and second.model == first.model
    assert first.cost > 0 and second.cost == 0 and second.cost_source == "cache"
    assert second.usage == first.usage
    assert second.response["orroute_cache"] == {"hit": True, "saved": str(first.cost)}
    assert second.response["usage"]["cost"] == 0
    rows = orroute.CostTracker(ledger).usage_history()
    assert [r.outcome for r in rows] == ["ok", CACHE_HIT_OUTCOME]
    hit = rows[1]
    assert hit.cost == 0 and hit.estimated_cost == first.cost  # the amount it saved
    assert (hit.prompt_tokens, hit.completion_tokens) == (first.usage.prompt_tokens,
                                                          first.usage.completion_tokens)
    assert m.spent() == first.cost
    stats = m.cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.saved == first.cost.quantize(Decimal("1e-9"))


def test_a_different_question_misses(fake: FakeOpenRouter, tmp_path: Path) -> None:
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.execute_task_sync(Task(messages=[{"role": "user", "content": "What is 3+3?"}],
                             max_tokens=20))
    m.execute_task_sync(Task(messages=MSG, max_tokens=21))  # another sampling parameter
    assert chats(fake) == 3


def test_a_hit_reserves_nothing_so_it_passes_a_spent_budget(fake: FakeOpenRouter,
                                                            tmp_path: Path) -> None:
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    first = m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.set_budget(first.cost)  # exactly spent: any new call is refused before sending
    with pytest.raises(orroute.BudgetExceededError):
        m.execute_task_sync(Task(messages=[{"role": "user", "content": "new"}], max_tokens=20))
    again = m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert again.cost == 0 and again.content == first.content
    assert m.reserved() == (0, Decimal(0)) and chats(fake) == 1


def test_the_emergency_cutoff_refuses_a_hit_too(fake: FakeOpenRouter, tmp_path: Path) -> None:
    # docs/cost.md: the cutoff refuses every call, free ones included; a cached answer is one.
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.cost_tracker.cutoff("runaway agent")
    with pytest.raises(orroute.EmergencyCutoffError):
        m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.cost_tracker.resume()
    assert m.execute_task_sync(Task(messages=MSG, max_tokens=20)).cost == 0  # a hit again
    assert chats(fake) == 1


def test_task_cache_false_skips_it(fake: FakeOpenRouter, tmp_path: Path) -> None:
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    r = m.execute_task_sync(Task(messages=MSG, max_tokens=20, cache=False))
    assert chats(fake) == 2 and r.cost > 0


def test_a_stream_is_replayed_from_the_cache(fake: FakeOpenRouter, tmp_path: Path) -> None:
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)

    async def stream() -> tuple[str, int]:
        chunks = [c async for c in m.stream_task(Task(messages=MSG, max_tokens=40))]
        text = "".join(ch["choices"][0]["delta"].get("content") or ""
                       for ch in chunks if ch.get("choices"))
        return text, len(chunks)

    plain = m.execute_task_sync(Task(messages=MSG, max_tokens=40))  # stored by a plain call
    text, n = asyncio.run(stream())
    assert chats(fake) == 1 and n > 2  # replayed in pieces, not one blob
    assert text == plain.content
    # and the other way round: a streamed answer is stored and answers a plain call
    streamed_q = [{"role": "user", "content": "Stream me"}]

    async def stream2() -> str:
        chunks = [c async for c in m.stream_task(Task(messages=streamed_q, max_tokens=40))]
        return "".join(ch["choices"][0]["delta"].get("content") or ""
                       for ch in chunks if ch.get("choices"))

    streamed = asyncio.run(stream2())
    again = m.execute_task_sync(Task(messages=streamed_q, max_tokens=40))
    assert chats(fake) == 2 and again.cost == 0 and again.content == streamed


def test_expired_entries_are_not_served(fake: FakeOpenRouter, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite3", ttl=1)
    m = manager(fake, cache=cache)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert chats(fake) == 1
    time.sleep(1.2)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert chats(fake) == 2


def test_orroute_cache_env_turns_it_on(fake: FakeOpenRouter, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path))
    monkeypatch.setenv("ORROUTE_CACHE", "1")
    assert manager(fake).cache is not None
    monkeypatch.setenv("ORROUTE_CACHE", "0")
    assert manager(fake).cache is None


def test_the_config_key_turns_it_on(fake: FakeOpenRouter, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORROUTE_CACHE", raising=False)
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path))
    cfg = tmp_path / "orroute.toml"
    cfg.write_text("cache = true\n")
    monkeypatch.setenv("ORROUTE_CONFIG", str(cfg))
    from orroute.config import load_settings

    assert load_settings().cache is True
    assert client(fake)._cache is not None


def test_a_hit_is_reported_to_callbacks_with_the_saving(fake: FakeOpenRouter,
                                                        tmp_path: Path) -> None:
    seen: list[CallEvent] = []
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True, on_response=seen.append)
    first = m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert flush_callbacks()
    assert [e.outcome for e in seen] == ["ok", "cache_hit"]
    assert seen[1].cost == 0 and seen[1].saved == first.cost


# ---- the client ------------------------------------------------------------------------------------


def test_client_cache_hit_miss_sampling_and_opt_out(fake: FakeOpenRouter, tmp_path: Path) -> None:
    c = client(fake, cache=ResponseCache(tmp_path / "c.sqlite3"))
    a = c.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    b = c.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    assert chats(fake) == 1
    assert b.choices[0].message.content == a.choices[0].message.content
    assert b.usage.cost == 0 and b.orroute_cache["hit"] is True
    c.chat.completions.create(model="test/b", messages=MSG, temperature=0)  # another model
    c.chat.completions.create(model="test/a", messages=MSG, temperature=0, cache=False)
    assert chats(fake) == 3
    for _ in range(2):  # sampling: never cached unless asked
        c.chat.completions.create(model="test/a", messages=MSG, temperature=0.9)
    assert chats(fake) == 5
    sampling = client(fake, cache=ResponseCache(tmp_path / "s.sqlite3", allow_sampling=True))
    for _ in range(2):
        sampling.chat.completions.create(model="test/a", messages=MSG, temperature=0.9)
    assert chats(fake) == 6


def test_clients_with_other_keys_do_not_share_entries(fake: FakeOpenRouter, tmp_path: Path) -> None:
    # One cache file (the default location is per user, not per account): a client on another
    # key (another account, a BYOK end user) never gets the answers asked on this one's.
    shared = tmp_path / "c.sqlite3"
    mine = client(fake, cache=ResponseCache(shared))
    mine.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    other = orroute.OpenRouter(api_key="sk-or-v1-test-key-not-real-other", base_url=fake.base_url,
                               max_retries=0, cache=ResponseCache(shared))
    theirs = other.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    assert chats(fake) == 2 and not getattr(theirs, "orroute_cache", None)
    again = mine.with_options(max_retries=1).chat.completions.create(
        model="test/a", messages=MSG, temperature=0)
    assert again.orroute_cache["hit"] is True and chats(fake) == 2  # the same key: a hit
    rotated = orroute.OpenRouter(api_key=[KEY, "sk-or-v1-test-key-not-real-second"],
                                 base_url=fake.base_url, max_retries=0, cache=ResponseCache(shared))
    rotated.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    assert chats(fake) == 3  # another set of keys is another scope
    assert KEY not in shared.read_bytes().decode("latin-1")  # the scope holds no key



def test_a_call_with_its_own_key_neither_reads_nor_fills_the_cache(fake: FakeOpenRouter,
                                                                   tmp_path: Path) -> None:
    # extra_headers={"Authorization": ...} is another account: not this client's scope
    mine = client(fake, cache=ResponseCache(tmp_path / "c.sqlite3"))
    mine.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    own = {"Authorization": "Bearer sk-or-v1-test-key-not-real-other"}
    theirs = mine.chat.completions.create(model="test/a", messages=MSG, temperature=0,
                                          extra_headers=own)
    assert chats(fake) == 2 and not getattr(theirs, "orroute_cache", None)

@pytest.mark.parametrize("poison", ["not json {", "[1, 2]", '"text"',
                                    (b'{"id":"x","choices":[{"index":0,"message":{"role":'
                                     b'"assistant","content":"\xff\xfe"}}]}')],
                         ids=["not-json", "array", "string", "not-utf8"])
def test_a_poisoned_entry_is_a_miss_never_a_failed_call(fake: FakeOpenRouter, tmp_path: Path,
                                                        poison: str | bytes) -> None:
    # The cache file is the user's (or a shared Redis): what it holds is read as hostile.
    import sqlite3

    path = tmp_path / "c.sqlite3"
    c = client(fake, cache=ResponseCache(path))
    first = c.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    with sqlite3.connect(path) as db:
        assert db.execute("UPDATE response_cache SET completion = ?", (poison,)).rowcount == 1
    again = c.chat.completions.create(model="test/a", messages=MSG, temperature=0)
    assert again.choices[0].message.content == first.choices[0].message.content
    assert chats(fake) == 2  # asked upstream again
    with c.chat.completions.create(model="test/a", messages=MSG, temperature=0, stream=True) as s:
        assert "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)


def test_client_stream_is_stored_and_replayed(fake: FakeOpenRouter, tmp_path: Path) -> None:
    c = client(fake, cache=ResponseCache(tmp_path / "c.sqlite3"))
    with c.chat.completions.create(model="test/a", messages=MSG, stream=True) as s:
        live = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
    with c.chat.completions.create(model="test/a", messages=MSG, stream=True) as s:
        replayed = [ch for ch in s]
    assert chats(fake) == 1
    assert "".join(ch.choices[0].delta.content or "" for ch in replayed if ch.choices) == live
    assert len(replayed) > 2 and replayed[-1].usage is not None
    plain = c.chat.completions.create(model="test/a", messages=MSG)
    assert chats(fake) == 1 and plain.choices[0].message.content == live


def test_async_client_replay(fake: FakeOpenRouter, tmp_path: Path) -> None:
    async def go() -> tuple[str, str]:
        c = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url,
                                    cache=ResponseCache(tmp_path / "c.sqlite3"))
        r = await c.chat.completions.create(model="test/a", messages=MSG)
        s = await c.chat.completions.create(model="test/a", messages=MSG, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
        return r.choices[0].message.content, text

    plain, replayed = asyncio.run(go())
    assert chats(fake) == 1 and replayed == plain


# ---- Redis -----------------------------------------------------------------------------------------


def test_redis_backend_shared_by_two_managers(fake: FakeOpenRouter, redis_url: str) -> None:
    a = manager(fake, ledger=redis_url, cache=True)
    b = manager(fake, ledger=redis_url, cache=True)  # another process would see the same
    first = a.execute_task_sync(Task(messages=MSG, max_tokens=20))
    second = b.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert chats(fake) == 1 and second.cost == 0 and second.content == first.content
    assert b.cache is not None and b.cache.location == redis_url
    assert b.cache.stats().hits == 1
    rows = orroute.CostTracker(redis_url).usage_history()
    assert [r.outcome for r in rows] == ["ok", CACHE_HIT_OUTCOME]
    assert rows[1].estimated_cost == first.cost
    assert b.cache.clear() == 1
    b.execute_task_sync(Task(messages=MSG, max_tokens=20))
    assert chats(fake) == 2


# ---- the gateway and the command line -------------------------------------------------------------


def test_gateway_answers_from_the_cache_unless_asked_not_to(
        fake: FakeOpenRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    from orroute.gateway import Gateway, GatewaySettings

    monkeypatch.setenv("ORROUTE_CACHE", "1")
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings) as gw:
        key = gw.keys.create("proj")[0]
        oc = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        a = oc.chat.completions.create(model="test/a", messages=MSG)  # type: ignore[arg-type]
        b = oc.chat.completions.create(model="test/a", messages=MSG)  # type: ignore[arg-type]
        streamed = "".join(ch.choices[0].delta.content or "" for ch in oc.chat.completions.create(
            model="test/a", messages=MSG, stream=True) if ch.choices)  # type: ignore[arg-type]
        assert chats(fake) == 1
        oc.with_options(default_headers={"X-OrRoute-Cache": "off"}).chat.completions.create(
            model="test/a", messages=MSG)  # type: ignore[arg-type]
        assert chats(fake) == 2
        oc.close()
    assert b.choices[0].message.content == a.choices[0].message.content == streamed
    assert b.model_extra and b.model_extra["orroute_cache"]["hit"] is True


def test_cli_cache_stats_and_clear(fake: FakeOpenRouter, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orroute._cli import cli

    ledger = tmp_path / "l.sqlite3"
    m = manager(fake, ledger=str(ledger), cache=True)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    m.execute_task_sync(Task(messages=MSG, max_tokens=20))
    runner = CliRunner()
    out = runner.invoke(cli, ["--ledger", str(ledger), "cache", "stats", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["entries"], data["hits"], data["misses"]) == (1, 1, 1)
    assert Decimal(data["saved"]) > 0
    out = runner.invoke(cli, ["--ledger", str(ledger), "cache", "clear", "--yes"])
    assert out.exit_code == 0 and "removed 1 cached reply" in out.output
    out = runner.invoke(cli, ["--ledger", str(ledger), "cache", "stats"])
    assert out.exit_code == 0 and "entries\t0" in out.output


def test_projects_do_not_share_entries(fake: FakeOpenRouter, tmp_path: Path) -> None:
    m = manager(fake, ledger=str(tmp_path / "l.sqlite3"), cache=True)
    m.execute_task_sync(Task(messages=MSG, max_tokens=20, project="alice"))
    m.execute_task_sync(Task(messages=MSG, max_tokens=20, project="bob"))
    assert chats(fake) == 2
    m.execute_task_sync(Task(messages=MSG, max_tokens=20, project="bob"))
    assert chats(fake) == 2


def test_gateway_n_choices_are_never_copies_of_one_cached_answer(
        fake: FakeOpenRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    from orroute.gateway import Gateway, GatewaySettings

    monkeypatch.setenv("ORROUTE_CACHE", "1")
    settings = GatewaySettings(base_url=fake.base_url, api_key=KEY,
                               ledger=str(tmp_path / "gw.sqlite3"), port=0)
    with Gateway(settings) as gw:
        key = gw.keys.create("proj")[0]
        oc = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        oc.chat.completions.create(model="test/a", messages=MSG)  # type: ignore[arg-type]
        before = chats(fake)
        r = oc.chat.completions.create(model="test/a", messages=MSG, n=3)  # type: ignore[arg-type]
        list(oc.chat.completions.create(model="test/a", messages=MSG, n=2,  # type: ignore[arg-type]
                                        stream=True))
        oc.close()
    assert len(r.choices) == 3
    assert chats(fake) - before == 5  # every choice asked the upstream


def test_a_request_text_naming_a_key_twice_has_no_key(tmp_path: Path) -> None:
    # found by libFuzzer (fuzz_cache_key): a second `messages` that is not an array ended the
    # process (SIGSEGV) in the canonical writer
    cache = ResponseCache(tmp_path / "c.sqlite3")
    twice = '{"messages":[{"role":"user","content":"hi"}],"model":"a/b","messages":"u"}'
    assert cache.key(twice, "s") is None
    assert cache.key('{"messages":[{"role":"user","content":"hi"}],"model":"a/b"}', "s")
