"""``orroute demo``: a mixed agent workload run through ``AIModelManager`` under a budget.

With ``OPENROUTER_API_KEY`` set it calls OpenRouter; without it, it starts
:class:`orroute.testing.FakeOpenRouter` in-process with per-model latencies modelled on typical
OpenRouter figures (time-compressed, see ``speed``) and a few injected faults, and says so.

What it shows, as it goes: progress, each routing decision and its reason, a fallback when a model
fails, one task's answer streaming, a budget alert firing; and at the end a cost report by model and
task type, the savings against always using the premium model, and where the ledger is (the
notebooks in ``notebooks/`` read it).

The workload itself (:func:`workload`) and the offline server setup (:func:`start_offline`) are
public so that tests, notebooks and benchmarks can reuse them.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "PREMIUM_MODEL",
    "PROFILES",
    "DemoSpec",
    "DemoSummary",
    "apply_realistic_profiles",
    "demo_reply",
    "start_offline",
    "workload",
    "workload_specs",
]

# The premium model of the integration guide ("best performance, higher cost"): the baseline the
# savings are measured against.
PREMIUM_MODEL = "openai/gpt-4o"

# (latency to response headers, further time to first token, output tokens per second): typical
# OpenRouter figures per model family, as in the integration guide's benchmarks (GPT-4o 2-5 s for a
# full answer, Haiku 0.5-2 s ...). "*" is every other model.
PROFILES: dict[str, tuple[float, float, float]] = {
    "*": (0.35, 0.30, 90.0),
    "openai/gpt-4o": (0.40, 0.35, 80.0),
    "openai/gpt-4o-mini": (0.30, 0.25, 110.0),
    "openai/gpt-4.1": (0.45, 0.40, 75.0),
    "openai/gpt-4.1-mini": (0.30, 0.25, 110.0),
    "anthropic/claude-sonnet-4.5": (0.55, 0.45, 65.0),
    "anthropic/claude-opus-4.5": (0.80, 0.70, 45.0),
    "anthropic/claude-haiku-4.5": (0.25, 0.20, 140.0),
    "anthropic/claude-3-haiku": (0.20, 0.15, 150.0),
    "google/gemini-2.5-flash": (0.25, 0.20, 170.0),
    "google/gemini-2.5-pro": (0.60, 0.60, 80.0),
    "meta-llama/llama-3.1-8b-instruct": (0.20, 0.15, 200.0),
    "meta-llama/llama-3.3-70b-instruct": (0.30, 0.25, 120.0),
    "deepseek/deepseek-chat": (0.45, 0.40, 60.0),
}


@dataclass(frozen=True)
class DemoSpec:
    """One task of the demo workload (turned into an :class:`orroute.Task` by :func:`workload`)."""

    id: str
    type: str
    prompt: str
    max_tokens: int
    stream: bool = False
    label: str = ""


_CODE = [
    (("Write a Python function that parses ISO-8601 durations like 'P3DT4H5M' into seconds, "
     "with type hints and doctests."), "parse ISO-8601 durations"),
    (("Review this diff for bugs and race conditions:\n```go\nfunc (c *Cache) Get(k string) "
     "(V, bool) {\n  c.mu.RLock()\n  v, ok := c.m[k]\n  c.mu.RUnlock()\n  if !ok { c.mu.Lock(); "
     "c.m[k] = load(k); c.mu.Unlock() }\n  return v, ok\n}\n```"), "review a Go cache"),
    (("Refactor this SQL so it uses a window function instead of a correlated subquery:\n"
     "SELECT o.id, (SELECT SUM(total) FROM orders i WHERE i.customer = o.customer AND "
     "i.created <= o.created) FROM orders o;"), "refactor SQL"),
    (("Implement an LRU cache in TypeScript with O(1) get and put, generic over keys and values, "
     "and explain the data structure."), "TypeScript LRU cache"),
    (("Write pytest tests for a function `slugify(title: str) -> str` covering unicode, "
     "punctuation, repeated separators and empty input."), "pytest for slugify"),
    (("Find the bug: `for i in range(len(xs)): if xs[i] == target: del xs[i]` raises "
     "IndexError on some inputs. Explain and fix it."), "fix IndexError"),
]
_QUESTIONS = [
    (("Wake me up at 7 AM tomorrow. What is the intent of this request, and how confident are "
     "you?"), "intent: alarm"),
    ("Remind me in 2 hours. Extract the time information as ISO-8601.", "extract time"),
    ("What does HTTP status 429 mean and how should a client react to it?", "HTTP 429"),
    ("Translate 'the meeting moved to Thursday' into French and German.", "translate"),
    ("What is the capital of Australia, and why is it not Sydney?", "capital of Australia"),
    ("Convert 72 degrees Fahrenheit to Celsius.", "unit conversion"),
    ("Give three names for a home-automation assistant.", "naming"),
]
_REVIEWS = [
    "The blender is powerful and easy to clean, but the lid leaks if you fill it past 1 litre.",
    "Delivery took three weeks and nobody answered my emails. The product itself is fine.",
    "Best headphones I have owned: great noise cancelling, battery lasts all week.",
    "The app crashes every time I try to export a PDF. Support says a fix is coming.",
    "Comfortable shoes, true to size, though the colour is darker than in the photos.",
    "Setup took five minutes and the camera picture is sharp even at night.",
    "The hotel was clean and central but the walls are thin and breakfast was cold.",
    "Great value for money. I bought a second one for my parents.",
]
_REASONING = [
    (("A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. How much "
     "does the ball cost? Show your reasoning step by step."), "bat and ball"),
    ("Prove that the sum of two odd integers is always even.", "odd + odd"),
    (("Six database migrations have dependencies: B needs A, C needs A, D needs B and C, E "
     "needs D, F needs C. Give a valid order and explain why it is valid, step by step."),
     "migration order"),
    ("Estimate how many piano tuners work in Chicago. Show each assumption and the arithmetic.",
     "Fermi estimate"),
    (("If all bloops are razzies and some razzies are lazzies, must some bloops be lazzies? "
     "Explain carefully."), "syllogism"),
]
_PLANNING = [
    (("Plan a three-stage rollout of a feature flag for a payments service, with the metrics "
     "that gate each stage and the rollback plan."), "feature-flag rollout"),
    (("Plan the migration of a monolith's user module into a separate service over six weeks: "
     "milestones, risks and how to keep both in sync."), "service extraction"),
]
_VERIFY = [
    (('Verify that this JSON matches the schema {"type":"object","required":["id","email"]}: '
     '{"id": 7, "mail": "a@b.c"}. Answer valid or invalid with the reason.'), "JSON schema check"),
]


def _contract(n_clauses: int) -> str:
    """A long synthetic contract (deterministic) for the long-context task."""
    rng = random.Random(8)
    parties = ["the Supplier", "the Customer", "the Contractor", "the Licensee"]
    verbs = ["shall deliver", "shall maintain", "may terminate", "shall indemnify", "shall report"]
    objects = ["the Services", "all Deliverables", "the Confidential Information",
               "the Acceptance Tests", "the Service Credits"]
    out = []
    for i in range(1, n_clauses + 1):
        clause = (f"{i}. {rng.choice(parties)} {rng.choice(verbs)} {rng.choice(objects)} in "
                  f"accordance with Schedule {rng.randint(1, 9)}, subject to clause "
                  f"{rng.randint(1, n_clauses)} and to the limits in Annex {rng.choice('ABCD')}.")
        if i in (137, 612, 1180):
            clause += " The final deadline for completion is 30 June, after which penalties apply."
        out.append(clause)
    return "\n".join(out)


def workload_specs(*, long_context_clauses: int = 1400) -> list[DemoSpec]:
    """The demo's 30 tasks, interleaved the way an agent's calls arrive."""
    code = [DemoSpec(f"code-{i + 1}", "coding", p, 400, label=lab)
            for i, (p, lab) in enumerate(_CODE)]
    code[3] = DemoSpec(code[3].id, code[3].type, code[3].prompt, 400, stream=True,
                       label=code[3].label)
    questions = [DemoSpec(f"ask-{i + 1}", "general", p, 150, label=lab)
                 for i, (p, lab) in enumerate(_QUESTIONS)]
    bulk = [DemoSpec(f"sum-{i + 1}", "bulk_processing",
                     f"Summarize this customer review in one sentence: {r}", 60,
                     label=f"summarize review {i + 1}") for i, r in enumerate(_REVIEWS)]
    reasoning = [DemoSpec(f"reason-{i + 1}", "reasoning", p, 500, label=lab)
                 for i, (p, lab) in enumerate(_REASONING)]
    planning = [DemoSpec(f"plan-{i + 1}", "planning", p, 500, label=lab)
                for i, (p, lab) in enumerate(_PLANNING)]
    verify = [DemoSpec("verify-1", "verification", _VERIFY[0][0], 100, label=_VERIFY[0][1])]
    long_doc = DemoSpec(
        "long-1", "large_context",
        "List every clause of this contract that mentions a deadline, with its number.\n\n"
        + _contract(long_context_clauses), 200, label="contract deadlines (long context)")
    order = [
        questions[0], code[0], reasoning[0], questions[1], code[1], *bulk[:4], reasoning[1],
        planning[0], questions[2], code[2], long_doc, verify[0], reasoning[2], code[3],
        questions[3], *bulk[4:], reasoning[3], code[4], questions[4], planning[1],
        reasoning[4], code[5], questions[5], questions[6],
    ]
    return order


def workload(*, project: str = "demo", long_context_clauses: int = 1400) -> list[Any]:
    """The demo workload as :class:`orroute.Task` objects (30 tasks)."""
    from ..task import Task

    return [Task(id=s.id, type=s.type, messages=s.prompt, max_tokens=s.max_tokens,
                 project=project, tags={"demo": "1"})
            for s in workload_specs(long_context_clauses=long_context_clauses)]


# --- the offline server ---------------------------------------------------------------------------


def demo_reply(body: dict[str, Any]) -> str:
    """A plausible answer for a demo prompt (FakeOpenRouter ``set_reply`` callable): code for
    coding tasks, one sentence for summaries, worked steps for reasoning."""
    msgs = body.get("messages") or []
    text = str(msgs[-1].get("content", "")) if msgs else ""
    rng = random.Random(zlib.crc32(text[:200].encode()))
    if text.startswith("Summarize this customer review"):
        review = text.split(":", 1)[-1].strip()
        return f"The customer {rng.choice(['mostly likes', 'is unhappy with', 'is mixed about'])}" \
               f" the purchase: {review.split('.')[0].lower()}."
    if "```" in text or any(w in text for w in ("Python function", "TypeScript", "pytest",
                                                    "SQL", "Find the bug")):
        return (
            "Here is a solution, with the reasoning after the code.\n\n```python\n"
            "def solve(items: list[str]) -> dict[str, int]:\n"
            "    \"\"\"Counts each item, keeping the first-seen order.\"\"\"\n"
            "    counts: dict[str, int] = {}\n"
            "    for item in items:\n"
            "        counts[item] = counts.get(item, 0) + 1\n"
            "    return counts\n```\n\n"
            "The loop visits every element once, so it runs in O(n) time and O(k) space for k "
            "distinct items. Edge cases: an empty list returns an empty dict, and the order of "
            "keys follows first appearance because dicts keep insertion order. To make this "
            "safe under concurrency, hold the lock across the check and the update, or use an "
            "atomic get-or-insert, so that two callers never both miss and both load."
        )
    if any(w in text for w in ("step by step", "Prove", "Estimate", "carefully", "Plan ")):
        steps = rng.randint(4, 6)
        body_steps = " ".join(
            f"Step {i}: we check the constraint introduced so far and carry the partial result "
            f"forward, noting what would change if the assumption failed." for i in
            range(1, steps + 1))
        return f"Let us work through it. {body_steps} Therefore the answer follows from the " \
               "last step, and each step can be checked on its own."
    if "contract" in text:
        return "Clauses 137, 612 and 1180 mention the final deadline of 30 June, after which " \
               "penalties apply. No other clause sets a date."
    return "Short answer: " + text.split("?")[0][:80].rstrip(".") + " — " + rng.choice([
        "the most likely reading is the direct one, with high confidence (0.93).",
        "here it is, with one caveat about the context.",
        "done; tell me if you need more detail.",
    ])


def apply_realistic_profiles(fake: Any, speed: float = 1.0) -> None:
    """Gives each model of :data:`PROFILES` its latency, time to first token and pace, divided by
    ``speed`` (``speed=4``: four times faster than the real figures)."""
    for model, (latency, ttft, tps) in PROFILES.items():
        fake.set_model_profile(model, latency=latency / speed, ttft=ttft / speed,
                               tokens_per_second=tps * speed)


def start_offline(*, speed: float = 4.0, seed: int = 0) -> Any:
    """A started FakeOpenRouter with realistic (time-compressed) latencies and demo answers."""
    from ..testing import FakeOpenRouter

    fake = FakeOpenRouter(seed=seed, record=True, use_uvloop=False)
    apply_realistic_profiles(fake, speed)
    fake.set_reply("*", demo_reply)
    return fake.start()


# --- running ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the demo shows about one finished task (normalized from the manager's result)."""

    task_id: str
    task_type: str
    model: str | None
    cost: Decimal
    latency: float
    reasons: list[str] = field(default_factory=list)
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)
    content: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    complexity: tuple[float | None, str | None] | None = None


@dataclass
class DemoSummary:
    """The demo's results (what ``orroute demo --json`` prints)."""

    mode: str
    base_url: str
    ledger: str
    project: str
    budget: Decimal
    strategy: str
    tasks: int
    succeeded: int
    failed: int
    fallbacks: int
    alerts: list[str]
    total_cost: Decimal
    premium_model: str
    premium_cost: Decimal | None
    savings: Decimal | None
    by_model: dict[str, dict[str, Any]]
    by_task_type: dict[str, dict[str, Any]]
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    # the provider-outage scene (offline): {tasks, answered, by_provider: {name: {calls, cost}}}
    provider_outage: dict[str, Any] | None = None


def _elapsed(start: float) -> float:
    return time.perf_counter() - start


Callback = Callable[..., Any]
Specs = Sequence[DemoSpec]
