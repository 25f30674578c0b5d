"""The OpenAPI 3.1 description the gateway serves at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from .settings import ALIASES, GatewaySettings

__all__ = ["openapi_spec"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Malformed request; error.param names the field"),
    "401": _json(_ref("Error"), "Missing, wrong or revoked gateway key"),
}


def openapi_spec(settings: GatewaySettings | None = None) -> dict[str, Any]:
    """The description as a dict (the server serialises it once)."""
    routes = sorted((settings.routes if settings else {}).keys())
    money = {"type": "string", "description": "USD, exact decimal", "example": "0.000123"}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["message", "type"],
                                     "properties": {
                                         "message": {"type": "string"},
                                         "type": {"type": "string"},
                                         "param": {"type": ["string", "null"]},
                                         "code": {"type": ["string", "integer", "null"]}}}},
        },
        "ChatMessage": {
            "type": "object", "required": ["role"],
            "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
                "content": {"type": ["string", "array", "null"]},
                "name": {"type": "string"}, "tool_calls": {"type": "array"},
                "tool_call_id": {"type": "string"}},
        },
        "ChatCompletionRequest": {
            "type": "object", "required": ["model", "messages"],
            "additionalProperties": True,
            "description": "OpenAI's chat completion request; OpenRouter's extras (provider, "
                           "models, transforms, reasoning, usage, ...) are passed through.",
            "properties": {
                "model": {"type": "string", "description":
                          "A model id (openai/gpt-4o-mini), a strategy alias "
                          f"({', '.join(ALIASES)}) or a configured route name"
                          + (f" ({', '.join(routes)})" if routes else "")},
                "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
                "stream": {"type": "boolean", "default": False},
                "max_tokens": {"type": "integer", "minimum": 1},
                "max_completion_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "top_p": {"type": "number", "minimum": 0, "maximum": 1},
                "n": {"const": 1}, "tools": {"type": "array"},
                "response_format": {"type": "object"}},
        },
        "ChatCompletion": {
            "type": "object", "description": "OpenAI's chat.completion object as the upstream "
            "sent it; `model` is the model that served the request.",
            "properties": {"id": {"type": "string"}, "object": {"const": "chat.completion"},
                           "model": {"type": "string"}, "choices": {"type": "array"},
                           "usage": {"type": "object"}},
        },
        "ModelList": {
            "type": "object", "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "object": {"const": "model"},
                    "created": {"type": "integer"}, "owned_by": {"type": "string"}}}}},
        },
        "ModelInfo": {
            "type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "context_length": {"type": "integer"},
                "max_completion_tokens": {"type": ["integer", "null"]},
                "modality": {"type": "string"},
                "capabilities": {"type": "array", "items": {"type": "string"}},
                "pricing": {"type": "object", "properties": {
                    "prompt_per_mtok": money, "completion_per_mtok": money,
                    "dynamic": {"type": "boolean"}}},
                "supported_parameters": {"type": "array", "items": {"type": "string"}},
                "tier": {"type": "string"}, "quality": {"type": "number"},
                "cost_per_1k": money, "example_cost_1k_in_500_out": money},
        },
        "AIModels": {
            "type": "object", "properties": {
                "models": {"type": "array", "items": _ref("ModelInfo")},
                "count": {"type": "integer"},
                "aliases": {"type": "object", "additionalProperties": {"type": "string"}},
                "routes": {"type": "object", "additionalProperties": {
                    "type": "array", "items": {"type": "string"}}}},
        },
        "Health": {
            "type": "object", "properties": {
                "status": {"enum": ["healthy", "degraded"]}, "version": {"type": "string"},
                "pid": {"type": "integer", "description": "Process id of the worker that answered"},
                "uptime_s": {"type": "number"},
                "upstream": {"type": "object", "properties": {
                    "reachable": {"type": "boolean"}, "status": {"type": "integer"},
                    "authenticated": {"type": "boolean"}, "latency_ms": {"type": "number"},
                    "error": {"type": "string"}}},
                "ledger": {"type": "object", "properties": {"ok": {"type": "boolean"},
                                                            "path": {"type": "string"}}},
                "router": {"type": "object", "description": "The router's HealthReport",
                           "properties": {
                               "overall": {"enum": ["ok", "degraded", "down"]},
                               "models": {"type": "object", "additionalProperties": {
                                   "type": "object", "properties": {
                                       "state": {"enum": ["ok", "degraded", "circuit_open",
                                                          "rate_limited"]},
                                       "reason": {"type": "string"},
                                       "breaker": {"enum": ["closed", "open", "half_open"]},
                                       "retry_in": {"type": "number"},
                                       "success_rate": {"type": "number"},
                                       "window_calls": {"type": "integer"}}}}}},
                "streams": {"type": "object", "properties": {
                    "open": {"type": "integer"}, "pauses": {"type": "integer"}}},
                "models": {"type": "integer"}, "in_flight": {"type": "integer"}},
        },
        "Budget": {
            "type": "object", "properties": {
                "scope": {"type": "string"}, "period": {"type": "string"}, "limit": money,
                "spent": money, "reserved": money, "remaining": money,
                "policy": {"type": "string"}},
        },
        "Usage": {
            "type": "object", "properties": {
                "project": {"type": "string"}, "key_id": {"type": "string"},
                "period": {"type": "string"}, "requests": {"type": "integer"},
                "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
                "total_cost": money,
                "by_model": {"type": "array", "items": {"type": "object", "properties": {
                    "model": {"type": "string"}, "period": {"type": "string"},
                    "requests": {"type": "integer"}, "errors": {"type": "integer"},
                    "prompt_tokens": {"type": "integer"},
                    "completion_tokens": {"type": "integer"}, "cost": money,
                    "mean_latency_s": {"type": ["number", "null"]}}}},
                "budgets": {"type": "array", "items": _ref("Budget")},
                "gateway": {"type": "object"}},
        },
        "TestRequest": {
            "type": "object", "properties": {
                "message": {"type": "string", "default": "Say hello in one short sentence."},
                "model": {"type": "string", "default": "orroute/auto"},
                "max_tokens": {"type": "integer", "minimum": 1, "default": 64}},
        },
        "TestResult": {
            "type": "object", "required": ["success"], "properties": {
                "success": {"type": "boolean"}, "model": {"type": ["string", "null"]},
                "requested": {"type": "string"}, "content": {"type": ["string", "null"]},
                "finish_reason": {"type": ["string", "null"]}, "usage": {"type": "object"},
                "latency_ms": {"type": "number"}, "attempts": {"type": "integer"},
                "status": {"type": "integer"}, "error": {"type": ["string", "null"]}},
        },
        "Credits": {
            "type": "object", "properties": {
                "total_credits": money, "total_usage": money, "remaining": money,
                "project": {"type": "string"},
                "project_budget": {"type": ["object", "null"], "properties": {
                    "period": {"type": "string"}, "limit": money, "spent": money,
                    "remaining": money}}},
        },
    }
    secured: list[dict[str, list[str]]] = [{"gatewayKey": []}]
    model_header = {"X-Orroute-Model": {"description": "the model that served the request",
                                        "schema": {"type": "string"}}}
    paths: dict[str, Any] = {
        "/v1/chat/completions": {"post": {
            "summary": "Chat completion (OpenAI-compatible), routed, budgeted, with fallbacks",
            "security": secured,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("ChatCompletionRequest")}}},
            "responses": {
                "200": {"description": "A chat.completion, or with stream=true an SSE stream of "
                        "chat.completion.chunk events ending with data: [DONE]",
                        "headers": model_header,
                        "content": {"application/json": {"schema": _ref("ChatCompletion")},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                **_ERRORS,
                "402": _json(_ref("Error"), "The key's project budget would be exceeded; the "
                             "message states the budget"),
                "502": _json(_ref("Error"), "Upstream unreachable")}}},
        "/v1/responses": {"post": {
            "summary": "OpenAI Responses API, translated onto a chat completion (stateless: "
                       "the whole conversation in input; function tools only)",
            "security": secured,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["model", "input"],
                           "additionalProperties": True}}}},
            "responses": {
                "200": {"description": "A response object, or with stream=true the Responses "
                        "API's SSE events ending with response.completed (or response.failed)",
                        "headers": model_header,
                        "content": {"application/json": {"schema": {"type": "object"}},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                **_ERRORS,
                "402": _json(_ref("Error"), "The key's project budget would be exceeded")}}},
        "/v1/embeddings": {"post": {
            "summary": "Embeddings, passed to the upstream; the worst case is reserved in the "
                       "ledger and settled at the actual cost",
            "security": secured,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["model", "input"],
                           "additionalProperties": True}}}},
            "responses": {"200": _json({"type": "object"}, "OpenAI's embedding list"),
                          **_ERRORS,
                          "402": _json(_ref("Error"), "The key's project budget would be "
                                       "exceeded; nothing was sent")}}},
        "/v1/models/{model_id}": {"get": {
            "summary": "One model, alias or route (OpenAI model object; its id may contain '/')",
            "security": secured,
            "parameters": [{"name": "model_id", "in": "path", "required": True,
                            "schema": {"type": "string"}, "example": "openai/gpt-4o-mini"}],
            "responses": {"200": _json({"type": "object"}, "The model"), "401": _ERRORS["401"],
                          "404": _json(_ref("Error"), "Unknown model (model_not_found)")}}},
        "/metrics": {"get": {
            "summary": "Prometheus text format: requests, errors, latency, tokens, spend, "
                       "breakers, reservations (no key needed)",
            "responses": {"200": {"description": "text/plain; version=0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v1/models": {"get": {"summary": "Models, aliases and routes (OpenAI list shape)",
                               "security": secured,
                               "responses": {"200": _json(_ref("ModelList"), "The models"),
                                             "401": _ERRORS["401"]}}},
        "/api/v1/ai/health": {"get": {
            "summary": "Health of the upstream, the ledger and the router (no key needed)",
            "responses": {"200": _json(_ref("Health"), "Healthy"),
                          "503": _json(_ref("Health"), "Degraded")}}},
        "/health": {"get": {
            "summary": "Same as /api/v1/ai/health",
            "responses": {"200": _json(_ref("Health"), "Healthy"),
                          "503": _json(_ref("Health"), "Degraded")}}},
        "/api/v1/ai/models": {"get": {"summary": "Available models with prices and capabilities",
                                      "security": secured,
                                      "responses": {"200": _json(_ref("AIModels"), "Models"),
                                                    "401": _ERRORS["401"]}}},
        "/api/v1/ai/models/{model_id}": {"get": {
            "summary": "One model (its id may contain '/')", "security": secured,
            "parameters": [{"name": "model_id", "in": "path", "required": True,
                            "schema": {"type": "string"}, "example": "openai/gpt-4o-mini"}],
            "responses": {"200": _json(_ref("ModelInfo"), "The model"), "401": _ERRORS["401"],
                          "404": _json(_ref("Error"), "Unknown model")}}},
        "/api/v1/ai/usage": {"get": {
            "summary": "Usage and cost of the key's project, by model, with its budgets",
            "security": secured,
            "parameters": [{"name": "period", "in": "query", "schema": {
                "enum": ["hour", "day", "week", "month", "total"], "default": "total"}}],
            "responses": {"200": _json(_ref("Usage"), "Usage"), **_ERRORS}}},
        "/api/v1/ai/test": {"post": {
            "summary": "Run a short test completion through the routing path", "security": secured,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _ref("TestRequest")}}},
            "responses": {"200": _json(_ref("TestResult"), "The outcome (success false on an "
                                       "upstream error)"), **_ERRORS,
                          "402": _json(_ref("Error"), "Over budget")}}},
        "/api/v1/ai/credits": {"get": {
            "summary": "Upstream credit balance and the key's project budget", "security": secured,
            "responses": {"200": _json(_ref("Credits"), "Credits"), "401": _ERRORS["401"],
                          "502": _json(_ref("Error"), "Upstream unavailable")}}},
        "/openapi.json": {"get": {"summary": "This description",
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "orroute gateway", "version": "0.1.0",
                 "description": "OpenAI-compatible chat completions routed through OpenRouter "
                 "by orroute (model selection, budgets, fallbacks), and the AI service API of "
                 "the integration guide. Authenticate with a gateway key created by "
                 "`orroute keys create`."},
        "servers": [{"url": "/"}],
        "components": {"schemas": schemas, "securitySchemes": {
            "gatewayKey": {"type": "http", "scheme": "bearer",
                           "description": "a gateway key (orr-gw-...)"}}},
        "paths": paths,
    }
