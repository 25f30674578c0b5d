"""Running cascades through the engine (``AIModelManager.execute_cascade``).

Two kinds of cascade are run here:

- ``orroute.routing.CascadeRouter`` (agreement cascades): after each answer, ``decide`` names the
  next model or settles; ``chosen_model`` picks the accepted answer.
- :class:`VerifiedCascade`: models in order, cheapest first; each non-final stage's answer goes
  through the verifiers (``orroute.verify``) and, when given, the learned escalation score; a
  failed verifier or a score at or above the threshold escalates to the next stage; the last stage
  is always accepted.

Every stage is one ``execute_task`` on the stage's model only (no fallback to other models):
reserved, admitted, sent, settled and recorded in the ledger by the engine like any task, under
the task's id. Self-consistency verifiers draw their extra samples the same way. The result lists
every stage with its verdicts, escalation score and cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from .manager import AIModelManager, TaskResult
    from .task import Task
    from .verify import Answer, EscalationScorer, OperatingPoint, Verdict, Verifier

__all__ = ["CascadeResult", "CascadeStream", "CascadeStreamSync", "StageRecord",
           "VerifiedCascade"]


@dataclass
class StageRecord:
    """One stage of a cascade run: the model, its answer (``result``; extra self-consistency
    ``samples``), the verifiers' ``verdicts``, the escalation ``score`` (None without a scorer),
    whether it ``escalated``, and ``cost`` (the answer plus its samples, USD)."""

    model: str
    result: TaskResult
    verdicts: list[Verdict] = field(default_factory=list)
    score: float | None = None
    escalated: bool = False
    samples: list[TaskResult] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return self.result.cost + sum((s.cost for s in self.samples), Decimal(0))


@dataclass
class CascadeResult:
    """What ``execute_cascade`` returns: ``result`` (the accepted answer), ``stages`` (every
    stage run, in order: see :class:`StageRecord`) and ``cost`` (everything paid, USD).
    ``calls`` lists every model answer (samples included) in call order."""

    result: TaskResult
    stages: list[StageRecord]
    cost: Decimal

    @property
    def calls(self) -> list[TaskResult]:
        return [r for s in self.stages for r in (s.result, *s.samples)]

    @property
    def content(self) -> str:
        return self.result.content

    @property
    def model(self) -> str:
        return self.result.model

    @property
    def escalations(self) -> int:
        return sum(s.escalated for s in self.stages)


def _result(stages: list[StageRecord], accepted: TaskResult) -> CascadeResult:
    return CascadeResult(accepted, stages, sum((s.cost for s in stages), Decimal(0)))


class VerifiedCascade:
    """Cheap model first; verify its answer; escalate when a check fails.

    The last stage is accepted whatever it says; its answer is still checked (verdicts reported,
    self-consistency skipped: no extra samples are drawn there).

    Args:
        stages: catalog model ids, cheapest first; the last is always accepted.
        verifiers: ``orroute.verify`` verifiers, names registered there, or any callable taking
            an ``Answer`` (returning a Verdict, bool or None).
        scorer: optional :class:`orroute.verify.EscalationScorer`; its extras are the verifiers'
            outcomes (+1/-1/0) in order, then ``extra(answer)`` when given.
        threshold: escalate when the score is >= threshold (default: the operating point's).
        operating_point: an :class:`orroute.verify.OperatingPoint` (e.g. from
            ``orroute routing fit --target-cost-share``) whose threshold is used.
        extra: callable giving more scorer features per answer (e.g. router probabilities).

    >>> from orroute.verify import arithmetic
    >>> c = VerifiedCascade(["mistralai/mixtral-8x7b-instruct", "openai/gpt-4o"], [arithmetic()])
    >>> c.stages[-1]
    'openai/gpt-4o'
    """

    def __init__(self, stages: Sequence[str], verifiers: Sequence[Verifier | str] = (), *,
                 scorer: EscalationScorer | None = None, threshold: float | None = None,
                 operating_point: OperatingPoint | None = None,
                 extra: Callable[[Answer], Sequence[float]] | None = None) -> None:
        from .verify import get_verifier

        if not stages or any(not isinstance(s, str) or not s for s in stages):
            raise InvalidArgumentError("a cascade needs at least one model id")
        if len(set(stages)) != len(stages):
            raise InvalidArgumentError("a cascade calls each model once")
        self.stages = list(stages)
        self.verifiers = [get_verifier(v) if isinstance(v, str) else v for v in verifiers]
        self.scorer = scorer
        self.operating_point = operating_point
        if threshold is None and operating_point is not None:
            threshold = operating_point.threshold
        if scorer is not None and threshold is None:
            raise InvalidArgumentError("a scorer needs a threshold or an operating point")
        self.threshold = threshold
        self.extra = extra

    @property
    def samples(self) -> int:
        """Answers a stage needs (the largest ``k`` of its self-consistency verifiers, else 1)."""
        return max([1, *(int(getattr(v, "samples", 1)) for v in self.verifiers)])

    def judge(self, answer: Answer) -> tuple[list[Verdict], float | None, bool]:
        """(verdicts, escalation score, escalate?) for a non-final stage's answer."""
        from .verify import run_verifiers

        verdicts = run_verifiers(self.verifiers, answer)
        if any(v.failed for v in verdicts):
            return verdicts, None, True
        if self.scorer is None:
            return verdicts, None, False
        extra = [v.as_feature() for v in verdicts] + list(self.extra(answer) if self.extra else [])
        score = self.scorer.score(answer.prompt, answer.content, extra)
        assert self.threshold is not None
        return verdicts, score, score >= self.threshold

    def calibrate(self, prompts: Sequence[str], answers: Sequence[str],
                  cheap_cost: Sequence[float], strong_cost: Sequence[float], *,
                  target_cost_share: float | None = None,
                  max_cost_share: float | None = None) -> OperatingPoint:
        """Sets :attr:`threshold` for a cost share of the strong model from a calibration set
        (a two-stage cascade): the cheap model's ``answers`` to ``prompts`` (prompts the scorer did
        not train on) and both models' costs per prompt. A cheap answer that fails a verifier is
        always escalated (it costs cheap + strong whatever the threshold); the threshold on the
        escalation score decides the rest. Returns the :class:`orroute.verify.OperatingPoint`
        (share with a 90% bootstrap interval) and keeps it in :attr:`operating_point`.
        Without a scorer the share is what the verifiers alone give.

        Raises:
            InvalidArgumentError: not a two-stage cascade, or inputs of different lengths.
        """
        from .verify import Answer, choose_operating_point

        if len(self.stages) != 2:
            raise InvalidArgumentError("calibrate() needs a two-stage cascade")
        if not len(prompts) == len(answers) == len(cheap_cost) == len(strong_cost):
            raise InvalidArgumentError("prompts, answers and costs differ in length")
        score, base, escalated = [], [], []
        for p, a, c, s in zip(prompts, answers, cheap_cost, strong_cost, strict=True):
            verdicts, sc, _ = self.judge(Answer(prompt=p, content=a))
            failed = any(v.failed for v in verdicts)
            score.append(0.0 if sc is None else sc)
            base.append(float(c) + float(s) if failed else float(c))
            escalated.append(float(c) + float(s))
        if self.scorer is None:  # nothing to choose: report what the verifiers give
            score = [0.0] * len(score)
        op = choose_operating_point(score, base, escalated, [float(s) for s in strong_cost],
                                    target_cost_share=target_cost_share,
                                    max_cost_share=max_cost_share)
        if self.scorer is not None:
            self.threshold = op.threshold
        self.operating_point = op
        return op

    def __repr__(self) -> str:
        names = [getattr(v, "__name__", "verifier") for v in self.verifiers]
        return f"VerifiedCascade({' -> '.join(self.stages)}, verifiers={names})"


def _prompt(task: Task) -> str:
    for m in reversed(task.messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _answer(task: Task, r: TaskResult, samples: Sequence[TaskResult]) -> Answer:
    from .verify import Answer

    return Answer(prompt=_prompt(task), content=r.content, response=r.response,
                  samples=[s.content for s in samples], model=r.model)


# ---------------------------------------------------------------------------- ledger tags

#: Tags every stage's calls carry in the ledger (``orroute.analytics.cascades`` reads them):
#: ``cascade`` = ``"<stage>/<stages>"`` (1-based), ``cascade_final`` = the last stage's model.
STAGE_TAG, FINAL_TAG = "cascade", "cascade_final"


def stage_task(task: Any, stage: int, models: Sequence[str]) -> Task:
    """``task`` with the ledger tags of stage ``stage`` of a cascade over ``models``."""
    import copy

    from .task import Task

    out = copy.copy(Task.coerce(task))
    out.tags = {**out.tags, STAGE_TAG: f"{stage}/{len(models)}", FINAL_TAG: models[-1]}
    return out


def _router_stage(task: Any, router: Any, calls: Mapping[str, TaskResult], model: str,
                  task_type: str | None) -> Task:
    return stage_task(task, len(calls) + 1, router.cascade(task_type).models)


# ---------------------------------------------------------------------------- agreement cascades


def _router_next(router: Any, calls: Mapping[str, TaskResult], task_type: str | None) -> str | None:
    nxt: str | None = router.decide({m: r.content for m, r in calls.items()}, task_type)
    if nxt is not None and nxt in calls:
        raise InvalidArgumentError(f"cascade asked for {nxt!r} twice")
    return nxt


def _router_result(router: Any, calls: dict[str, TaskResult], task_type: str | None) -> CascadeResult:
    chosen = router.chosen_model({m: r.content for m, r in calls.items()}, task_type)
    models = list(calls)
    stages = [StageRecord(m, calls[m], escalated=i < len(models) - 1) for i, m in enumerate(models)]
    return _result(stages, calls[chosen])


# ---------------------------------------------------------------------------- running


async def run_cascade(manager: AIModelManager, task: Task, cascade: Any, *,
                      task_type: str | None = None) -> CascadeResult:
    """Runs ``cascade`` (VerifiedCascade or CascadeRouter) for ``task`` on the engine."""
    if isinstance(cascade, VerifiedCascade):
        stages: list[StageRecord] = []
        for i, model in enumerate(cascade.stages):
            record = await _stage(manager, task, cascade, model, final=i == len(cascade.stages) - 1)
            stages.append(record)
            if not record.escalated:
                return _result(stages, record.result)
        raise AssertionError("the last stage never escalates")
    calls: dict[str, TaskResult] = {}
    while (nxt := _router_next(cascade, calls, task_type)) is not None:
        calls[nxt] = await manager._run(_router_stage(task, cascade, calls, nxt, task_type), nxt,
                                        pin=True)
    return _router_result(cascade, calls, task_type)


def run_cascade_sync(manager: AIModelManager, task: Task, cascade: Any, *,
                     task_type: str | None = None) -> CascadeResult:
    """Blocking :func:`run_cascade` (stages and samples run one after another)."""
    if isinstance(cascade, VerifiedCascade):
        stages: list[StageRecord] = []
        for i, model in enumerate(cascade.stages):
            stages.append(_stage_sync(manager, task, cascade, model,
                                      final=i == len(cascade.stages) - 1))
            if not stages[-1].escalated:
                return _result(stages, stages[-1].result)
        raise AssertionError("the last stage never escalates")
    calls: dict[str, TaskResult] = {}
    while (nxt := _router_next(cascade, calls, task_type)) is not None:
        calls[nxt] = manager._run_sync(_router_stage(task, cascade, calls, nxt, task_type), nxt,
                                       pin=True)
    return _router_result(cascade, calls, task_type)


def _stage_sync(manager: AIModelManager, task: Task, cascade: VerifiedCascade, model: str,
                final: bool) -> StageRecord:
    """Blocking :func:`_stage`: the answer, then its extra samples, one call after another."""
    staged = stage_task(task, cascade.stages.index(model) + 1, cascade.stages)
    first = manager._run_sync(staged, model, pin=True)
    extra = [] if final else [manager._run_sync(staged, model, pin=True)
                              for _ in range(cascade.samples - 1)]
    return _judged(task, cascade, model, first, extra, final)


async def _stage(manager: AIModelManager, task: Task, cascade: VerifiedCascade, model: str,
                 final: bool) -> StageRecord:
    n = 1 if final else cascade.samples
    staged = stage_task(task, cascade.stages.index(model) + 1, cascade.stages)
    import asyncio  # loaded on the first async call, not at import (~20 ms)

    results = await asyncio.gather(*(manager._run(staged, model, pin=True) for _ in range(n)))
    return _judged(task, cascade, model, results[0], list(results[1:]), final)


def _judged(task: Task, cascade: VerifiedCascade, model: str, first: TaskResult,
            samples: list[TaskResult], final: bool) -> StageRecord:
    if final:  # the last stage is accepted whatever it says; its checks are still reported
        from .verify import run_verifiers

        verdicts = run_verifiers([v for v in cascade.verifiers if not getattr(v, "samples", 0)],
                                 _answer(task, first, samples))
        return StageRecord(model, first, verdicts, None, False, samples)
    verdicts, score, escalate = cascade.judge(_answer(task, first, samples))
    return StageRecord(model, first, verdicts, score, escalate, samples)


class CascadeStream:
    """``execute_cascade(..., stream=True)``: the earlier stages run (and are verified) first;
    the final stage streams. Iterate for OpenAI ``chat.completion.chunk`` dicts; when a non-final
    stage is accepted, its whole answer arrives as one chunk. ``result`` is the
    :class:`CascadeResult` once the iteration has finished."""

    def __init__(self, manager: AIModelManager, task: Task, cascade: VerifiedCascade) -> None:
        self._manager, self._task, self._cascade = manager, task, cascade
        self.result: CascadeResult | None = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._run()

    async def _run(self) -> AsyncIterator[dict[str, Any]]:
        c, task = self._cascade, self._task
        stages: list[StageRecord] = []
        for model in c.stages[:-1]:
            record = await _stage(self._manager, task, c, model, final=False)
            stages.append(record)
            if not record.escalated:
                self.result = _result(stages, record.result)
                yield _whole_chunk(record.result)
                return
        final = c.stages[-1]
        result: TaskResult | None = None
        async for item in _stream_stage(self._manager, stage_task(task, len(c.stages), c.stages),
                                        final):
            if isinstance(item, dict):
                yield item
            else:
                result = item
        assert result is not None
        stages.append(_judged(task, c, final, result, [], final=True))
        self.result = _result(stages, result)


class CascadeStreamSync:
    """``execute_cascade_sync(..., stream=True)``: :class:`CascadeStream` for a plain ``for``
    loop. The earlier stages run (and are verified) first, one call after another; the final
    stage streams. ``result`` is the :class:`CascadeResult` once the iteration has finished;
    leaving the loop early (or ``close()``) cancels the stage still streaming."""

    def __init__(self, manager: AIModelManager, task: Task, cascade: VerifiedCascade) -> None:
        self._manager, self._task, self._cascade = manager, task, cascade
        self.result: CascadeResult | None = None
        self._gen: Generator[dict[str, Any], None, None] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()

    def _run(self) -> Generator[dict[str, Any], None, None]:
        c, task, m = self._cascade, self._task, self._manager
        stages: list[StageRecord] = []
        for model in c.stages[:-1]:
            stages.append(_stage_sync(m, task, c, model, final=False))
            if not stages[-1].escalated:
                self.result = _result(stages, stages[-1].result)
                yield _whole_chunk(stages[-1].result)
                return
        final = c.stages[-1]
        result: TaskResult | None = None
        for item in m._stream_settled_sync(stage_task(task, len(c.stages), c.stages), model=final,
                                           pin=True):
            if isinstance(item, dict):
                yield item
            else:
                result = item
        assert result is not None
        result.task_id = task.id or ""
        stages.append(_judged(task, c, final, result, [], final=True))
        self.result = _result(stages, result)


def _whole_chunk(r: TaskResult) -> dict[str, Any]:
    return {"id": r.id, "object": "chat.completion.chunk", "model": r.model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": r.content},
                         "finish_reason": "stop"}]}


async def _stream_stage(manager: AIModelManager, task: Task,
                        model: str) -> AsyncIterator[dict[str, Any] | TaskResult]:
    """Streams one stage on ``model`` only; yields chunks, then the settled TaskResult."""
    async for item in manager._stream_settled(task, model=model, pin=True):
        if not isinstance(item, dict):  # the settled TaskResult
            item.task_id = task.id or ""
        yield item
