"""Response objects in the shape of the ``openai`` package's types, with OpenRouter's extras.

Every object wraps the JSON the server sent: fields are attributes (``completion.choices[0].
message.content``), a known field the server left out reads as ``None``, fields this module does not
know are still reachable as attributes, and ``model_dump()`` / ``to_dict()`` give the JSON back as a
dict. Objects are cheap: nested objects are built on first access, and a client's chat reply
stays parsed in the core until read (a field becomes Python values when first read; the whole
dict only for ``model_dump``, ``==``, ``repr``, copies and setting a field).

>>> c = ChatCompletion({"id": "gen-1", "choices": [{"index": 0, "message": {"content": "hi"}}]})
>>> c.choices[0].message.content
'hi'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from . import _core

__all__ = [
    "BaseObject",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChunkChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "CostDetails",
    "CreateEmbeddingResponse",
    "Credits",
    "Embedding",
    "Function",
    "Generation",
    "KeyInfo",
    "Model",
    "ModelList",
    "PromptTokensDetails",
]


# How a field is read from a parsed reply (``_core.JsonRef.get``): all Python values, a JsonRef
# for a nested response type, a list of them; and what it answers for a field the reply lacks.
_PLAIN, _OBJECT, _OBJECTS = 0, 1, 2
_ABSENT = object()
_JsonRef = _core.JsonRef


class BaseObject:
    """A JSON object with attribute access (the common base of every response type)."""

    _fields: ClassVar[dict[str, Any]] = {}  # field -> nested type, list[type] as (type,), or None

    def __init__(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        d = dict(data) if data is not None else {}
        d.update(kwargs)
        object.__setattr__(self, "_data", d)

    @classmethod
    def _over(cls, ref: Any) -> Any:
        """An object over a reply the core keeps parsed (``_core.JsonRef``): a field becomes a
        Python value when it is first read, and the whole dict (``_data``) only when something
        needs all of it (``model_dump``, ``==``, ``repr``, setting a field)."""
        obj = cls.__new__(cls)
        obj.__dict__["_ref"] = ref  # not through __setattr__, which sets a field of _data
        return obj

    def __getattr__(self, name: str) -> Any:
        # One frame for a field read from the parsed reply (the common read: a caller's first
        # access of each field), as a nested type over a nested object, else Python values.
        if name[:2] == "__":
            raise AttributeError(name)
        d = self.__dict__
        data = d.get("_data")
        if data is None:
            ref = d.get("_ref")
            if ref is None:  # neither: an object not made by this class's constructors
                raise AttributeError(name)
            if name == "_data":  # first asked for: the whole object, made from the reply
                data = d.setdefault("_data", ref.to_py())
                d.pop("_ref", None)
                return data
            kind = type(self)._fields.get(name)
            if kind is None:
                value = ref.get(name, _PLAIN, _ABSENT)
            elif type(kind) is tuple:  # the list is the core's new one: its objects replaced
                value = ref.get(name, _OBJECTS, _ABSENT)
                if type(value) is list:
                    kind = kind[0]
                    for i, x in enumerate(value):
                        if type(x) is _JsonRef:
                            value[i] = obj = kind.__new__(kind)  # as _over, without its frame
                            obj.__dict__["_ref"] = x
            else:
                value = ref.get(name, _OBJECT, _ABSENT)
                if type(value) is _JsonRef:
                    x, value = value, kind.__new__(kind)  # as _over, without its frame
                    value.__dict__["_ref"] = x
            if value is _ABSENT:
                return self._absent(name)
            d[name] = value  # cache: the next access does not come here
            return value
        try:
            raw = data[name]
        except KeyError:
            return self._absent(name)
        kind = type(self)._fields.get(name)
        if raw is None or kind is None:
            value = raw
        elif isinstance(kind, tuple):
            value = (
                [kind[0](x) if isinstance(x, dict) else x for x in raw]
                if isinstance(raw, list)
                else raw
            )
        else:
            value = kind(raw) if isinstance(raw, dict) else raw
        self.__dict__[name] = value  # cache: the next access does not come here
        return value

    def _absent(self, name: str) -> None:
        """A field the server left out: None if this type knows it, else no such attribute."""
        if name not in type(self)._fields:
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:  # copy / pickle: the JSON, not the parsed reply
        return {"_data": self._data}

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__.pop(name, None)
        self._data[name] = value.model_dump() if isinstance(value, BaseObject) else value

    def model_dump(
        self,
        *,
        mode: str = "python",
        include: Any = None,
        exclude: Any = None,
        by_alias: bool | None = None,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        round_trip: bool = False,
        warnings: Any = True,
        **_ignored: Any,
    ) -> dict[str, Any]:
        """The object as a plain dict (deep copy of the JSON), taking pydantic's arguments.

        The dict holds the fields the server sent, so it is already what ``exclude_unset=True``
        gives in pydantic; ``mode`` and ``by_alias`` change nothing (the values are JSON and the
        names the wire names). ``include`` / ``exclude`` are top-level field names (a set, or a
        dict whose keys are used); ``exclude_none`` drops None values at every depth."""
        d: dict[str, Any] = json.loads(json.dumps(self._data))
        if include is not None:
            d = {k: v for k, v in d.items() if k in include}
        if exclude is not None:
            d = {k: v for k, v in d.items() if k not in exclude}
        if exclude_none:
            d = _drop_none(d)
        return d

    def to_dict(self, *, mode: str = "python", use_api_names: bool = True,
                exclude_unset: bool = True, exclude_defaults: bool = False,
                exclude_none: bool = False, warnings: bool = True) -> dict[str, Any]:
        """openai's ``to_dict``: the JSON as a dict (see ``model_dump``)."""
        return self.model_dump(exclude_none=exclude_none)

    def model_dump_json(self, *, indent: int | None = None, include: Any = None,
                        exclude: Any = None, exclude_none: bool = False,
                        **kwargs: Any) -> str:
        """The object as JSON text (``model_dump``'s arguments)."""
        return json.dumps(self.model_dump(include=include, exclude=exclude,
                                          exclude_none=exclude_none, **kwargs), indent=indent)

    def to_json(self, *, indent: int | None = 2, use_api_names: bool = True,
                exclude_unset: bool = True, exclude_defaults: bool = False,
                exclude_none: bool = False, warnings: bool = True) -> str:
        """openai's ``to_json`` (indented by 2 by default, as openai's)."""
        return self.model_dump_json(indent=indent, exclude_none=exclude_none)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy (its own JSON), with ``update``'s fields replaced."""
        data = self.model_dump()
        if update:
            data.update({k: v.model_dump() if isinstance(v, BaseObject) else v
                         for k, v in update.items()})
        return type(self)(data)

    @classmethod
    def model_validate(cls, obj: Any, **_ignored: Any) -> Any:
        """An object of this type from a dict (or an object with ``model_dump``)."""
        if isinstance(obj, cls):
            return obj
        if hasattr(obj, "model_dump"):
            obj = obj.model_dump()
        if not isinstance(obj, dict):
            raise TypeError(f"{cls.__name__}.model_validate needs a dict, got {type(obj).__name__}")
        return cls(obj)

    @classmethod
    def model_validate_json(cls, text: str | bytes, **_ignored: Any) -> Any:
        return cls.model_validate(json.loads(text))

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the server sent."""
        return set(self._data)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # like pydantic: (field, value) pairs
        for k in self._data:
            yield k, getattr(self, k)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BaseObject):
            return type(self) is type(other) and self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._data.items())
        return f"{type(self).__name__}({inner})"


def _drop_none(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_none(x) for x in v]
    return v


class PromptTokensDetails(BaseObject):
    _fields = dict.fromkeys(["cached_tokens", "cache_write_tokens", "audio_tokens", "video_tokens"])


class CompletionTokensDetails(BaseObject):
    _fields = dict.fromkeys(
        [
            "reasoning_tokens",
            "image_tokens",
            "audio_tokens",
            "accepted_prediction_tokens",
            "rejected_prediction_tokens",
        ]
    )


class CostDetails(BaseObject):
    _fields = dict.fromkeys(
        [
            "upstream_inference_cost",
            "upstream_inference_prompt_cost",
            "upstream_inference_completions_cost",
        ]
    )


class CompletionUsage(BaseObject):
    """Token counts and OpenRouter's ``cost`` (USD, a float as sent; use ``cost_decimal`` to sum)."""

    _fields: ClassVar[dict[str, Any]] = {
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "cost": None,
        "is_byok": None,
        "prompt_tokens_details": PromptTokensDetails,
        "completion_tokens_details": CompletionTokensDetails,
        "cost_details": CostDetails,
        "server_tool_use_details": None,
    }

    @property
    def cost_decimal(self) -> Any:
        """``cost`` as an exact ``decimal.Decimal`` (from the number's shortest decimal form)."""
        from decimal import Decimal

        c = self.cost
        return None if c is None else Decimal(repr(c)) if isinstance(c, float) else Decimal(c)

    @property
    def cached_tokens(self) -> int:
        d = self.prompt_tokens_details
        return int(d.cached_tokens or 0) if d is not None else 0

    @property
    def cache_write_tokens(self) -> int:
        d = self.prompt_tokens_details
        return int(d.cache_write_tokens or 0) if d is not None else 0

    @property
    def reasoning_tokens(self) -> int:
        d = self.completion_tokens_details
        return int(d.reasoning_tokens or 0) if d is not None else 0


class Function(BaseObject):
    _fields = dict.fromkeys(["name", "arguments"])


class ChatCompletionMessageToolCall(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {"id": None, "type": None, "function": Function}


class ChatCompletionMessage(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {
        "role": None,
        "content": None,
        "refusal": None,
        "reasoning": None,
        "reasoning_details": None,
        "tool_calls": (ChatCompletionMessageToolCall,),
        "annotations": None,
        "images": None,
        "audio": None,
        "function_call": None,
    }


class Choice(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {
        "index": None,
        "message": ChatCompletionMessage,
        "finish_reason": None,
        "native_finish_reason": None,
        "logprobs": None,
        "error": None,
    }


class ChatCompletion(BaseObject):
    """A chat completion (``object == "chat.completion"``). ``id`` is OpenRouter's generation id;
    ``provider`` names the upstream that served it; ``usage.cost`` is the charge in USD."""

    _fields: ClassVar[dict[str, Any]] = {
        "id": None,
        "object": None,
        "created": None,
        "model": None,
        "provider": None,
        "system_fingerprint": None,
        "service_tier": None,
        "choices": (Choice,),
        "usage": CompletionUsage,
    }

    @property
    def generation_id(self) -> str | None:
        return self.id


class ChoiceDeltaToolCallFunction(BaseObject):
    _fields = dict.fromkeys(["name", "arguments"])


class ChoiceDeltaToolCall(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {"index": None, "id": None, "type": None, "function": ChoiceDeltaToolCallFunction}


class ChoiceDelta(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {
        "role": None,
        "content": None,
        "refusal": None,
        "reasoning": None,
        "reasoning_details": None,
        "tool_calls": (ChoiceDeltaToolCall,),
        "function_call": None,
    }


class ChunkChoice(BaseObject):
    _fields: ClassVar[dict[str, Any]] = {
        "index": None,
        "delta": ChoiceDelta,
        "finish_reason": None,
        "native_finish_reason": None,
        "logprobs": None,
    }


class ChatCompletionChunk(BaseObject):
    """One streamed chunk (``object == "chat.completion.chunk"``); the last one carries ``usage``."""

    _fields: ClassVar[dict[str, Any]] = {
        "id": None,
        "object": None,
        "created": None,
        "model": None,
        "provider": None,
        "system_fingerprint": None,
        "service_tier": None,
        "choices": (ChunkChoice,),
        "usage": CompletionUsage,
        "error": None,
    }


class Embedding(BaseObject):
    """One embedding: ``embedding`` (floats, or a base64 string when asked for), ``index``."""

    _fields: ClassVar[dict[str, Any]] = {"embedding": None, "index": None, "object": None}


class CreateEmbeddingResponse(BaseObject):
    """``embeddings.create``'s result: ``data`` (Embedding), ``model``, ``usage`` (with cost)."""

    _fields: ClassVar[dict[str, Any]] = {
        "data": (Embedding,),
        "model": None,
        "object": None,
        "usage": CompletionUsage,
    }


class Model(BaseObject):
    """One entry of ``/models`` (pricing strings are USD per token)."""

    _fields = dict.fromkeys(
        [
            "id",
            "canonical_slug",
            "name",
            "created",
            "description",
            "context_length",
            "architecture",
            "pricing",
            "top_provider",
            "per_request_limits",
            "supported_parameters",
            "default_parameters",
            "hugging_face_id",
            "expiration_date",
        ]
    )


class ModelList(BaseObject):
    """The model list: iterable over ``Model``; ``data`` holds them; ``raw`` is the JSON."""

    _fields: ClassVar[dict[str, Any]] = {"data": (Model,), "object": None}

    def __iter__(self) -> Iterator[Model]:  # type: ignore[override]
        return iter(self.data or [])

    def __len__(self) -> int:
        return len(self._data.get("data") or [])

    @property
    def ids(self) -> list[str]:
        return [m.get("id") for m in self._data.get("data") or []]

    def to_catalog(self) -> Any:
        """This list as an :class:`orroute.Catalog` (exact prices, capabilities, selection).

        Raises:
            orroute.ParseError: the list is not a ``/models`` response.
        """
        from .catalog import Catalog

        return Catalog.from_json(self.model_dump_json())


class Credits(BaseObject):
    """``/credits``: ``total_credits`` and ``total_usage`` in USD; ``balance`` is their difference."""

    _fields = dict.fromkeys(["total_credits", "total_usage"])

    @property
    def balance(self) -> float | None:
        if self.total_credits is None or self.total_usage is None:
            return None
        return float(self.total_credits) - float(self.total_usage)


class KeyInfo(BaseObject):
    """``/key``: the key's label (already masked by OpenRouter), limits and usage in USD."""

    _fields = dict.fromkeys(
        [
            "label",
            "limit",
            "limit_remaining",
            "limit_reset",
            "usage",
            "usage_daily",
            "usage_weekly",
            "usage_monthly",
            "is_free_tier",
            "is_management_key",
            "is_provisioning_key",
            "expires_at",
            "rate_limit",
            "include_byok_in_limit",
            "byok_usage",
        ]
    )


class Generation(BaseObject):
    """``/generation?id=``: what a generation cost and how it was served (costs USD, times ms)."""

    _fields = dict.fromkeys(
        [
            "id",
            "model",
            "provider_name",
            "total_cost",
            "usage",
            "created_at",
            "latency",
            "generation_time",
            "tokens_prompt",
            "tokens_completion",
            "native_tokens_prompt",
            "native_tokens_completion",
            "native_tokens_reasoning",
            "native_tokens_cached",
            "finish_reason",
            "native_finish_reason",
            "streamed",
            "cancelled",
            "is_byok",
            "cache_discount",
            "upstream_id",
            "provider_responses",
        ]
    )
