"""Cascading router: ask cheap models first, accept when their answers agree, escalate otherwise.

A *cascade* is an ordered list of models plus, for every intermediate stage, how many of the answers
collected so far must agree to stop there. The last model's answer is always accepted. Agreement is
judged on a normalised answer key (``extract_answer``): a multiple-choice letter, a hash of the
normalised code of a reply's code block, or the normalised short text.

``CascadeRouter.fit`` enumerates cascades (single models; two models that must agree, else a
final model; three models with agreement after two and/or three calls, else a final model), one
cascade per task type (or one for all prompts), and keeps, per task type, the cascade that
maximises ``accuracy - cost_weight * cost`` on the training table. Without an explicit
``cost_weight`` it picks the cheapest weight whose training accuracy reaches ``target`` (default:
the best single model's training accuracy). Pure Python and numpy (numpy only in ``fit``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._exceptions import InvalidArgumentError

_LETTER = re.compile(r"^\(?([A-Ea-e])(?:[\)\.:,]|\s*\n|\s*$)")
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.DOTALL)
_COMMENT = re.compile(r"#[^\n]*")
FORMAT = "orroute.cascade/1"


def _digest(kind: str, text: str) -> str:
    return f"{kind}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def extract_answer(response: str | None) -> str | None:
    """Normalised answer key of a model response, or None if there is nothing to compare.

    A leading option letter alone on its line or followed by ``)``, ``.``, ``:`` or ``,``
    (``"B"``, ``"(c) ..."``, ``"A) home"``; not ``"A function ..."``) gives the upper-case letter; a
    reply with a fenced code block gives ``"code:<hash>"`` of the first block without comments and
    whitespace; other text gives its lower-cased, whitespace-collapsed form (``"text:<hash>"`` beyond
    40 characters). Idempotent: a key maps to itself.
    """
    if response is None:
        return None
    s = response.strip()
    if not s:
        return None
    if re.fullmatch(r"(code|text):[0-9a-f]{12}", s):
        return s
    m = _LETTER.match(s)
    if m:
        return m.group(1).upper()
    blocks = _FENCE.findall(s)
    if blocks:
        code = next((b for b in blocks if "def " in b), blocks[0])
        return _digest("code", "".join(_COMMENT.sub("", code).split()))
    text = " ".join(s.lower().split())
    return text if len(text) <= 40 else _digest("text", text)


@dataclass(frozen=True)
class Cascade:
    """One cascade: ``models`` in call order; ``agree[i]`` = answers that must agree to stop after
    calling ``models[:i + 2]`` (0 = never stop there), for the intermediate stages only
    (``len(agree) == len(models) - 1``; ``agree[-1]`` is unused: the last model is always accepted)."""

    models: tuple[str, ...]
    agree: tuple[int, ...]

    def describe(self) -> str:
        """Readable form, e.g. ``"Yi + Mixtral agree(2) -> gpt-4"``."""
        if len(self.models) == 1:
            return self.models[0]
        parts = [self.models[0]]
        for i, m in enumerate(self.models[1:-1]):
            parts.append(m)
            if self.agree[i]:
                parts[-1] += f" [stop if {self.agree[i]} agree]"
        return " + ".join(parts) + f" -> {self.models[-1]}"


def _decide(c: Cascade, answers: Sequence[str | None]) -> int | None:
    """Index (in ``answers``) of the accepted answer, or None to call the next model."""
    n = len(answers)
    if n == len(c.models):
        return n - 1
    if n >= 2 and c.agree[n - 2]:
        best, best_count = None, 0
        for i, a in enumerate(answers):
            if a is None:
                continue
            count = sum(1 for b in answers if b == a)
            if count > best_count:
                best, best_count = i, count
        if best is not None and best_count >= c.agree[n - 2]:
            return best
    return None


class CascadeRouter:
    """Per task type (``None`` = any prompt) a ``Cascade``; see the module docstring."""

    def __init__(self, stages: Mapping[str | None, Cascade], cost_weight: float | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        if not stages:
            raise InvalidArgumentError("a CascadeRouter needs at least one cascade")
        for c in stages.values():
            if not c.models or len(c.agree) != max(len(c.models) - 1, 0):
                raise InvalidArgumentError(f"malformed cascade {c!r}")
        self.stages: dict[str | None, Cascade] = dict(stages)
        self.cost_weight = cost_weight
        self.info: dict[str, Any] = dict(info or {})

    # ------------------------------------------------------------------ decisions
    def cascade(self, task_type: str | None = None) -> Cascade:
        """The cascade for ``task_type`` (the catch-all one when the type is unknown or None)."""
        if task_type in self.stages:
            return self.stages[task_type]
        if None in self.stages:
            return self.stages[None]
        # unknown task type and no catch-all: the most expensive (last-resort) cascade is the
        # safest; pick the one with the most stages, deterministically
        return max(self.stages.values(), key=lambda c: (len(c.models), c.models))

    def _answers(self, c: Cascade, responses: Mapping[str, str | None]) -> list[str | None]:
        answers = []
        for m in c.models:
            if m not in responses:
                break
            answers.append(extract_answer(responses[m]))
        return answers

    def decide(self, responses_so_far: Mapping[str, str | None],
               task_type: str | None = None) -> str | None:
        """The next model to call, or None when the responses so far settle the answer."""
        c = self.cascade(task_type)
        answers = self._answers(c, responses_so_far)
        if answers and _decide(c, answers) is not None:
            return None
        return c.models[len(answers)]

    def chosen_model(self, responses: Mapping[str, str | None],
                     task_type: str | None = None) -> str:
        """The model whose response is accepted. Raises InvalidArgumentError if undecided."""
        c = self.cascade(task_type)
        answers = self._answers(c, responses)
        i = _decide(c, answers) if answers else None
        if i is None:
            raise InvalidArgumentError(
                f"cascade not finished: call {c.models[len(answers)]!r} next")
        return c.models[i]

    def answer(self, responses: Mapping[str, str | None], task_type: str | None = None) -> str | None:
        """The accepted response text (of ``chosen_model``)."""
        return responses[self.chosen_model(responses, task_type)]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "cost_weight": self.cost_weight,
            "stages": [{"task_type": t, "models": list(c.models), "agree": list(c.agree)}
                       for t, c in self.stages.items()],
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CascadeRouter:
        if d.get("format") != FORMAT:
            raise InvalidArgumentError(f"not a cascade router file (format {d.get('format')!r})")
        stages = {s["task_type"]: Cascade(tuple(s["models"]), tuple(int(k) for k in s["agree"]))
                  for s in d["stages"]}
        return cls(stages, d.get("cost_weight"), d.get("info"))

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CascadeRouter:
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def __repr__(self) -> str:
        body = "; ".join(f"{t or '*'}: {c.describe()}" for t, c in self.stages.items())
        return f"CascadeRouter({body})"

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        scores: Mapping[str, Sequence[float | None]],
        costs: Mapping[str, Sequence[float | None]],
        responses: Mapping[str, Sequence[str | None]],
        task_types: Sequence[str] | None = None,
        *,
        cost_weight: float | None = None,
        target: float | None = None,
        max_models: int = 3,
    ) -> CascadeRouter:
        """Learns one cascade per task type from an outcome table with the models' responses.

        ``scores``/``costs``/``responses``: model -> value per prompt (responses may already be
        answer keys from ``extract_answer``). Rows where a model's score or cost is missing are
        dropped. ``cost_weight``: maximise ``mean score - cost_weight * mean USD cost``; if None,
        the cheapest weight on a grid whose training accuracy reaches ``target`` (default: the best
        single model's training accuracy; if unreachable, the most accurate setting).
        ``max_models``: longest cascade (1..3).
        """
        tables = _tables(prompts, scores, costs, responses, task_types, max_models)
        return tables.router(cost_weight, target)

    @classmethod
    def fit_path(
        cls,
        prompts: Sequence[str],
        scores: Mapping[str, Sequence[float | None]],
        costs: Mapping[str, Sequence[float | None]],
        responses: Mapping[str, Sequence[str | None]],
        task_types: Sequence[str] | None = None,
        *,
        cost_weights: Sequence[float | None] = (None,),
        target: float | None = None,
        max_models: int = 3,
    ) -> list[CascadeRouter]:
        """``fit`` for several cost weights at once (the candidate tables are built once)."""
        tables = _tables(prompts, scores, costs, responses, task_types, max_models)
        return [tables.router(w, target) for w in cost_weights]


class _Tables:
    """Training accuracy and cost sums of every candidate cascade, per task type."""

    def __init__(self, models: list[str], names: list[str | None], candidates: list[Any],
                 acc: Any, cost: Any, total: int, best_single: float) -> None:
        self.models, self.names, self.candidates = models, names, candidates
        self.acc, self.cost, self.total, self.best_single = acc, cost, total, best_single

    def router(self, cost_weight: float | None, target: float | None) -> CascadeRouter:
        import numpy as np

        chosen, weight = pick(self.acc, self.cost, self.total, cost_weight,
                              self.best_single if target is None else target)
        stages = {g: Cascade(tuple(self.models[j] for j in self.candidates[chosen[gi]][0]),
                             self.candidates[chosen[gi]][1]) for gi, g in enumerate(self.names)}
        rows = np.arange(len(self.names))
        info = {"train_accuracy": float(self.acc[rows, chosen].sum() / self.total),
                "train_cost": float(self.cost[rows, chosen].sum() / self.total),
                "rows": int(self.total)}
        return CascadeRouter(stages, weight, info)


def _tables(prompts: Sequence[str], scores: Mapping[str, Sequence[float | None]],
            costs: Mapping[str, Sequence[float | None]],
            responses: Mapping[str, Sequence[str | None]], task_types: Sequence[str] | None,
            max_models: int) -> _Tables:
    import numpy as np

    n = len(prompts)
    models = sorted(scores)
    if not models or set(models) != set(costs) or set(models) != set(responses):
        raise InvalidArgumentError("scores, costs and responses need the same, non-empty models")
    if not 1 <= max_models <= 3:
        raise InvalidArgumentError("max_models must be 1, 2 or 3")
    for what, table in (("scores", scores), ("costs", costs), ("responses", responses)):
        for m in models:
            if len(table[m]) != n:
                raise InvalidArgumentError(f"{what}[{m!r}] has {len(table[m])} values, not {n}")
    if task_types is not None and len(task_types) != n:
        raise InvalidArgumentError("task_types must have one entry per prompt")
    def matrix(table: Mapping[str, Sequence[float | None]]) -> Any:
        return np.array([[np.nan if (v := table[m][i]) is None else float(v) for m in models]
                         for i in range(n)], dtype=np.float64).reshape(n, len(models))

    s, c = matrix(scores), matrix(costs)
    keep = ~(np.isnan(s).any(axis=1) | np.isnan(c).any(axis=1))
    if not keep.any():
        raise InvalidArgumentError("no prompt has a score and a cost for every model")
    codes = answer_codes([[responses[m][i] for m in models] for i in range(n)])
    groups = np.array([None] * n if task_types is None else list(task_types), dtype=object)
    s, c, codes, groups = s[keep], c[keep], codes[keep], groups[keep]
    candidates = enumerate_cascades(len(models), max_models)
    names = sorted({g for g in groups if g is not None}) if task_types is not None else [None]
    acc = np.zeros((len(names), len(candidates)))
    cost = np.zeros((len(names), len(candidates)))
    for gi, g in enumerate(names):
        rows = groups == g if g is not None else np.ones(len(groups), bool)
        for ci, cand in enumerate(candidates):
            sc, co = simulate(cand, s[rows], c[rows], codes[rows])
            acc[gi, ci], cost[gi, ci] = sc.sum(), co.sum()
    return _Tables(models, names, candidates, acc, cost, len(s), float(s.mean(axis=0).max()))


# ---------------------------------------------------------------------- vectorised helpers
def answer_codes(rows: Sequence[Sequence[str | None]]) -> Any:
    """[prompt, model] integer codes of the answer keys; a missing answer gets a code unique to its
    model (negative), so it never agrees with anything."""
    import numpy as np

    table: dict[str, int] = {}
    out = np.zeros((len(rows), len(rows[0]) if rows else 0), dtype=np.int64)
    for i, row in enumerate(rows):
        for j, r in enumerate(row):
            key = extract_answer(r)
            out[i, j] = -1 - j if key is None else table.setdefault(key, len(table))
    return out


def enumerate_cascades(n_models: int, max_models: int = 3) -> list[tuple[tuple[int, ...],
                                                                         tuple[int, ...]]]:
    """All cascades considered by ``fit``, as (model indices, agree) pairs."""
    from itertools import combinations

    out: list[tuple[tuple[int, ...], tuple[int, ...]]] = [((j,), ()) for j in range(n_models)]
    if max_models < 2:
        return out
    for f in range(n_models):
        others = [j for j in range(n_models) if j != f]
        if max_models >= 2:
            for a, b in combinations(others, 2):
                out.append(((a, b, f), (2, 0)))
        if max_models >= 3:
            for a, b in combinations(others, 2):
                for x in others:
                    if x in (a, b):
                        continue
                    out.append(((a, b, x, f), (2, 2, 0)))  # stop on a pair, or on 2 of 3
                    out.append(((a, b, x, f), (2, 3, 0)))  # stop on a pair, or on all 3
            for a, b, x in combinations(others, 3):
                out.append(((a, b, x, f), (0, 2, 0)))      # always ask 3; stop on 2 of 3
                out.append(((a, b, x, f), (0, 3, 0)))      # always ask 3; stop if unanimous
    return out


def simulate(cand: tuple[tuple[int, ...], tuple[int, ...]], s: Any, c: Any, codes: Any) -> Any:
    """Per-prompt (score, cost) of one cascade on a [prompt, model] table."""
    import numpy as np

    idx, agree = cand
    n = len(s)
    done = np.zeros(n, bool)
    score = np.zeros(n)
    cost = c[:, idx[0]].copy()
    for k in range(2, len(idx) + 1):
        cost += np.where(done, 0.0, c[:, idx[k - 1]])
        if k == len(idx):
            break
        need = agree[k - 2]
        if not need:
            continue
        a = codes[:, idx[:k]]
        counts = (a[:, :, None] == a[:, None, :]).sum(axis=2)        # [n, k]
        best = counts.argmax(axis=1)
        ok = (counts.max(axis=1) >= need) & ~done
        picked = np.take_along_axis(s[:, idx[:k]], best[:, None], axis=1)[:, 0]
        score[ok] = picked[ok]
        done |= ok
    score[~done] = s[~done, idx[-1]]
    return score, cost


def pick(acc: Any, cost: Any, total: int, cost_weight: float | None,
         target: float) -> tuple[Any, float]:
    """Per group the candidate maximising acc - w * cost; w given or chosen to reach ``target``."""
    import numpy as np

    def choose(w: float) -> Any:
        # ties broken towards the cheaper candidate
        return np.array([np.lexsort((cost[g], -(acc[g] - w * cost[g])))[0]
                         for g in range(len(acc))])

    if cost_weight is not None:
        return choose(cost_weight), cost_weight
    grid = np.concatenate([np.logspace(5, -1, 121), [0.0]])
    best = None
    for w in grid:
        ch = choose(w)
        a = acc[np.arange(len(acc)), ch].sum() / total
        if a >= target - 1e-12:
            return ch, float(w)
        if best is None or a > best[0]:
            best = (a, ch, float(w))
    assert best is not None
    return best[1], best[2]
