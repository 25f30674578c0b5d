"""Money fails closed through the gateway (``orroute serve``): unpriced models are a 400 before
anything is sent, hostile usage is booked at the catalog price, budgets hold for variants and the
auto-router, and threshold alerts of gateway calls fire through the tracker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
from _gateway_util import call, gateway_fixtures

from orroute.testing import FakeOpenRouter, Fault

HOSTILE = [
    Fault.lying_usage(cost="abc"),
    Fault.lying_usage(cost=1e300),
    Fault.lying_usage(cost=-5),
    Fault.lying_usage(cost=None),
    Fault.lying_usage(prompt_tokens=-3),
    Fault.no_usage(),
]
UPSTREAM_KEY = "sk-or-v1-upstream-secret-money-0123456789abcdef"
fake, gateway, key, client = gateway_fixtures(UPSTREAM_KEY)


@pytest.fixture(autouse=True)
def _clean(fake: FakeOpenRouter) -> Iterator[None]:
    yield
    fake.clear_faults()


def test_gateway_refuses_an_unpriced_model_with_400(gateway, fake) -> None:
    key_, _ = gateway.keys.create("money-unpriced")
    gateway.tracker.set_budget(1, project="money-unpriced")
    before = fake.request_count
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key_, body={
        "model": "acme/not-in-catalog", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]})
    assert status == 400, body
    err = json.loads(body)["error"]
    assert err["code"] == "unpriced_model" and "acme/not-in-catalog" in err["message"]
    assert fake.request_count == before


@pytest.mark.parametrize("fault", HOSTILE, ids=lambda f: repr(f.usage_patch or "no_usage"))
def test_gateway_survives_hostile_usage_and_books_the_catalog_price(
        gateway, client: openai.OpenAI, fake, fault) -> None:
    fake.script("openai/gpt-4o-mini", [fault])
    before = gateway.tracker.total_cost()
    out = client.chat.completions.create(model="openai/gpt-4o-mini", max_tokens=20,
                                         messages=[{"role": "user", "content": "Say hi"}])
    assert out.choices[0].message.content
    row = gateway.tracker.usage_history(limit=1)[0]
    assert row.cost_source.split(":")[0] in ("catalog", "tokenizer")
    assert Decimal(0) < gateway.tracker.total_cost() - before < Decimal("0.001")
    assert gateway.tracker.live_reservations()[0] == 0


def test_gateway_budget_holds_for_variants_and_auto(gateway) -> None:
    key_, _ = gateway.keys.create("money-variants")
    limit = Decimal("0.0002")
    gateway.tracker.set_budget(limit, project="money-variants")
    seen: list = []
    gateway.tracker.on_alert(seen.append)
    codes = []
    for i in range(60):
        model = ["openai/gpt-4o-mini:nitro", "openai/gpt-4o:online", "openrouter/auto"][i % 3]
        status, _, _ = call(gateway, "POST", "/v1/chat/completions", key=key_, body={
            "model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
        codes.append(status)
    assert 402 in codes and 200 in codes
    assert gateway.tracker.budget_status(project="money-variants").spent <= limit
    fired = sorted(e.threshold_pct for e in seen if "money-variants" in e.budget)
    assert fired[:2] == [50, 80] and len(fired) == len(set(fired))  # each threshold once


@pytest.mark.parametrize("raw", [
    # a short prompt and 5 tokens reserved, a long prompt and 4,000 tokens answered: the engine's
    # parser found the first of two equal keys, the upstream's (Python's, Go's, JavaScript's) the last
    '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,'
    '"messages":[{"role":"user","content":"%s"}],"max_tokens":4000}' % ("word " * 20000),
    '{"model":"openai/gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi",'
    '"content":"%s"}]}' % ("word " * 20000),
], ids=["top-level", "in-a-message"])
def test_a_key_given_twice_is_refused_before_anything_is_reserved(gateway, fake, raw) -> None:
    key_, _ = gateway.keys.create("money-dup")
    gateway.tracker.set_budget("0.001", project="money-dup")
    before = fake.request_count
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key_, raw=raw.encode())
    assert status == 400, body[:300]
    assert "twice" in json.loads(body)["error"]["message"]
    assert fake.request_count == before
    assert gateway.tracker.budget_status(project="money-dup").spent == 0
    assert gateway.tracker.live_reservations()[0] == 0


def test_a_pdf_openrouter_may_parse_per_page_is_refused_unless_a_free_engine_is_named(gateway, fake) -> None:
    """OpenRouter OCRs a PDF for a model that does not take files (mistral-ocr, billed per page: a
    count known only once parsed), so such a call cannot be reserved: refused before sending. A
    model that takes files natively, or a named free engine, is reserved at the context window and
    sent; the OCR engine named outright is refused."""
    key_, _ = gateway.keys.create("money-pdf")
    gateway.tracker.set_budget(5, project="money-pdf")
    pdf = [{"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}]}]
    free = [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]
    ocr = [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]
    before = fake.request_count

    def send(model: str, plugins: list | None) -> tuple[int, bytes]:
        body = {"model": model, "max_tokens": 5, "messages": pdf, **({"plugins": plugins} if plugins else {})}
        status, _, reply = call(gateway, "POST", "/v1/chat/completions", key=key_, body=body)
        return status, reply

    for model, plugins in [("meta-llama/llama-3.1-8b-instruct", None), ("openai/gpt-4o-mini", ocr)]:
        status, reply = send(model, plugins)
        assert status == 400, reply[:300]
        message = json.loads(reply)["error"]["message"]
        assert "per page" in message and "cloudflare-ai" in message
    assert fake.request_count == before
    for model, plugins in [("meta-llama/llama-3.1-8b-instruct", free), ("openai/gpt-4o-mini", None)]:
        status, reply = send(model, plugins)
        assert status == 200, reply[:300]
    assert fake.request_count == before + 2
    assert gateway.tracker.live_reservations()[0] == 0


@pytest.mark.parametrize("fault", [Fault.no_usage(), Fault.lying_usage(prompt_tokens=-3)],
                         ids=["no_usage", "junk_tokens"])
def test_a_file_the_upstream_alone_can_size_is_booked_at_the_window_when_its_usage_is_missing(
        gateway, fake, fault) -> None:
    """Our count of a prompt with a PDF is its text alone (the file is read upstream): where the
    reply's usage is missing or refused, the call is booked at what its reservation assumed for
    the prompt, the whole context window, not at a handful of text tokens."""
    project = f"money-pdf-usage-{'none' if fault.drop_usage else 'junk'}"
    key_, _ = gateway.keys.create(project)
    gateway.tracker.set_budget(5, project=project)
    pdf = [{"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}]}]
    fake.script("openai/gpt-4o-mini", [fault])  # takes files: sent, reserved at its 128k window
    status, _, reply = call(gateway, "POST", "/v1/chat/completions", key=key_,
                            body={"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": pdf})
    assert status == 200, reply[:300]
    spent = gateway.tracker.budget_status(project=project).spent
    window_at_prompt_price = Decimal(128_000) * Decimal("0.00000015")
    # the window and at most the 5 reserved output tokens ($0.60/M); was ~$0.000003
    assert window_at_prompt_price <= spent <= window_at_prompt_price + 5 * Decimal("0.0000006")
    assert gateway.tracker.live_reservations()[0] == 0


def test_an_openrouter_preset_is_refused_before_sending(gateway, fake) -> None:
    """A preset brings its own model, fallbacks, server tools and parameters from OpenRouter's
    side: no reservation can bound it, whichever way it is named."""
    key_, _ = gateway.keys.create("money-preset")
    gateway.tracker.set_budget(5, project="money-preset")
    hi = [{"role": "user", "content": "hi"}]
    before = fake.request_count
    for extra in [{"preset": "dear-one"}, {"model": "@preset/dear-one"},
                  {"model": "openai/gpt-4o-mini@preset/dear-one"}]:
        body = {"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": hi, **extra}
        status, _, reply = call(gateway, "POST", "/v1/chat/completions", key=key_, body=body)
        assert status == 400, (extra, reply[:300])
        assert "preset" in json.loads(reply)["error"]["message"]
    assert fake.request_count == before
    assert gateway.tracker.live_reservations()[0] == 0


def test_web_results_and_server_tools_are_reserved_or_refused(gateway, fake) -> None:
    """The web plugin bills per result and a server tool per use: a call asking for 100 results
    reserves twenty fees of five (over this budget: refused), and one naming a server tool, whose
    uses no reservation can bound, is refused; neither reaches the upstream."""
    key_, _ = gateway.keys.create("money-web")
    gateway.tracker.set_budget("0.1", project="money-web")
    hi = [{"role": "user", "content": "hi"}]
    before = fake.request_count
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key_, body={
        "model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": hi,
        "plugins": [{"id": "web", "max_results": 100}]})
    assert status == 402, body[:300]
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key_, body={
        "model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": hi,
        "tools": [{"type": "openrouter:web_search"}]})
    assert status == 400, body[:300]
    assert "openrouter:web_search" in json.loads(body)["error"]["message"]
    assert fake.request_count == before
    # five results fit: one fee
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key_, body={
        "model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": hi,
        "plugins": [{"id": "web", "max_results": 5}]})
    assert status == 200, body[:300]
    assert gateway.tracker.live_reservations()[0] == 0
