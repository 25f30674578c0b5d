"""Tasks and the engine handle: an :class:`orroute.Task` as an engine task, and :class:`Engine`,
what the manager holds instead of ``_core.Engine`` (plan, run blocking / awaited / streamed,
health, metrics, budgets, limits, feedback)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .. import _core
from ..task import Task
from .loop import wait
from .records import Plan, RunResult
from .wiring import give_back_leases, limit_args, limit_scope

__all__ = ["Engine", "engine_of", "engine_task", "planner", "task_request"]

def engine_task(
    request_json: str | Mapping[str, Any],
    *,
    task_type: str | None = None,
    task_id: str = "",
    stream: bool = False,
    fallbacks: Sequence[str] | None = None,
    strategy: str | None = None,
    capabilities: Sequence[str] | None = None,
    max_cost: Decimal | None = None,
    min_quality: float | None = None,
    project: str | None = None,
    conversation: str | None = None,
    tags: Sequence[tuple[str, str]] | None = None,
    use_cache: bool = True,
) -> Any:
    """An engine task: the request body (JSON text, kept as sent but ``model``, set per attempt;
    or a dict, written as JSON by the engine as the client writes its bodies) and how to route it
    (``use_cache=False``: not answered from the response cache)."""
    # one call for what every task sets (each property set is a call of its own)
    et = _core.EngineTask(request_json, task_id, stream, task_type or "")
    if fallbacks:
        et.fallbacks = list(fallbacks)
    if strategy is not None:
        et.strategy = strategy
    if capabilities:
        et.capabilities = list(capabilities)
    if max_cost is not None:
        et.max_cost = max_cost
    if min_quality is not None:
        et.min_quality = float(min_quality)
    if project:
        et.project = project
    if conversation:
        et.conversation = conversation
    if tags:
        et.tags = list(tags)
    if not use_cache:
        et.use_cache = False
    return et


def task_request(task: Any, *, stream: bool = False, model: str | None = None,
                 pin: bool = False, project: str | None = None) -> Any:
    """The engine task of an :class:`orroute.Task`: its messages and output bound as the request
    body, ``model`` first (``pin``: that model only, no fallback), its budget, quality floor,
    required capabilities, project (else ``project``), conversation and tags (read by the core:
    ``_core.engine_task_of``; :meth:`Engine.submit_task` does the same without the object)."""
    if task.__class__ is not Task:
        task = Task.coerce(task)
    return _core.engine_task_of(task, stream, model, pin, project)


def planner(catalog: Any, strategy: str = "balanced") -> Engine:
    """An engine that only plans (no key, no ledger, the given catalog as is): what
    ``CostTracker.estimate_cost`` and ``simulate`` ask when no manager's engine is at hand. It
    plans, counts and prices exactly as a manager's engine with the same catalog and strategy
    (the estimate is the amount that engine reserves)."""
    from ..selector import bundled_priors_path

    cfg = _core.EngineConfig()
    cfg.refresh_catalog = False
    cfg.strategy = strategy
    return Engine(cfg, catalog, None, bundled_priors_path().read_text(encoding="utf-8"))


def engine_of(manager: Any) -> Engine:
    """The engine an :class:`orroute.AIModelManager` routes with (the gateway relays on it)."""
    door: Engine = manager._door
    return door


class Engine:
    """The router's engine (``_core.Engine``): plan, run (blocking, awaited or streamed), health,
    metrics, budgets, limits, feedback. Held by :class:`orroute.AIModelManager`; the gateway and
    the cascade reach it through the manager's ``_door``."""

    __slots__ = ("__weakref__", "_core", "catalog", "net", "submit_task")

    def __init__(self, config: Any, catalog: Any, ledger_path: str | None, priors: str) -> None:
        self._core = _core.Engine(config, catalog, ledger_path, priors)
        if ledger_path is not None:
            # Unused lease money goes back to the budgets at exit even if the engine is still
            # referenced then (a thread holds it; the C++ destructor does it otherwise).
            weakref.finalize(self, give_back_leases, self._core)
        self.catalog = self._core.catalog  # the core catalog the engine prices with
        self.net = self._core.net_client  # its libcurl loop, for plain GETs (health, credits)
        # submit_task(task, model, pin, project, notifier, lend, loop_fd, serve_timeout) ->
        # (pending, summary or None): :meth:`submit` of ``task_request(task, model=model,
        # pin=pin, project=project)`` (lent to ``notifier`` when ``lend``) and the bridge's
        # ``serve_idle`` in one core function (an awaited manager call's way in: no EngineTask
        # object, no Python between); the arguments after ``project`` are
        # ``bridge().lend_terms(False)`` and ``not bridge().waiters``. ``task`` must be a Task.
        # Three more, ``make, task_id, compression`` (the manager's result maker): a plain
        # success finished inside comes back as its TaskResult alone instead of the pair.
        self.submit_task = _core.task_submitter(self._core)

    def submit(self, task: Any, lend_to: Any = None) -> Any:
        """Starts ``task`` on the network thread; the returned pending result has ``result()``
        and ``body()`` (the reply's bytes as received) once awaited with :func:`wait` (which
        cancels the run when the await is cancelled). ``lend_to``: the notifier of the event
        loop that awaits it, to which an idle network loop is lent (``bridge().lend_terms()[0]``:
        None while another call of that loop is awaited); then ``bridge().serve_idle(pending)``
        first."""
        return self._core.submit_async(task, lend_to)

    def plan(self, task: Any) -> Plan:
        return self._core.plan(task)  # type: ignore[return-value]

    def run(self, task: Any) -> RunResult:
        """Runs ``task`` to the end (GIL released while waiting)."""
        return self._core.run(task)  # type: ignore[return-value]

    def stream(self, task: Any, capacity: int) -> Any:
        """Starts a streamed run: ``take()`` / ``take_sse()`` chunks (at most ``capacity`` wait;
        beyond that the upstream transfer pauses), ``finished()``, ``result()``, ``cancel()``."""
        return self._core.submit_stream(task, capacity)

    async def get_json(self, path: str, *, timeouts: Any = (5.0, None, None, 10.0)
                       ) -> tuple[int, Any]:
        """GET ``path`` on the engine's endpoint through its own libcurl loop: (status, JSON), or
        (0, None) when unreachable."""
        call = self.net.start("GET", path, max_retries=0, timeouts=timeouts)
        await wait(call)
        if call.ok:
            return call.status(), call.body_json()
        return int(call.error().get("status") or 0), None

    def health(self) -> dict[str, Any]:
        return self._core.health()

    def metrics(self) -> list[dict[str, Any]]:
        return self._core.metrics()

    def set_response_cache(self, cache: Any) -> None:
        """Answers repeated requests from ``cache`` (an :class:`orroute.cache.ResponseCache`),
        consulted before anything is reserved (see docs/observability.md)."""
        self._core.set_response_cache(cache._core, cache.allow_sampling)

    def record_feedback(self, model: str, task_type: str, score: float, source: str,
                        result_id: str) -> None:
        self._core.record_feedback(model, task_type, score, source, result_id)

    def set_limit(self, scope: str, spec: Mapping[str, Any]) -> None:
        self._core.set_limit(limit_scope(scope), **limit_args(scope, spec))

    def set_budget(self, scope: str, period: str, limit: Decimal, policy: str) -> None:
        self._core.set_budget(scope, period, limit, policy)

    def set_approval(self, above: Any, hook: Any) -> None:
        """Calls estimated above ``above`` (Money, None: no rule) need ``hook`` to allow them."""
        self._core.set_approval(above, hook)

    def reserved(self) -> tuple[int, Decimal]:
        return self._core.reserved()

    def audit_usage(self, catalog: Any, model: str, usage_json: str, counted_prompt_tokens: int,
                    reserved: Decimal) -> tuple[Decimal, str, str, int]:
        """(cost, source, problem, prompt tokens) of a call the engine did not make (the
        gateway's /v1/embeddings): the upstream's usage audited under this engine's pricing
        policy (its ``cost_check_multiple``)."""
        return self._core.audit_usage(catalog, model, usage_json, counted_prompt_tokens, reserved)

    def release_leases(self) -> None:
        """Gives this process's unused budget lease money back (other processes see it free)."""
        self._core.release_leases()

    def spent(self) -> Decimal:
        return self._core.spent()
