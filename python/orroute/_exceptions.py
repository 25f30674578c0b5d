"""Every exception orroute raises. Names follow the ``openai`` package where they overlap.

Hierarchy::

    OrRouteError
    ├── InvalidArgumentError (also ValueError)    bad input, caught before anything is sent
    ├── ParseError (also ValueError)              a catalog / vocabulary / saved file is unusable
    ├── NotFoundInCatalogError (also KeyError)    unknown model id, encoding, budget ...
    ├── NoModelAvailableError                     selection removed every candidate
    ├── BudgetError                               the plan's budget error
    │   ├── BudgetExceededError                   a call would push spend past a limit
    │   ├── EmergencyCutoffError                  spending is stopped in every process
    │   ├── ApprovalDeniedError                   the approval hook said no
    │   └── UnpricedModelError                    a model whose cost cannot be reserved
    └── APIError                                  anything that came from (or failed to reach) the API
        ├── APIConnectionError
        │   └── APITimeoutError
        ├── APIResponseValidationError            a reply that is not what the API promises
        ├── APIStatusError                        an HTTP error status
        │   ├── BadRequestError 400
        │   ├── AuthenticationError 401
        │   ├── PaymentRequiredError 402
        │   ├── PermissionDeniedError 403
        │   ├── NotFoundError 404
        │   ├── ConflictError 409
        │   ├── UnprocessableEntityError 422
        │   ├── RateLimitError 429
        │   └── InternalServerError 5xx
        └── StreamError                           an error event in the middle of a stream

When the ``openai`` package has been imported (by the caller: orroute never imports it), every
``APIError`` raised is also an instance of openai's class of the same name (``APIStatusError`` for
``PaymentRequiredError``, ``APIError`` for ``StreamError``), so ``except openai.RateLimitError``
catches orroute's 429 too. ``except orroute.RateLimitError`` works either way.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: `import orroute` stays fast
    from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "ApprovalDeniedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "BudgetExceededError",
    "ConflictError",
    "EmergencyCutoffError",
    "InternalServerError",
    "InvalidArgumentError",
    "NoModelAvailableError",
    "NotFoundError",
    "NotFoundInCatalogError",
    "OrRouteError",
    "ParseError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamError",
    "UnpricedModelError",
    "UnprocessableEntityError",
    "status_error_class",
]


class OrRouteError(Exception):
    """Base class of every error raised by orroute."""


class InvalidArgumentError(OrRouteError, ValueError):
    """A value passed by the caller can never be valid. Raised before any network call."""


class ParseError(OrRouteError, ValueError):
    """Input data (a models response, a vocabulary, a saved router) could not be parsed."""


class NotFoundInCatalogError(OrRouteError, KeyError):
    """A named thing (model id, encoding, budget) is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoModelAvailableError(OrRouteError):
    """Selection removed every candidate; the message names the constraint that removed the last."""


class BudgetError(OrRouteError):
    """A task would exceed the budget (the plan's ``BudgetError``)."""


class BudgetExceededError(BudgetError):
    """A call would push spend past a budget limit.

    Attributes:
        budget: the budget's name (scope and window), e.g. ``"project:demo/daily"``.
        limit, spent, reserved, estimate: amounts in USD as ``decimal.Decimal``.
        remaining: what is left in the tightest matching budget (what a cheaper model must fit).
        policy: the budget's policy, ``"refuse"`` or ``"downgrade"``.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        limit: Any = None,
        spent: Any = None,
        reserved: Any = None,
        estimate: Any = None,
        remaining: Any = None,
        policy: str | None = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.estimate = estimate
        self.remaining = remaining
        self.policy = policy


class EmergencyCutoffError(BudgetError):
    """The emergency cutoff is engaged: no spending in any process until it is lifted."""


class ApprovalDeniedError(BudgetError):
    """The approval hook refused a call estimated above the approval threshold."""


class UnpricedModelError(BudgetError):
    """A budget applies and the model's cost cannot be bounded (an id the catalog cannot price):
    the call is refused before anything is sent. Set ``unpriced_model_price`` to reserve for such
    models at a price you choose."""


class APIError(OrRouteError):
    """An error that came from the API or from failing to reach it.

    Attributes:
        message: human-readable message (never contains an API key).
        status_code: HTTP status when there was one.
        code: OpenRouter's error code (``error.code``; usually the status) when known.
        param, type: the ``error.param`` / ``error.type`` of the error body, when given.
        body: the error body as received (parsed JSON when it was JSON).
        metadata: OpenRouter's ``error.metadata`` (provider name, raw upstream error, reasons ...).
        generation_id: the generation id when known.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # openai loaded: an instance of the twin class that is also openai's (see the module doc)
        return Exception.__new__(_openai_twin(cls), *args)

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: Any = None,
        metadata: dict[str, Any] | None = None,
        generation_id: str | None = None,
        body: Any = None,
    ) -> None:
        Exception.__init__(self, message)  # not super(): openai's __init__ wants an httpx request
        self.message = message
        self.status_code = status_code
        self.code = code
        self.metadata = metadata or {}
        self.generation_id = generation_id
        self.body = body
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else body if isinstance(body, dict) else {}
        self.param: str | None = err.get("param") if isinstance(err.get("param"), str) else None
        self.type: str | None = err.get("type") if isinstance(err.get("type"), str) else None

    def __reduce__(self) -> Any:  # pickles as orroute's class (the twin is rebuilt on load)
        return (type(self).__dict__.get("_orroute_class", type(self)), self.args, self.__dict__)


class APIConnectionError(APIError):
    """The request never got an HTTP response (DNS, refused, reset, TLS)."""


class APITimeoutError(APIConnectionError):
    """A connect, first-byte, idle or total timeout expired."""


class APIResponseValidationError(APIError):
    """The API answered 2xx with a body that is not what it promises (not JSON, not an object)."""


class APIStatusError(APIError):
    """The API answered with an error status."""


class BadRequestError(APIStatusError):
    """400: invalid parameters, invalid model id, context length exceeded."""


class AuthenticationError(APIStatusError):
    """401: missing, invalid or disabled API key."""


class PaymentRequiredError(APIStatusError):
    """402: not enough credits (or the key's limit is exhausted)."""


class PermissionDeniedError(APIStatusError):
    """403: moderation flag (``metadata['reasons']``), guardrail, region or permission."""

    @property
    def reasons(self) -> list[str]:
        return list(self.metadata.get("reasons") or [])


class NotFoundError(APIStatusError):
    """404: no such model or endpoint."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class UnprocessableEntityError(APIStatusError):
    """422: well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """429: rate limited. ``retry_after`` is the wait in seconds the server asked for, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server or the upstream provider failed."""


class StreamError(APIError):
    """An error event arrived in the middle of a stream. ``partial`` holds the text received."""

    def __init__(self, message: str, *, partial: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial = partial


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """Returns the exception class for an HTTP error status (the one mapping used everywhere)."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return InternalServerError
    return APIStatusError


# ------------------------------------------------------------------------------------------------
# openai twins: built on first use, only once the caller has imported openai.

_OPENAI_PEER = {"PaymentRequiredError": "APIStatusError", "StreamError": "APIError"}
_twins: dict[type, type] = {}


class _OpenAIFields:
    """What openai's errors have beyond orroute's: ``request``, ``response`` (an httpx object
    rebuilt from the status and body, for code that reads ``err.response.headers``) and
    ``request_id``."""

    request_id: str | None = None

    @property
    def request(self) -> Any:
        return _openai_http().Request("POST", "https://orroute.invalid/")

    @property
    def response(self) -> Any:
        status = getattr(self, "status_code", None)
        if not status:
            return None
        headers = {}
        retry_after = getattr(self, "retry_after", None)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        body = getattr(self, "body", None)
        kw: dict[str, Any] = {"json": body} if isinstance(body, (dict, list)) else {}
        return _openai_http().Response(status, headers=headers, request=self.request, **kw)


def _openai_http() -> Any:
    """The HTTP library of the imported openai (httpx; httpx2 from openai 3 on, which need not
    come with httpx)."""
    from ._http_libs import for_openai

    return for_openai(sys.modules["openai"])


def _openai_twin(cls: type) -> type:
    """``cls``, or (openai imported) a subclass of it and of openai's matching error class."""
    openai = sys.modules.get("openai")
    if openai is None or "_orroute_class" in cls.__dict__:
        return cls
    twin = _twins.get(cls)
    if twin is None:
        peer = getattr(openai, _OPENAI_PEER.get(cls.__name__, cls.__name__), None)
        if peer is None:  # a class of the caller's: the twin of its nearest orroute base's peer
            peer = next((getattr(openai, _OPENAI_PEER.get(b.__name__, b.__name__), None)
                         for b in cls.__mro__[1:] if b.__module__ == __name__), None)
        if not (isinstance(peer, type) and issubclass(peer, Exception)):
            twin = cls
        else:
            twin = type(cls.__name__, (cls, _OpenAIFields, peer),
                        {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                         "_orroute_class": cls, "__doc__": cls.__doc__})
        _twins[cls] = twin
    return twin
