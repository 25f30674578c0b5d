"""What FakeOpenRouter answers: the model table, token counts, prices and deterministic replies.

Token counts and prices come from orroute itself (``_accounting`` below); everything else here is
pure and cheap so that the server thread spends its time on I/O.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__: list[str] = []

# Used when a model id is not in the catalog but a test adds it (add_model / models=["m/a"]).
DEFAULT_PROMPT_PRICE = "0.000001"  # USD per token ($1 / M)
DEFAULT_COMPLETION_PRICE = "0.000002"  # USD per token ($2 / M)

_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google AI Studio",
    "meta-llama": "DeepInfra",
    "mistralai": "Mistral",
    "deepseek": "DeepSeek",
    "x-ai": "xAI",
    "qwen": "Alibaba",
    "cohere": "Cohere",
    "moonshotai": "Moonshot AI",
    "z-ai": "Z.AI",
    "microsoft": "Azure",
    "amazon": "Amazon Bedrock",
    "nvidia": "DeepInfra",
    "perplexity": "Perplexity",
    "minimax": "Minimax",
}


def provider_for(model_id: str) -> str:
    """Display name of the upstream provider the fake pretends served ``model_id``."""
    author = model_id.split("/", 1)[0]
    return _PROVIDERS.get(author, author.replace("-", " ").title() or "Fake")


@lru_cache(maxsize=1)
def bundled_models() -> tuple[dict[str, Any], ...]:
    """The bundled ``/models`` snapshot, the file ``orroute.Catalog.bundled()`` reads (read once)."""
    from orroute.catalog import bundled_catalog_path

    data = json.loads(bundled_catalog_path().read_text(encoding="utf-8"))
    return tuple(data["data"] if isinstance(data, dict) else data)


def synth_model(
    model_id: str,
    prompt_price: str | Decimal | float = DEFAULT_PROMPT_PRICE,
    completion_price: str | Decimal | float = DEFAULT_COMPLETION_PRICE,
    *,
    context_length: int | None = 128_000,
    max_completion_tokens: int | None = 16_384,
    request_price: str | Decimal | float | None = None,
) -> dict[str, Any]:
    """A minimal but complete ``/models`` entry for a model id a test made up."""
    pricing = {"prompt": _price_str(prompt_price), "completion": _price_str(completion_price)}
    if request_price is not None:
        pricing["request"] = _price_str(request_price)
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "hugging_face_id": None,
        "name": model_id,
        "created": 1_700_000_000,
        "description": f"{model_id} (FakeOpenRouter)",
        "context_length": context_length,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "GPT",
            "instruct_type": None,
        },
        "pricing": pricing,
        "top_provider": {
            "context_length": context_length,
            "max_completion_tokens": max_completion_tokens,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": [
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "tools",
            "tool_choice",
            "response_format",
            "structured_outputs",
        ],
        "default_parameters": None,
        "expiration_date": None,
    }


def _price_str(value: str | Decimal | float) -> str:
    return str(value) if isinstance(value, str) else format(Decimal(str(value)), "f")


# --- accounting: the only place where tokens and money are computed -----------------------------


def _message_text(messages: Iterable[Mapping[str, Any]]) -> str:
    parts: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "\n".join(parts)


@lru_cache(maxsize=1)
def _count_tokens() -> Callable[..., int] | None:
    """``orroute.count_tokens``, or None while the tokenizer is not part of the package yet."""
    try:
        from orroute.tokenizer import count_tokens  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # TEMPORARY: remove once the tokenizer helper's work is in main
        return None
    return count_tokens  # type: ignore[no-any-return]


class Accounting:
    """Counts tokens and prices calls for one FakeOpenRouter (its model table).

    Prices come from ``orroute.Catalog`` (the C++ catalog, exact decimal pricing with tiers), built
    from the fake's model table, so the fake bills exactly what orroute's cost engine expects.

    Tokens come from ``orroute.count_tokens`` (the model family's tokenizer). TEMPORARY FALLBACK:
    until the tokenizer helper's work is in main, tokens are ``ceil(chars / 4)`` (+3 per message
    +3, OpenAI's chat framing). This class is the only place that counts or prices.
    """

    def __init__(self, models: Mapping[str, Mapping[str, Any]], *, bundled: bool) -> None:
        self._models = models
        self._bundled = bundled
        self._catalog: Any = None

    def models_changed(self) -> None:
        """The model table was edited: price from the edited table from now on."""
        self._bundled = False
        self._catalog = None

    def _get_catalog(self) -> Any:
        if self._catalog is None:
            from orroute.catalog import Catalog

            if self._bundled:
                self._catalog = Catalog.bundled()
            else:
                data = {"data": list(self._models.values())}
                self._catalog = Catalog.from_json(json.dumps(data))
        return self._catalog

    def prompt_tokens(
        self, model_id: str, messages: list[Mapping[str, Any]], tools: list[Any] | None
    ) -> int:
        """Prompt tokens as OpenRouter reports them (chat framing and tool definitions included)."""
        count = _count_tokens()
        if count is not None:
            return int(count(messages, model=model_id, tools=tools or None))
        # TEMPORARY FALLBACK (no orroute.tokenizer yet): chars/4 + OpenAI's chat framing
        extra = json.dumps(tools, separators=(",", ":")) if tools else ""
        text = _message_text(messages) + extra
        return (len(text) + 3) // 4 + 3 * len(messages) + 3

    def text_tokens(self, model_id: str, text: str) -> int:
        """Tokens of generated text."""
        count = _count_tokens()
        if count is not None:
            return int(count(text, model=model_id)) if text else 0
        return (len(text) + 3) // 4  # TEMPORARY FALLBACK: chars/4

    def cost(
        self,
        model_id: str,
        prompt_tokens: int,
        completion_tokens: int,
        reasoning_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> tuple[Decimal, Decimal, Decimal]:
        """(total, prompt part, completion part) in USD for one call. Routers with dynamic
        prices (``"-1"``) cost 0 here."""
        from orroute import InvalidArgumentError, NotFoundInCatalogError

        catalog = self._get_catalog()
        try:
            total = catalog.cost(
                model_id,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                reasoning_tokens=reasoning_tokens,
                cached_tokens=cached_tokens,
            )
            prompt = catalog.cost(
                model_id,
                prompt_tokens=prompt_tokens,
                completion_tokens=0,
                cached_tokens=cached_tokens,
                requests=0,
            )
            completion = catalog.cost(
                model_id,
                prompt_tokens=0,
                completion_tokens=completion_tokens,
                reasoning_tokens=reasoning_tokens,
                requests=0,
            )
        except (InvalidArgumentError, NotFoundInCatalogError):
            return Decimal(0), Decimal(0), Decimal(0)
        return total, prompt, completion


# --- deterministic replies --------------------------------------------------------------------

_WORDS = [
    "the",
    "answer",
    "depends",
    "on",
    "the",
    "context",
    "and",
    "the",
    "constraints",
    "you",
    "described",
    "so",
    "a",
    "careful",
    "approach",
    "would",
    "start",
    "with",
    "the",
    "simplest",
    "option",
    "measure",
    "what",
    "happens",
    "and",
    "then",
    "refine",
    "it",
    "step",
    "by",
    "step",
    "while",
    "keeping",
    "the",
    "cost",
    "latency",
    "and",
    "quality",
    "of",
    "every",
    "call",
    "in",
    "view",
    "because",
    "small",
    "choices",
    "early",
    "on",
    "tend",
    "to",
    "matter",
    "more",
    "than",
    "they",
    "seem",
    "and",
    "a",
    "clear",
    "record",
    "of",
    "what",
    "was",
    "tried",
    "makes",
    "the",
    "next",
    "decision",
    "easier",
    "for",
    "everyone",
    "involved",
    "in",
    "the",
    "work",
]

_WS = re.compile(r"\s+")


def prefix_digests(model: str, messages: list[Any]) -> list[bytes]:
    """Digest of (model, messages[:k]) for k = 1..len(messages), computed in one pass."""
    h = hashlib.blake2b(model.encode(), digest_size=16)
    out = []
    for m in messages:
        h.update(json.dumps(m, sort_keys=True, separators=(",", ":"), default=str).encode())
        out.append(h.copy().digest())
    return out


def rng_for(seed: int, model: str, body: Mapping[str, Any]) -> random.Random:
    """A generator seeded by the fake's seed, the model and the request's messages/tools/seed."""
    key = json.dumps(
        [seed, model, body.get("messages"), body.get("tools"), body.get("seed")],
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return random.Random(hashlib.blake2b(key.encode(), digest_size=8).digest())


def last_user_text(messages: list[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _WS.sub(" ", _message_text([m])).strip()
    return ""


def make_text(rng: random.Random, messages: list[Mapping[str, Any]]) -> str:
    """An echo-ish, plausible answer: quotes the start of the last user message, then prose."""
    quote = " ".join(last_user_text(messages).split()[:12])
    out = [f'You said: "{quote}".' if quote else "Hello!"]
    for _ in range(rng.randint(2, 4)):
        words = rng.choices(_WORDS, k=rng.randint(6, 14))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def value_for_schema(schema: Any, rng: random.Random, name: str = "value") -> Any:
    """A deterministic value that satisfies a simple JSON schema (objects, arrays, scalars, enums)."""
    if not isinstance(schema, dict):
        return name
    if schema.get("enum"):
        return schema["enum"][rng.randrange(len(schema["enum"]))]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return value_for_schema(schema[key][0], rng, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: value_for_schema(v, rng, k) for k, v in props.items()}
    if kind == "array":
        return [value_for_schema(schema.get("items") or {}, rng, name)]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 1)), max(int(schema.get("minimum", 1)), 9))
    if kind == "number":
        return round(rng.uniform(0, 10), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return f"{name} {rng.choice(_WORDS)}"


_EFFORT_SENTENCES = {"minimal": 1, "low": 2, "medium": 3, "high": 5, "xhigh": 6, "max": 7}


def wants_reasoning(
    body: Mapping[str, Any], entry: Mapping[str, Any]
) -> tuple[str, int | None, bool] | None:
    """(effort, token budget, exclude) when the reply should reason, else None.

    A model reasons if it supports reasoning (``reasoning`` in its ``supported_parameters`` or a
    ``reasoning`` object in its catalog entry) and the request asks for it (``reasoning``,
    ``reasoning_effort`` or ``include_reasoning: true``), or its catalog entry says reasoning is
    on by default or mandatory; effort ``"none"`` or ``enabled: false`` turn it off."""
    raw_info = entry.get("reasoning")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    supported = "reasoning" in (entry.get("supported_parameters") or ()) or bool(info)
    if not supported:
        return None
    raw_req = body.get("reasoning")
    req: dict[str, Any] = raw_req if isinstance(raw_req, dict) else {}
    effort = body.get("reasoning_effort")
    if isinstance(raw_req, dict):
        effort = req.get("effort", effort)
        if req.get("enabled") is False and not info.get("mandatory"):
            return None
        asked = True
    else:
        asked = effort is not None or body.get("include_reasoning") is True
    if body.get("include_reasoning") is False:
        req = {**req, "exclude": True}
    if effort == "none" and not info.get("mandatory"):
        return None
    if not asked and not (info.get("default_enabled") or info.get("mandatory")):
        return None
    effort = effort or info.get("default_effort") or "medium"
    budget = req.get("max_tokens")
    return str(effort), budget if isinstance(budget, int) else None, bool(req.get("exclude"))


def make_reasoning(rng: random.Random, messages: list[Mapping[str, Any]], effort: str) -> str:
    """Deterministic 'thinking' text; longer for higher efforts."""
    quote = " ".join(last_user_text(messages).split()[:8])
    out = [f'The user asks: "{quote}". Let me think.']
    for _ in range(_EFFORT_SENTENCES.get(effort, 3)):
        out.append(" ".join(rng.choices(_WORDS, k=rng.randint(6, 12))).capitalize() + ".")
    return " ".join(out)


def wants_tool_call(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The function tool the reply should call, or None. ``tool_choice`` "required" or a named
    function always calls; "auto" (the default) calls when the last message is the user's."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("function")]
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["function"].get("name") == name), tools[0])
    if choice == "required":
        return tools[0]
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "user":
        return tools[0]
    return None


def truncate_to_tokens(text: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` with at most ``limit`` tokens (binary search on chars)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


_PIECE = re.compile(r"\s*\S+")


def split_pieces(text: str) -> list[str]:
    """Stream pieces: one word with its leading whitespace each (joins back to ``text``)."""
    pieces = _PIECE.findall(text)
    rest = len(text) - sum(map(len, pieces))
    if rest:
        pieces.append(text[-rest:])
    return pieces or ([text] if text else [])
