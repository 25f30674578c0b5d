"""Test helpers: ``FakeOpenRouter``, a loopback server that speaks OpenRouter's API, and
``FakeAnthropic``, its sibling speaking Anthropic's Messages API with the same faults.

>>> from orroute.testing import FakeOpenRouter, Fault
>>> with FakeOpenRouter() as fake:
...     fake.fail("openai/gpt-4o", Fault.rate_limit(retry_after=1))
...     url = fake.base_url        # "http://127.0.0.1:PORT/api/v1"

The pytest fixture ``fake_openrouter`` is registered by orroute's pytest plugin
(``orroute.testing.pytest_plugin``, loaded automatically when orroute is installed).
"""

from __future__ import annotations

from ._anthropic import FakeAnthropic
from ._faults import Fault
from ._server import FakeOpenRouter, Headers, ModelProfile, RecordedRequest, serve_forever

__all__ = [
    "FakeAnthropic",
    "FakeOpenRouter",
    "Fault",
    "Headers",
    "ModelProfile",
    "RecordedRequest",
    "serve_forever",
]
