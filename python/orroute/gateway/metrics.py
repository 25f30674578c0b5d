"""``GET /metrics``: the gateway in Prometheus' text format (``prometheus_client``).

Counted by the gateway as it answers: requests by route and status, errors by kind, request
latency histograms. Read from the router's engine and the ledger when scraped (nothing is
counted twice): upstream calls, retries, fallbacks, tokens and spend per model, upstream errors
by class, latency / TTFT percentiles over the engine's window, breaker states, reservations held,
and from the HTTP server: open connections, connections evicted or refused at the cap, requests
rejected before a handler (400 / 408 / 413 / 431).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from .app import GatewayApp

__all__ = ["CONTENT_TYPE", "GatewayMetrics", "route_of"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_ROUTES = {
    "/v1/chat/completions": "chat", "/api/v1/chat/completions": "chat",
    "/chat/completions": "chat", "/v1/responses": "responses", "/api/v1/responses": "responses",
    "/responses": "responses", "/v1/embeddings": "embeddings", "/api/v1/embeddings": "embeddings",
    "/embeddings": "embeddings", "/v1/models": "models", "/api/v1/models": "models",
    "/models": "models", "/v1/messages": "messages", "/api/v1/messages": "messages",
    "/messages": "messages", "/metrics": "metrics", "/health": "health",
    "/api/v1/ai/health": "health",
}
_KINDS = {400: "bad_request", 401: "unauthorized", 402: "budget", 404: "not_found",
          405: "method_not_allowed", 429: "rate_limited", 500: "internal", 502: "upstream",
          503: "no_model_available", 504: "upstream_timeout"}
_BREAKER = ("closed", "half_open", "open")
# request latency: a cached relay takes ~1 ms, a completion seconds, a long stream minutes
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
            300)


def route_of(path: str) -> str:
    """A bounded label for a request path (clients choose paths: never a label as sent)."""
    route = _ROUTES.get(path)
    if route is not None:
        return route
    if path.startswith(("/v1/models/", "/api/v1/models/", "/models/")):
        return "model"
    if path.startswith("/api/v1/ai/"):
        return "ai_service"
    return "other"


class _EngineCollector:
    """Reads the engine, the ledger and the HTTP server when scraped."""

    def __init__(self, app: GatewayApp) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        rows = app.engine.metrics()
        calls = CounterMetricFamily("orroute_upstream_calls", "Upstream calls by model and outcome",
                                    labels=["model", "outcome"])
        retries = CounterMetricFamily("orroute_upstream_retries", "Retries of a model",
                                      labels=["model"])
        fallbacks = CounterMetricFamily("orroute_upstream_fallbacks",
                                        "Times the router moved on from a model", labels=["model"])
        tokens = CounterMetricFamily("orroute_tokens", "Tokens by model and direction",
                                     labels=["model", "direction"])
        spend = CounterMetricFamily("orroute_spend_usd", "Cost of successful calls (USD)",
                                    labels=["model"])
        errors = CounterMetricFamily("orroute_upstream_errors", "Upstream errors by class",
                                     labels=["model", "class"])
        latency = GaugeMetricFamily("orroute_upstream_latency_seconds",
                                    "Upstream latency percentiles over the engine's window",
                                    labels=["model", "quantile"])
        ttft = GaugeMetricFamily("orroute_upstream_ttft_seconds",
                                 "Time to first token percentiles over the engine's window",
                                 labels=["model", "quantile"])
        for r in rows:
            m = r["model"]
            calls.add_metric([m, "success"], r["successes"])
            calls.add_metric([m, "failure"], r["failures"])
            retries.add_metric([m], r["retries"])
            fallbacks.add_metric([m], r["fallbacks"])
            tokens.add_metric([m, "input"], r["input_tokens"])
            tokens.add_metric([m, "output"], r["output_tokens"])
            spend.add_metric([m], float(r["cost"]))
            for cls, n in (r.get("errors") or {}).items():
                errors.add_metric([m, str(cls)], n)
            for family, name in ((latency, "latency"), (ttft, "ttft")):
                for q in ("p50", "p95", "p99"):
                    v = r.get(f"{name}_{q}")
                    if v is not None:
                        family.add_metric([m, f"0.{q[1:]}"], float(v))
        yield from (calls, retries, fallbacks, tokens, spend, errors, latency, ttft)

        breaker = GaugeMetricFamily("orroute_breaker_state",
                                    "Circuit breaker state per model (1 for the current state)",
                                    labels=["model", "state"])
        for model, h in (app.manager.health().get("models") or {}).items():
            for state in _BREAKER:
                breaker.add_metric([model, state], 1.0 if h.get("breaker") == state else 0.0)
        yield breaker

        count, amount = app.engine.reserved()
        yield GaugeMetricFamily("orroute_reservations_held", "Budget reservations not yet settled",
                                value=count)
        yield GaugeMetricFamily("orroute_reservations_held_usd",
                                "Worst-case cost held by unsettled reservations (USD)",
                                value=float(amount))
        yield CounterMetricFamily("orroute_ledger_spend_usd",
                                  "Spend recorded in the ledger, all processes (USD)",
                                  value=float(app.engine.spent()))
        yield GaugeMetricFamily("orroute_gateway_in_flight", "Completions being answered",
                                value=app.in_flight)
        yield GaugeMetricFamily("orroute_gateway_open_streams", "Streams being relayed",
                                value=len(app._streams))
        yield CounterMetricFamily("orroute_gateway_stream_pauses",
                                  "Upstream transfers paused for a slow client",
                                  value=app.stream_pauses())
        server = app.http_server
        yield GaugeMetricFamily("orroute_http_open_connections", "Open client connections",
                                value=len(app.conns))
        if server is not None:
            yield CounterMetricFamily("orroute_http_connections_evicted",
                                      "Idle connections closed at the connection cap",
                                      value=server.evicted)
            yield CounterMetricFamily("orroute_http_connections_refused",
                                      "Connections answered 503 at the cap", value=server.refused)
            rejected = CounterMetricFamily("orroute_http_rejected",
                                           "Requests answered by the HTTP layer before a handler",
                                           labels=["status"])
            for status, n in sorted(server.rejected.items()):
                rejected.add_metric([str(status)], n)
            yield rejected


class GatewayMetrics:
    """The gateway's registry (its own: several gateways in one process do not mix)."""

    def __init__(self, app: GatewayApp) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("orroute_gateway_requests", "Requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.errors = Counter("orroute_gateway_errors", "Error answers by kind", ["kind"],
                              registry=self.registry)
        self.latency = Histogram("orroute_gateway_request_duration_seconds",
                                 "Time from a parsed request to its last byte written",
                                 ["route"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_EngineCollector(app))  # type: ignore[arg-type]
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, status: int, started: float) -> None:
        """Counts one answered request (``started``: ``time.perf_counter()`` at dispatch)."""
        children = self._children.get((route, status))
        if children is None:  # labels() costs a lock and a dict walk: cache the children
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
        if status >= 400:
            self.errors.labels(_KINDS.get(status, f"http_{status}")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
