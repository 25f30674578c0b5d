"""``n > 1`` for upstreams that give one choice per request (OpenRouter ignores ``n``): the
gateway runs n completions, each reserved, sent and settled on its own (so a budget sees each
one's worst case), and merges them into one OpenAI response with n choices."""

from __future__ import annotations

from typing import Any

__all__ = ["merge_choices", "sum_usage"]


def _sum(a: Any, b: Any) -> Any:
    """Numbers added, objects merged key by key; anything else keeps the first value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _sum(a[k], v) if k in a else v
        return out
    return a if a is not None else b


def sum_usage(usages: list[Any]) -> Any:
    """The usage objects added field by field (None if there is none)."""
    total: Any = None
    for u in usages:
        if isinstance(u, dict):
            total = u if total is None else _sum(total, u)
    return total


def merge_choices(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """One chat completion with every reply's first choice, as ``index`` 0..n-1, and the summed
    usage (every completion was billed for the whole prompt, so the prompt tokens add up too)."""
    merged = dict(replies[0])
    choices = []
    for i, reply in enumerate(replies):
        first = (reply.get("choices") or [{}])[0]
        choices.append({**first, "index": i})
    merged["choices"] = choices
    usage = sum_usage([r.get("usage") for r in replies])
    if usage is not None:
        merged["usage"] = usage
    return merged
