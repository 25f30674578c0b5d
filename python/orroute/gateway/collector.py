"""A stand-in for a Connection that captures one plain reply, for routes built on the chat path
(``/api/v1/ai/test``, ``n > 1``, ``/v1/responses``)."""

from __future__ import annotations

__all__ = ["Collector"]


class Collector:
    """Records the status and body of the one response written to it."""

    closed = False
    last_status = 0

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    def write(self, data: bytes) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.body = body

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


