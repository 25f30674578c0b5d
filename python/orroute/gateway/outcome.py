"""What a relayed completion tells the client besides its body: which model answered and how
many upstream requests it took (``X-Orroute-*`` headers), and the headers of an SSE answer.
Shared by the one-completion relay (app.py) and the n-choice stream (stream_n.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._http_server import header_value

__all__ = ["SERVER", "SSE", "ChatOutcome", "sent"]

SSE = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
       ("X-Accel-Buffering", "no")]
SERVER = ("Server", "orroute")


def sent(attempts: list[dict[str, Any]]) -> int:
    """Requests that reached the upstream (attempts skipped by a breaker, a rate limit or the
    budget sent nothing)."""
    return sum(1 for a in attempts if not a["outcome"].startswith("skipped"))


@dataclass
class ChatOutcome:
    """Which model a completion was sent to last, and how many upstream requests it took."""

    model: str
    attempts: int

    def headers(self) -> list[tuple[str, str]]:
        """``X-Orroute-Model`` and ``X-Orroute-Attempts``. The model may be whatever the client
        sent (an unknown id is tried as is): percent-encoded where it is not printable ASCII, so
        it can neither split the response nor fail to encode."""
        return [("X-Orroute-Model", header_value(self.model)),
                ("X-Orroute-Attempts", str(self.attempts))]
