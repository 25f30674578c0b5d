"""pytest plugin of orroute: the ``fake_openrouter`` and ``fake_anthropic`` fixtures.

Registered through the ``pytest11`` entry point, so it is available in any project where orroute is
installed. In a source checkout, ``from orroute.testing.pytest_plugin import fake_openrouter`` in a
``conftest.py`` does the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._anthropic import FakeAnthropic
from ._server import FakeOpenRouter

__all__ = ["fake_anthropic", "fake_openrouter"]


@pytest.fixture
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    """A running FakeOpenRouter with the bundled catalog, stopped after the test.

    Configure it in the test (``fake_openrouter.fail(...)``, ``.set_model_profile(...)``) and point
    a client at ``fake_openrouter.base_url``.
    """
    with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A running FakeAnthropic (Anthropic's Messages API, any key accepted), stopped after the test.

    Point an Anthropic provider's ``base_url`` at ``fake_anthropic.base_url`` (``.../v1``).
    """
    with FakeAnthropic() as fake:
        yield fake
