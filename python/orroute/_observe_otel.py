"""OpenTelemetry spans of calls, after the GenAI semantic conventions (private).

Costs nothing unless the application uses OpenTelemetry: orroute never imports it. A span is made
only when ``opentelemetry.trace`` is already imported (an application that set a tracer provider
has imported it) and the global provider is a real one, not the default proxy / no-op. That is how
Langfuse, Honeycomb, Datadog, Arize and any OTLP collector read orroute's calls.

Attributes (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/):
``gen_ai.operation.name`` ("chat"), ``gen_ai.system`` (the provider that answered, else
"openrouter"), ``gen_ai.request.model``, ``gen_ai.request.max_tokens`` / ``temperature`` /
``top_p``, ``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``error.type`` on failure; and orroute's own
``orroute.cost_usd``, ``orroute.cost_source``, ``orroute.attempts``, ``orroute.cache_hit``,
``orroute.source`` (manager, client or gateway), ``orroute.stream``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .observe import CallEvent

_TRACER_NAME = "orroute"


def _tracer() -> Any:
    """The tracer, or None when OpenTelemetry is not in use (never imports it)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None
    from . import __version__

    return provider.get_tracer(_TRACER_NAME, __version__)


def start(event: CallEvent, started_ns: int) -> Any:
    """A started span for the call, or None."""
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    attrs: dict[str, Any] = {
        "gen_ai.operation.name": event.operation,
        "orroute.source": event.source,
        "orroute.stream": event.stream,
    }
    if event.model:
        attrs["gen_ai.request.model"] = event.model
    for name in ("max_tokens", "temperature", "top_p"):
        value = event.params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[f"gen_ai.request.{name}"] = value
    name = f"{event.operation} {event.model}" if event.model else event.operation
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs, start_time=started_ns)


def end(span: Any, event: CallEvent) -> None:
    """Sets the outcome's attributes and ends the span."""
    from opentelemetry.trace import Status, StatusCode

    attrs: dict[str, Any] = {
        "gen_ai.system": event.provider or "openrouter",
        "gen_ai.usage.input_tokens": event.prompt_tokens,
        "gen_ai.usage.output_tokens": event.completion_tokens,
        "orroute.attempts": event.attempts,
        "orroute.cache_hit": event.outcome == "cache_hit",
    }
    if event.response_model:
        attrs["gen_ai.response.model"] = event.response_model
    if event.response_id:
        attrs["gen_ai.response.id"] = event.response_id
    if event.finish_reasons:
        attrs["gen_ai.response.finish_reasons"] = list(event.finish_reasons)
    if event.cost is not None:
        attrs["orroute.cost_usd"] = float(event.cost)
    if event.cost_source:
        attrs["orroute.cost_source"] = event.cost_source
    if event.saved is not None:
        attrs["orroute.saved_usd"] = float(event.saved)
    span.set_attributes(attrs)
    if event.error is not None or event.outcome not in ("ok", "cache_hit"):
        span.set_attribute("error.type", event.outcome)
        span.set_status(Status(StatusCode.ERROR, event.outcome))
    span.end()
