"""The gateway's client-facing errors, in OpenAI's error shape."""

from __future__ import annotations

from ._json import dumps

__all__ = ["HttpError", "bad_field"]


class HttpError(Exception):
    """An error answered to the client in OpenAI's error shape."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> bytes:
        return dumps({"error": {"message": str(self), "type": self.type, "param": self.param,
                                "code": self.code if self.code is not None else self.status}})


def bad_field(field: str, message: str) -> HttpError:
    """A 400 naming the offending field (``param``)."""
    return HttpError(400, message, param=field, code="invalid_value")
