"""docs/integrations.md's snippets run as written, against a FakeOpenRouter named by the
environment (``OPENROUTER_BASE_URL``), each skipped when its framework is not installed."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from orroute.testing import FakeOpenRouter

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
KEY = "sk-or-v1-integrations-doc-not-a-real-key"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download


def _snippets() -> list[tuple[str, str]]:
    """(title, code) of each python block: the title is the heading above it."""
    out, title = [], "quick start"
    for heading, code in re.findall(r"^(?:### ([^\n]+)|```python\n(.*?)^```)", DOC.read_text(),
                                    flags=re.MULTILINE | re.DOTALL):
        if heading:
            title = heading
        else:
            out.append((title, code))
    return out


SNIPPETS = _snippets()
_NEEDS = {"openai-agents": "agents", "pydantic-ai": "pydantic_ai", "instructor": "instructor",
          "langchain-openai": "langchain_openai", "litellm": "litellm"}
#: Snippets written for openai 3.x (an httpx2 client): run by scripts/test-openai3.sh.
_OPENAI3 = {"openai 1.x, 2.x and 3.x (httpx and httpx2)"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=KEY) as f:
        yield f


def test_every_framework_has_a_snippet() -> None:
    assert {t for t, _ in SNIPPETS} >= {"quick start", *_NEEDS}


@pytest.mark.filterwarnings("ignore:.*ReadOnly. qualifier:UserWarning",  # litellm's own
                            "ignore:Accessing the 'model_(computed_)?fields' attribute")
@pytest.mark.parametrize(("title", "code"), SNIPPETS, ids=[t for t, _ in SNIPPETS])
def test_snippet_runs(title: str, code: str, fake: FakeOpenRouter, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    openai = pytest.importorskip("openai")
    if title in _OPENAI3 and int(openai.__version__.split(".")[0]) < 3:
        pytest.skip("an openai 3.x snippet (scripts/test-openai3.sh runs it)")
    if title in _NEEDS:
        pytest.importorskip(_NEEDS[title])
    fake.reset()
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake.base_url)
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path))
    # Runner.run_sync and Agent.run_sync run on the thread's event loop: a fresh one per snippet
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        exec(compile(code, f"{DOC.name}[{title}]", "exec"), {"__name__": "snippet"})  # noqa: S102
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
    chats = [r for r in fake.requests if r.endpoint == "/chat/completions"]
    assert chats, "the snippet made no completion"
    # the aliases were resolved by orroute: the upstream saw real model ids only
    assert all(r.model and not r.model.startswith("orroute/") for r in chats)
