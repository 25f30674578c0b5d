"""Prompt compression: a conversation about to exceed a token or cost threshold on the model it is
sent to has its older turns summarised by a cheap model, or dropped, before the call.

Which messages stay is decided in C++ (``cpp/orroute/route/compression.h``: the system prompt, the
last ``keep_last`` messages, an assistant tool call never separated from its results; counted by
the model's tokenizer and priced from the catalog). This module holds the options, writes the
summary request (an ordinary task, reserved, settled and recorded in the ledger like any call,
as task ``<id>:summary`` of type ``summarization``) and rebuilds the messages. The manager runs
it before every call when ``compress=`` is set on it or on the task (docs/router.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from .manager import AIModelManager, TaskResult
    from .task import Task

__all__ = ["Compressed", "Compression"]

SUMMARY_PROMPT = (
    "Summarise the conversation below for the assistant who will continue it. Keep every fact, "
    "number, name, decision, open question and tool result that may matter later; drop "
    "pleasantries. Write plain prose, at most a few short paragraphs."
)
SUMMARY_PREFIX = "Summary of the earlier conversation: "


@dataclass(frozen=True)
class Compression:
    """When and how to compress a prompt.

    Args:
        max_tokens: compress when the prompt has more tokens than this on the model it is sent to.
        max_cost: compress when the prompt alone would cost more than this (USD) on that model
            (an unknown price counts as over: money fails closed).
        keep_last: messages kept verbatim at the end (more when a tool call's results follow).
        summarize_with: model id of the cheap summariser; None drops the older turns instead.
        summary_max_tokens: output cap of the summary call (and the room reserved for it).

    >>> Compression(max_tokens=8000, summarize_with="openai/gpt-4o-mini").keep_last
    6
    """

    max_tokens: int | None = None
    max_cost: Decimal | None = None
    keep_last: int = 6
    summarize_with: str | None = None
    summary_max_tokens: int = 400

    def __post_init__(self) -> None:
        if self.max_tokens is None and self.max_cost is None:
            raise InvalidArgumentError("compression needs max_tokens and/or max_cost")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidArgumentError("compression max_tokens must be >= 1")
        if self.max_cost is not None:
            try:
                cost = Decimal(str(self.max_cost))
            except ArithmeticError:
                raise InvalidArgumentError("compression max_cost must be an amount in USD") from None
            if not cost.is_finite() or cost < 0:
                raise InvalidArgumentError("compression max_cost must be >= 0")
            object.__setattr__(self, "max_cost", cost)
        if self.keep_last < 1 or self.summary_max_tokens < 1:
            raise InvalidArgumentError("compression keep_last and summary_max_tokens must be >= 1")

    @classmethod
    def coerce(cls, value: Any) -> Compression | None:
        """A Compression from a Compression, a mapping of its fields, or None/False (off)."""
        if value is None or value is False:
            return None
        if isinstance(value, Compression):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise InvalidArgumentError(f"unknown compression option {min(unknown)!r}")
            return cls(**value)
        raise InvalidArgumentError(f"compress must be a Compression, a mapping or None, got "
                                   f"{type(value).__name__}")

    def rule(self) -> Any:
        from . import _core

        r = _core.CompressionRule()
        r.max_prompt_tokens = self.max_tokens or 0
        r.max_prompt_cost = self.max_cost
        r.keep_last = self.keep_last
        r.summary_tokens = self.summary_max_tokens if self.summarize_with else 0
        return r


@dataclass
class Compressed:
    """What compression did to one call (``TaskResult.compression``): the model the prompt was
    measured on, its tokens before, the kept messages' tokens (without the summary), how many
    messages were folded, and the summary call's result (None when trimmed; ``summary_error``
    says why a summary was asked for and not used)."""

    model: str
    reason: str
    prompt_tokens: int
    kept_tokens: int
    folded: int
    summary: TaskResult | None = None
    summary_error: str | None = None
    kept: list[int] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        """What the summary cost (USD; 0 when trimmed)."""
        return self.summary.cost if self.summary is not None else Decimal(0)


@dataclass
class Prepared:
    """A compression decided but not applied: the plan, and the summary task to run (if any)."""

    options: Compression
    model: str
    plan: Any
    summary_task: Task | None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return " ".join(str(p.get("text", "[image]" if p.get("type") == "image_url" else ""))
                        for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    """The folded messages as the summariser reads them: one ``role: text`` block each, tool
    calls as ``name(arguments)``."""
    lines = []
    for m in messages:
        role = str(m.get("role", ""))
        text = _text(m.get("content"))
        calls = m.get("tool_calls") or []
        for c in calls if isinstance(calls, list) else []:
            fn = c.get("function") if isinstance(c, Mapping) else None
            if isinstance(fn, Mapping):
                text += f"\n[calls {fn.get('name')}({fn.get('arguments')})]"
        lines.append(f"{role}: {text.strip()}")
    return "\n\n".join(lines)


def options_for(manager_default: Compression | None, task: Task) -> Compression | None:
    """The task's own ``compress`` (False: off) or else the manager's."""
    own = getattr(task, "compress", None)
    if own is False:
        return None
    return Compression.coerce(own) if own is not None else manager_default


def prepare(manager: AIModelManager, task: Task, model: str | None,
            catalog: Any) -> Prepared | None:
    """Decides (in C++) whether ``task`` is compressed for ``model`` (or the engine's first
    candidate for it), priced from ``catalog`` (the engine's core catalog); None when not."""
    from . import _core

    opts = options_for(manager._compress, task)
    if opts is None or not task.messages:
        return None
    target = model
    if not target:
        candidates = manager.plan(task)["candidates"]
        if not candidates:
            return None  # the call itself will say why no model can take it
        target = candidates[0]
    tools = task.params.get("tools")
    plan = _core.plan_compression(target, json.dumps(list(task.messages), ensure_ascii=False),
                                  opts.rule(), catalog,
                                  json.dumps(tools) if tools else "")
    if not plan.compress:
        return None
    summary_task = None
    if opts.summarize_with:
        folded = [task.messages[i] for i in plan.fold]
        summary_task = type(task)(  # an orroute.Task (task.py imports this module)
            id=f"{task.id}:summary", type="summarization",
            messages=[{"role": "system", "content": SUMMARY_PROMPT},
                      {"role": "user", "content": transcript(folded)}],
            max_tokens=opts.summary_max_tokens, project=task.project,
            conversation=task.conversation, tags=task.tags, compress=False,
            budget=task.budget)  # paid from the task's budget: never above it (apply() deducts)
    return Prepared(opts, target, plan, summary_task)


def apply(task: Task, prep: Prepared, summary: TaskResult | None,
          error: str | None = None) -> tuple[Task, Compressed]:
    """``task`` with its messages compressed by ``prep`` (the summary inserted after the leading
    system messages, or nothing when trimmed), and the record of what was done."""
    plan = prep.plan
    kept = [dict(task.messages[i]) for i in plan.keep]
    if summary is not None and summary.content.strip():
        kept.insert(plan.summary_at, {"role": "system",
                                      "content": SUMMARY_PREFIX + summary.content.strip()})
    budget = task.budget
    if budget is not None and summary is not None:  # the summary was paid from the task's budget
        budget = max(Decimal(0), budget - summary.cost)
    out = type(task)(id=task.id, type=task.type, messages=kept, input_size=None,
               max_tokens=task.max_tokens, project=task.project, capabilities=task.capabilities,
               quality=task.quality, budget=budget, conversation=task.conversation,
               tags=task.tags, params=task.params, compress=False)
    return out, Compressed(prep.model, plan.reason, plan.prompt_tokens, plan.kept_tokens,
                           len(plan.fold), summary, error, list(plan.keep))
