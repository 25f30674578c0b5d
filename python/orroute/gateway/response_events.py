"""The Responses API's server-sent events for a streamed chat completion (``/v1/responses`` with
``stream: true``): each chat chunk becomes the events that carry the same text and tool-call
arguments, numbered by ``sequence_number``, between ``response.created`` and
``response.completed`` (or ``response.failed``)."""

from __future__ import annotations

import time
from typing import Any

from ._json import dumps
from .errors import HttpError
from .responses import call_item, envelope, finish, message_item, obj, usage_of

__all__ = ["ResponseEvents"]


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + dumps(event) + b"\n\n"


class ResponseEvents:
    """Turns a streamed chat completion into the Responses API's server-sent events.

    >>> ev = ResponseEvents({"model": "m", "input": "hi"}, "m")  # doctest: +SKIP
    >>> ev.start() + ev.chunk(chunk) + ... + ev.end()  # bytes to relay
    """

    def __init__(self, request: dict[str, Any], model: str) -> None:
        self.request = request
        self.rid = f"resp_{time.time_ns():x}"
        self.resp = envelope(self.rid, request, model, int(time.time()), "in_progress")
        self.seq = 0
        self.text: list[str] = []
        self.text_index: int | None = None  # output_index of the message item, once opened
        self.calls: dict[int, dict[str, Any]] = {}  # tool-call index -> item being built
        self.next_index = 0
        self.usage: Any = None
        self.finish_reason: Any = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return _sse(event)

    def _snapshot(self) -> dict[str, Any]:
        return {**self.resp, "output": list(self.resp["output"])}

    def start(self) -> bytes:
        return (self._event("response.created", response=self._snapshot())
                + self._event("response.in_progress", response=self._snapshot()))

    def chunk(self, chunk: Any) -> bytes:
        """The events for one chat completion chunk (parsed JSON)."""
        if not isinstance(chunk, dict):
            return b""
        if chunk.get("model"):
            self.resp["model"] = str(chunk["model"])
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        out = b""
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = obj(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out += self._text_delta(content)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict):
                    out += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        mid = f"msg_{self.rid[5:]}"
        if self.text_index is None:
            self.text_index = self.next_index
            self.next_index += 1
            item = message_item(mid, "", "in_progress")
            item["content"] = []
            out += self._event("response.output_item.added", output_index=self.text_index,
                               item=item)
            out += self._event("response.content_part.added", item_id=mid,
                               output_index=self.text_index, content_index=0,
                               part={"type": "output_text", "text": "", "annotations": [],
                                     "logprobs": []})
        self.text.append(text)
        return out + self._event("response.output_text.delta", item_id=mid,
                                 output_index=self.text_index, content_index=0, delta=text,
                                 logprobs=[])

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        index = index if isinstance(index, int) else 0
        fn = obj(call.get("function"))
        out = b""
        item = self.calls.get(index)
        if item is None:
            item = call_item({"id": call.get("id"), "function": {"name": fn.get("name")}},
                              index, self.rid, "in_progress")
            item["output_index"] = self.next_index
            self.next_index += 1
            self.calls[index] = item
            shown = {k: v for k, v in item.items() if k != "output_index"}
            out += self._event("response.output_item.added", output_index=item["output_index"],
                               item=shown)
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item["arguments"] += args
            out += self._event("response.function_call_arguments.delta", item_id=item["id"],
                               output_index=item["output_index"], delta=args)
        return out

    def end(self) -> bytes:
        """The closing events: each item done, then ``response.completed``."""
        out = b""
        items: list[tuple[int, dict[str, Any]]] = []
        if self.text_index is not None:
            mid = f"msg_{self.rid[5:]}"
            text = "".join(self.text)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out += self._event("response.output_text.done", item_id=mid,
                               output_index=self.text_index, content_index=0, text=text,
                               logprobs=[])
            out += self._event("response.content_part.done", item_id=mid,
                               output_index=self.text_index, content_index=0, part=part)
            item = message_item(mid, text)
            out += self._event("response.output_item.done", output_index=self.text_index,
                               item=item)
            items.append((self.text_index, item))
        for call in self.calls.values():
            index = call.pop("output_index")
            call["status"] = "completed"
            out += self._event("response.function_call_arguments.done", item_id=call["id"],
                               output_index=index, name=call["name"],
                               arguments=call["arguments"])
            out += self._event("response.output_item.done", output_index=index, item=call)
            items.append((index, call))
        self.resp["output"] = [item for _, item in sorted(items, key=lambda p: p[0])]
        self.resp["status"] = "completed"
        self.resp["usage"] = usage_of(self.usage)
        finish(self.resp, self.finish_reason)
        return out + self._event("response.completed", response=self._snapshot())

    def failed(self, error: HttpError | dict[str, Any]) -> bytes:
        """``response.failed`` for an error after the stream began."""
        err = error if isinstance(error, dict) else {"code": str(error.code or error.status),
                                                     "message": str(error)}
        self.resp["status"] = "failed"
        self.resp["error"] = {"code": str(err.get("code") or "server_error"),
                              "message": str(err.get("message") or "upstream error")}
        return self._event("response.failed", response=self._snapshot())
