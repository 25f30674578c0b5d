"""Budget threshold alerts: the event type and webhook delivery (private)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ._logs import log_text

_log = logging.getLogger("orroute.cost")

#: Seconds a webhook POST may take before it is abandoned (and logged).
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class AlertEvent:
    """A soft budget threshold crossed by settled spend (fired once per threshold per window)."""

    budget: str
    threshold_pct: int
    spent: Decimal
    limit: Decimal
    window_start: datetime
    time: datetime

    @property
    def message(self) -> str:
        """The alert as one log line: the budget's name (a conversation's id, client text) cut
        and escaped as every log line quotes client text; ``budget`` holds it whole."""
        return (
            f"budget {log_text(self.budget)} reached {self.threshold_pct}% of ${self.limit} "
            f"(spent ${self.spent})"
        )

    def to_json(self) -> dict[str, Any]:
        """The webhook payload."""
        return {
            "event": "budget_threshold",
            "budget": self.budget,
            "threshold_pct": self.threshold_pct,
            "spent": str(self.spent),
            "limit": str(self.limit),
            "window_start": self.window_start.isoformat(),
            "time": self.time.isoformat(),
            "message": self.message,
        }

    @classmethod
    def _from(cls, a: Any) -> AlertEvent:
        def dt(us: int) -> datetime:
            return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)

        return cls(a.budget, int(a.threshold_pct), a.spent, a.limit, dt(a.window_start), dt(a.at))


def deliver_webhook(url: str, event: AlertEvent) -> bool:
    """POSTs the event as JSON; failures are logged, never raised (an alert must not break the
    call that spent). Returns True on a 2xx answer."""
    body = json.dumps(event.to_json()).encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:
            return 200 <= resp.status < 300
    except Exception as exc:  # noqa: BLE001  (network errors of every kind)
        _log.error("alert webhook delivery failed: %s", type(exc).__name__)
        return False


def dispatch(
    alerts: Iterable[Any],
    callbacks: Iterable[Callable[[AlertEvent], None]],
    webhook_url: str | None,
    in_flight: list[threading.Thread],
) -> None:
    """Fires each core alert once: logged, every callback called (a failing one is logged and
    skipped), and POSTed to ``webhook_url`` from a background thread (kept in ``in_flight``) so a
    slow hook never stalls the call that spent."""
    for a in alerts:
        event = AlertEvent._from(a)
        _log.warning("%s", event.message)
        for cb in list(callbacks):
            try:
                cb(event)
            except Exception:  # noqa: BLE001 (logged; a bad callback must not fail the call)
                _log.exception("alert callback %r failed", cb)
        if webhook_url:
            th = threading.Thread(target=deliver_webhook, args=(webhook_url, event), daemon=True,
                                  name="orroute-alert-webhook")
            in_flight[:] = [t for t in in_flight if t.is_alive()]
            in_flight.append(th)
            th.start()
