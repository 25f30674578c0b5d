"""CostTracker: ledger rows, exact sums, budgets and windows, alerts, webhook, approval, cutoff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import orroute

PYTHON_DIR = str(Path(orroute.__file__).resolve().parent.parent)


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def tracker(ledger_location: str) -> orroute.CostTracker:
    """A fresh tracker on each backend (SQLite file, Redis)."""
    return orroute.CostTracker(ledger_location)


def test_default_ledger_lives_under_orroute_home(tmp_path: Path) -> None:
    t = orroute.CostTracker()
    assert Path(t.path) == tmp_path / "orroute-home" / "ledger.sqlite3"
    t.track_usage("t1", "m/a", 120, "0.001")
    assert orroute.CostTracker().total_cost() == Decimal("0.001")


def test_track_usage_and_record_call_keep_every_column(tracker: orroute.CostTracker) -> None:
    tracker.track_usage("t1", "m/a", {"prompt": 10, "completion": 5}, Decimal("0.0000001"))
    tracker.record_call(
        cost="0.000000020833333333",
        model="m/b",
        model_requested="m/a",
        provider="P",
        generation_id="gen-1",
        project="p",
        conversation="c",
        tags={"user": "alice"},
        task_id="t2",
        task_type="coding",
        prompt_tokens=100,
        completion_tokens=20,
        cached_tokens=3,
        cache_write_tokens=2,
        reasoning_tokens=1,
        estimated_cost="0.01",
        latency=1.25,
        ttft=0.5,
        outcome="error",
        error_class="RateLimitError",
        attempts=3,
    )
    first, second = tracker.usage_history()
    assert (first.task_id, first.model, first.prompt_tokens, first.completion_tokens) == (
        "t1",
        "m/a",
        10,
        5,
    )
    assert second.cost == Decimal("0.000000020833333333")
    assert second.model_requested == "m/a" and second.model == "m/b"
    assert second.tags == {"user": "alice"}
    assert (second.latency_s, second.ttft_s, second.attempts) == (1.25, 0.5, 3)
    assert (second.outcome, second.error_class) == ("error", "RateLimitError")
    assert tracker.usage_history(tag="user=alice") == [second]
    assert tracker.usage_history(limit=1) == [second]
    with pytest.raises(orroute.InvalidArgumentError):
        tracker.record_call(cost=1, model="m", bogus=1)


def test_sums_are_exact_over_many_rows(tracker: orroute.CostTracker) -> None:
    price = Decimal("0.000000020833333333")
    expected = Decimal(0)
    for i in range(1, 2001):
        tracker.track_usage(f"t{i}", "m/a", i, price * i)
        expected += price * i
    assert tracker.total_cost() == expected
    (row,) = tracker.report("all", "model")
    assert row.cost == expected and row.calls == 2000


def test_reserve_settle_release_and_context_manager(tracker: orroute.CostTracker) -> None:
    tracker.set_budget(1, project="demo")
    with tracker.reserve("0.6", project="demo") as r:
        assert tracker.budget_status(project="demo").reserved == Decimal("0.6")
        with pytest.raises(orroute.BudgetExceededError) as info:
            tracker.reserve("0.5", project="demo")
        e = info.value
        assert (e.budget, e.limit, e.spent, e.reserved, e.estimate, e.remaining, e.policy) == (
            "project:demo/total",
            1,
            0,
            Decimal("0.6"),
            Decimal("0.5"),
            Decimal("0.4"),
            "refuse",
        )
        assert isinstance(e, orroute.BudgetError)
        r.settle("0.25", model="m/a", completion_tokens=7)
    status = tracker.budget_status(project="demo")
    assert (status.spent, status.reserved, status.remaining) == (
        Decimal("0.25"),
        0,
        Decimal("0.75"),
    )
    with tracker.reserve("0.7", project="demo"):
        pass  # released on exit without settling
    assert tracker.budget_status(project="demo").reserved == 0
    assert tracker.live_reservations() == (0, 0)
    (row,) = tracker.usage_history()
    assert (row.project, row.estimated_cost, row.cost) == ("demo", Decimal("0.6"), Decimal("0.25"))


def test_a_negative_cost_is_refused_unless_recorded_as_a_refund(
    tracker: orroute.CostTracker,
) -> None:
    tracker.set_budget(1)
    t1 = tracker.track_usage("t1", "m/a", 10, "0.5")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.track_usage("t2", "m/a", 10, "-0.4")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.record_call(cost=Decimal("-0.4"), model="m/a")
    with tracker.reserve("0.1") as r, pytest.raises(orroute.InvalidArgumentError, match="refund"):
        r.settle("-0.4", model="m/a")
    assert [row.task_id for row in tracker.usage_history()] == ["t1"]
    assert tracker.budget_status().spent == Decimal("0.5")
    with pytest.raises(orroute.InvalidArgumentError):
        tracker.record_refund("-0.4", call_id=t1)
    tracker.record_refund("0.4", call_id=t1)
    assert tracker.budget_status().spent == Decimal("0.1")
    rows = sorted((r.outcome, r.cost, r.task_id, r.model) for r in tracker.usage_history())
    assert rows == [("ok", Decimal("0.5"), "t1", "m/a"), ("refund", Decimal("-0.4"), "t1", "m/a")]


def test_a_refund_gives_back_no_more_than_its_call_cost(tracker: orroute.CostTracker) -> None:
    """check_call's rule is that a lying or mistaken figure must not refill a budget: a refund
    of more than its call cost is one. Capped at what the call cost less its earlier refunds,
    refused whole with nothing written."""
    tracker.set_budget(1)
    tracker.set_budget(10, project="p")
    t1 = tracker.track_usage("t1", "m/a", 10, "0.5")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.record_refund("1000", call_id=t1)
    with pytest.raises(orroute.InvalidArgumentError, match="project"):
        tracker.record_refund("0.1", call_id=t1, project="p")  # booked in its call's scope
    with pytest.raises(orroute.InvalidArgumentError, match="no call"):
        tracker.record_refund("0.1", call_id=t1 + 1000)
    tracker.record_refund("0.3", call_id=t1)
    tracker.record_refund("0.2", call_id=t1)  # all of it, and no more
    assert tracker.budget_status().spent == 0
    with pytest.raises(orroute.InvalidArgumentError, match="left to give back"):
        tracker.record_refund("0.01", call_id=t1)
    assert [r.outcome for r in tracker.usage_history()].count("refund") == 2


def test_a_refund_does_not_reopen_a_budget_another_project_spent(
    tracker: orroute.CostTracker,
) -> None:
    """rev22: a refund was bounded by what each budget it matched spent in its window, so one in
    a project with no budget of its own reopened the global budget by what other projects
    spent. A provider refunds a call: the refund names it and gives back no more than it cost."""
    tracker.set_budget(1)
    tracker.record_call(cost="0.5", model="m/a", project="b")
    a = tracker.record_call(cost="0.1", model="m/a", project="a")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.record_refund("0.4", call_id=a)  # project a's call cost 0.1
    assert tracker.budget_status().spent == Decimal("0.6")
    tracker.record_refund("0.1", call_id=a)
    assert tracker.budget_status().spent == Decimal("0.5")
    (refund,) = [r for r in tracker.usage_history() if r.outcome == "refund"]
    assert refund.project == "a"


def test_a_refund_is_booked_only_by_record_refund(tracker: orroute.CostTracker) -> None:
    """A call's settle or record books what a call cost; an outcome "refund" there would let it
    book a negative cost past record_refund's checks."""
    tracker.set_budget(1)
    tracker.track_usage("t1", "m/a", 10, "0.5")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.record_call(cost=Decimal("-0.4"), model="m/a", outcome="refund")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        tracker.record_call(cost=Decimal("0.4"), model="m/a", outcome="refund")
    r = tracker.reserve("0.1")
    with pytest.raises(orroute.InvalidArgumentError, match="refund"):
        r.settle("-0.4", model="m/a", outcome="refund")
    r.settle("0.1", model="m/a")
    assert [row.outcome for row in tracker.usage_history()] == ["ok", "ok"]
    assert tracker.budget_status().spent == Decimal("0.6")


def test_downgrade_budget_reports_what_is_left(tracker: orroute.CostTracker) -> None:
    tracker.set_budget("0.10", tag="team=search", policy="downgrade")
    tracker.reserve("0.08", tags={"team": "search"})
    with pytest.raises(orroute.BudgetExceededError) as info:
        tracker.reserve("0.05", tags={"team": "search", "user": "bob"})
    assert info.value.policy == "downgrade"
    assert info.value.remaining == Decimal("0.02")
    assert tracker.headroom(tags={"team": "search"}) == Decimal("0.02")
    assert tracker.headroom(project="other") is None
    tracker.reserve("0.02", tags={"team": "search"})  # a cheaper model fits


@pytest.mark.parametrize(
    ("period", "before", "after"),
    [
        ("daily", datetime(2024, 3, 5, 23, 59, 59), datetime(2024, 3, 6, 0, 0, 0)),
        ("monthly", datetime(2024, 2, 29, 23, 59), datetime(2024, 3, 1, 0, 0)),
        ("monthly", datetime(2024, 12, 31, 23, 59), datetime(2025, 1, 1, 0, 0)),
        ("weekly", datetime(2024, 3, 10, 23, 59), datetime(2024, 3, 11, 0, 0)),  # Sun -> Mon
    ],
    ids=["midnight", "leap-month-end", "year-end", "week"],
)
def test_windows_roll_over(
    period: str, before: datetime, after: datetime, ledger_location: str
) -> None:
    clock = Clock(before.replace(tzinfo=timezone.utc))
    t = orroute.CostTracker(ledger_location, clock=clock)
    t.set_budget(1, period=period)
    t.reserve(1).settle(1)
    with pytest.raises(orroute.BudgetExceededError):
        t.reserve("0.01")
    clock.now = after.replace(tzinfo=timezone.utc)
    status = t.budget_status()
    assert status.spent == 0 and status.window[0] == clock.now
    t.reserve(1).settle(1)


def test_window_in_a_time_zone(ledger_location: str) -> None:
    # 23:30 UTC on 5 March is already 6 March in Berlin: a new Berlin day.
    clock = Clock(datetime(2024, 3, 5, 22, 30, tzinfo=timezone.utc))
    t = orroute.CostTracker(ledger_location, clock=clock)
    t.set_budget(1, period="daily", time_zone="Europe/Berlin")
    t.reserve(1).settle(1)
    clock.now = datetime(2024, 3, 5, 23, 30, tzinfo=timezone.utc)
    assert t.budget_status().window[0] == datetime(2024, 3, 5, 23, 0, tzinfo=timezone.utc)
    assert t.budget_status().spent == 0
    with pytest.raises(orroute.NotFoundInCatalogError):
        t.set_budget(1, period="daily", time_zone="Nowhere/Atlantis")


@pytest.mark.parametrize("zone", ["UTC\0x", "Europe/Berlin\n", "../etc/passwd", "/etc/localtime",
                                  "Europe/Berlin ", "zone.tab", "Z" * 300])
def test_a_time_zone_name_that_is_no_zone_file_name_is_refused(zone: str) -> None:
    """Only a zone's name (letters, digits, / _ - +) is looked up: "UTC\\0x" opened UTC's file
    (the NUL ended the file name) and was stored under its own name."""
    t = orroute.CostTracker(":memory:")
    with pytest.raises(orroute.InvalidArgumentError, match="bad time zone name"):
        t.set_budget(1, period="daily", time_zone=zone)
    with pytest.raises(orroute.NotFoundInCatalogError, match="no budget"):
        t.budget_status(period="daily")  # nothing was stored


def test_thresholds_fire_once_to_callbacks_and_logging(
    ledger_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = orroute.CostTracker(ledger_location)
    tracker.set_budget(10, project="p")
    seen: list[orroute.cost.AlertEvent] = []
    tracker.on_alert(seen.append)
    for _ in range(12):
        tracker.record_call(cost=1, model="m", project="p")
    assert [a.threshold_pct for a in seen] == [50, 80, 100]
    assert seen[0].spent == 5 and seen[2].spent == 10
    assert [a.threshold_pct for a in tracker.alerts] == [50, 80, 100]
    assert sum("reached 80%" in r.getMessage() for r in caplog.records) == 1
    # Another tracker (as another process would) on the same ledger does not fire them again.
    other = orroute.CostTracker(ledger_location)
    other_seen: list[object] = []
    other.on_alert(other_seen.append)
    other.record_call(cost=1, model="m", project="p")
    assert other_seen == []


def test_a_conversation_id_reaches_a_log_line_or_a_message_cut_and_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A conversation's id is client text: a 100 kB id, or one holding a newline that would forge
    a second log line, is quoted cut to 200 bytes with its length and its control characters
    escaped, in the alert's log line and in a BudgetExceededError's message (both carried it
    whole); the alert's ``budget`` keeps the name whole."""
    conversation = "c\nWARNING forged line\x1b[31m" + "x" * 100_000
    tracker = orroute.CostTracker(":memory:")
    tracker.set_budget(2, conversation=conversation)
    seen: list[orroute.cost.AlertEvent] = []
    tracker.on_alert(seen.append)
    tracker.record_call(cost=1, model="m", conversation=conversation)
    name = f"conversation:{conversation}/total"
    assert seen and seen[0].budget == name
    whole = f"({len(name.encode())} bytes)"
    [line] = [r.getMessage() for r in caplog.records if "reached 50%" in r.getMessage()]
    assert "\n" not in line and "\x1b" not in line and len(line) < 400
    assert "c\\nWARNING forged line\\x1b[31m" in line and whole in line
    with pytest.raises(orroute.BudgetExceededError) as e:
        tracker.reserve(5, conversation=conversation)
    assert len(str(e.value)) < 400 and whole in str(e.value)
    assert e.value.budget == name


def test_alert_webhook_posts_json_to_loopback(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        t = orroute.CostTracker(tmp_path / "l.sqlite3", webhook_url=url)
        t.set_budget("1.00", thresholds=[80])
        t.record_call(cost="0.5", model="m")
        t.flush_webhooks()
        assert received == []
        t.record_call(cost="0.3", model="m")
        t.flush_webhooks()
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    assert received[0]["event"] == "budget_threshold"
    assert received[0]["threshold_pct"] == 80
    assert received[0]["spent"] == "0.8" and received[0]["limit"] == "1"


def test_approval_hook_guards_expensive_calls(tracker: orroute.CostTracker) -> None:
    asked: list[orroute.cost.ApprovalRequest] = []

    def hook(req: orroute.cost.ApprovalRequest) -> bool:
        asked.append(req)
        return req.project == "trusted"

    tracker.set_approval("0.50", hook)
    tracker.reserve("0.50").release()  # at the threshold: not asked
    assert asked == []
    tracker.reserve("2", project="trusted", model="m/big").release()
    with pytest.raises(orroute.ApprovalDeniedError):
        tracker.reserve("2", project="other")
    assert [(a.estimate, a.project) for a in asked] == [(2, "trusted"), (2, "other")]
    assert asked[0].model == "m/big"
    assert tracker.live_reservations()[0] == 0
    tracker.set_approval(None, None)
    tracker.reserve("2").release()


def test_cutoff_is_seen_by_another_process(ledger_location: str) -> None:
    path = ledger_location
    t = orroute.CostTracker(path)
    t.cutoff("runaway agent")
    child = (
        "import orroute, sys\n"
        f"t = orroute.CostTracker({path!r})\n"
        "try:\n"
        "    t.reserve('0.01')\n"
        "except orroute.EmergencyCutoffError as e:\n"
        "    print('CUT', e)\n"
        "t.resume()\n"
    )
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
    out = subprocess.run(
        [sys.executable, "-c", child],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.startswith("CUT") and "runaway agent" in out.stdout
    assert t.cutoff_reason is None  # lifted by the other process
    t.reserve("0.01").settle("0.01")


def test_cutoff_blocks_until_resumed(tracker: orroute.CostTracker) -> None:
    tracker.cutoff()
    with pytest.raises(orroute.EmergencyCutoffError):
        tracker.reserve(0)
    tracker.resume()
    tracker.reserve(0).release()


def test_report_groups_and_measures_estimate_error(ledger_location: str) -> None:
    clock = Clock(datetime(2024, 1, 31, 12, tzinfo=timezone.utc))
    t = orroute.CostTracker(ledger_location, clock=clock)
    t.record_call(cost="0.10", model="a", estimated_cost="0.20", latency=1.0)
    t.record_call(cost="0.30", model="b", tags={"user": "u1"})
    clock.now += timedelta(days=1)
    t.record_call(cost="0.05", model="a", estimated_cost="0.05", outcome="error")
    rows = {(r.period, r.key): r for r in t.report("all", "model", bucket="day")}
    assert rows[("2024-01-31", "a")].estimate_error == 1.0
    assert rows[("2024-02-01", "a")].errors == 1
    months = t.report("all", "month")
    assert [(r.period, r.cost) for r in months] == [
        ("2024-01", Decimal("0.40")),
        ("2024-02", Decimal("0.05")),
    ]
    by_user = {r.key: r.cost for r in t.report("all", "tag:user")}
    assert by_user == {"": Decimal("0.15"), "u1": Decimal("0.30")}
    # period is the range: today (the clock's day), this month.
    assert [(r.key, r.cost) for r in t.report("today", "model")] == [("a", Decimal("0.05"))]
    assert sum(r.calls for r in t.report("month", None)) == 1
    with pytest.raises(orroute.InvalidArgumentError):
        t.report("all", "nonsense")
    with pytest.raises(orroute.InvalidArgumentError):
        t.report("fortnight")


def test_to_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    t = orroute.CostTracker(":memory:")
    t.record_call(cost="0.5", model="a", prompt_tokens=3)
    df = t.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df["model"]) == ["a"]
    assert df["cost"][0] == Decimal("0.5") and df["cost_usd"][0] == 0.5


def test_expected_completion_tokens_learns_from_history(tracker: orroute.CostTracker) -> None:
    assert tracker.expected_completion_tokens("coding", "m") == 1024
    for n in range(1, 101):
        tracker.record_call(cost=0, model="m", task_type="coding", completion_tokens=n)
    assert tracker.expected_completion_tokens("coding", "m") == 90


def test_estimate_cost_prices_prompt_and_output_exactly(tracker: orroute.CostTracker) -> None:
    catalog = orroute.Catalog.bundled()
    model = next(m.id for m in catalog if m.pricing.prompt > 0 and m.pricing.completion > 0)
    task = orroute.Task(type="coding", messages="hi", input_size=1000, max_tokens=500)
    expected = catalog.cost(model, prompt_tokens=1000, completion_tokens=500)
    assert tracker.estimate_cost(task, model) == expected
    # Without max_tokens: the learned expectation for this task type and model.
    for n in (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000):
        tracker.record_call(cost=0, model=model, task_type="coding", completion_tokens=n)
    open_task = orroute.Task(type="coding", messages="hi", input_size=1000)
    assert tracker.estimate_cost(open_task, model) == catalog.cost(
        model, prompt_tokens=1000, completion_tokens=900
    )
    with pytest.raises(orroute.NotFoundInCatalogError, match="no/such-model"):
        tracker.estimate_cost(task, "no/such-model")


def test_failed_settle_inside_with_releases_the_reservation(tracker: orroute.CostTracker) -> None:
    tracker.set_budget(1)
    with pytest.raises(orroute.InvalidArgumentError), tracker.reserve("0.5") as r:
        r.settle("0.1", model="m", prompt_tokens=-1)
    assert tracker.live_reservations() == (0, 0)
    assert tracker.usage_history() == []
    assert tracker.budget_status().reserved == 0


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_a_settle_the_ledger_cannot_write_keeps_the_reservation_held(tmp_path: Path,
                                                                      leases: bool) -> None:
    """The call was made and billed; its row could not be written (a full disk, here a trigger
    refusing every row). Leaving the ``with`` block released its reservation, so the budget
    never saw the money."""
    import sqlite3

    path = tmp_path / "ledger.sqlite3"
    tracker = orroute.CostTracker(path, leases=leases)
    tracker.set_budget(1)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER no_rows BEFORE INSERT ON calls "
                   "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(orroute.OrRouteError, match="disk full"), tracker.reserve("0.6") as r:
        r.settle("0.6", model="m")
    assert tracker.live_reservations() == (1, Decimal("0.6"))
    with pytest.raises(orroute.BudgetExceededError):
        tracker.reserve("0.6")


def test_estimate_cost_counts_prompt_tokens_with_the_tokenizer(
    tracker: orroute.CostTracker,
) -> None:
    catalog = orroute.Catalog.bundled()
    model = next(m.id for m in catalog if m.pricing.prompt > 0 and m.pricing.completion > 0)
    task = orroute.Task(type="general", messages="Count the tokens of this prompt.", max_tokens=10)
    prompt = int(orroute.count_tokens(task.messages, model=model))
    assert prompt > 0
    assert tracker.estimate_cost(task, model) == catalog.cost(
        model, prompt_tokens=prompt, completion_tokens=10
    )


def test_estimate_cost_without_a_model_prices_the_selectors_choice() -> None:
    """The plan calls ``CostTracker().estimate_cost(task)`` with no model: the tracker asks the
    selector which model the task would run on and prices that exactly."""
    tracker = orroute.CostTracker(":memory:")
    task = orroute.Task(type="coding", messages="Write a haiku about C++", max_tokens=200,
                        input_size=1000, budget="0.05")
    chosen = orroute.ModelSelector().select_model("coding", 1000, task.budget)
    expected = orroute.Catalog.bundled().cost(chosen, prompt_tokens=1000, completion_tokens=200)
    assert tracker.estimate_cost(task) == expected


def test_settle_delay_writes_settles_behind_and_flush_fires_their_alerts(tmp_path: Path) -> None:
    path = tmp_path / "behind.sqlite3"
    tracker = orroute.CostTracker(path, settle_delay=60)
    tracker.set_budget(1, project="p")
    seen: list[orroute.cost.AlertEvent] = []
    tracker.on_alert(seen.append)
    other = orroute.CostTracker(path)  # as another process would see the file
    assert tracker.reserve("0.6", project="p").settle("0.6", model="m") == 0  # not written yet
    assert other.total_cost(project="p") == 0 and seen == []
    assert tracker.total_cost(project="p") == Decimal("0.6")  # its own reads see it at once
    assert other.total_cost(project="p") == Decimal("0.6")
    tracker.flush()  # the read wrote it; the alert it crossed fires with the next flush/settle
    assert [a.threshold_pct for a in seen] == [50]
    tracker.reserve("0.1", project="p").settle("0.1", model="m")
    tracker.close()  # writes what waits, gives the lease back
    status = other.budget_status(project="p")
    assert status.spent == Decimal("0.7") and status.reserved == 0
    with pytest.raises(orroute.InvalidArgumentError):
        orroute.CostTracker(path, settle_delay=-1)


def test_rows_written_before_the_utf8_fix_read_with_replacement_chars(tmp_path: Path) -> None:
    """A ledger written by an older version may hold names that are not UTF-8 (a hostile
    upstream's model or provider): every query reads them with U+FFFD instead of raising."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    tracker = orroute.CostTracker(str(path))
    tracker.record_call(cost="0.5", model="m/a", provider="P", project="p", tags={"user": "u"})
    tracker.close()
    db = sqlite3.connect(path)
    bad = "CAST(? AS TEXT)"  # the bytes as they are, typed TEXT as the old writer stored them
    db.execute(f"UPDATE calls SET model_used = {bad}, provider = {bad}, project = {bad}",
               (b"test/a\xff", b"Prov\xfe\xc3", b"proj\xc3("))
    db.execute(f"UPDATE call_tags SET value = {bad}", (b"u\xff",))
    db.commit()
    db.close()

    tracker = orroute.CostTracker(str(path))
    (row,) = tracker.usage_history()
    assert (row.model, row.provider, row.project) == ("test/a\ufffd", "Prov\ufffd\ufffd",
                                                      "proj\ufffd(")
    assert row.tags == {"user": "u\ufffd"}
    for by in ("model", "provider", "project", "tag:user"):
        (report_row,) = tracker.report(by=by)
        assert "\ufffd" in report_row.key and report_row.cost == Decimal("0.5")
    assert tracker.to_dataframe()["model"].tolist() == ["test/a\ufffd"]


