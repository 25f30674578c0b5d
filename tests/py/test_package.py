"""The package as a user meets it: import cost, exact money at the boundary, error hierarchy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import _core


def test_import_is_light() -> None:
    """`import orroute` must not pull in heavy optional libraries or the C++ core."""
    code = (
        "import sys, orroute; "
        "heavy = [m for m in ('pandas', 'numpy', 'matplotlib', 'rich', 'orroute._core') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unbuilt_source_tree_says_how_to_build(tmp_path: Path) -> None:
    """`import orroute` from a source tree whose extensions were never compiled names the way
    to build them, not only the missing module (`orroute._task`, which it loads first)."""
    source = Path(orroute.__file__).parent
    shutil.copytree(source, tmp_path / "orroute",
                    ignore=shutil.ignore_patterns("*.so", "data", "__pycache__"))
    out = subprocess.run([sys.executable, "-c", "import orroute"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last == ("ModuleNotFoundError: orroute._task is not built: this orroute is a source "
                    "tree whose extensions were never compiled. Build them with "
                    "scripts/dev-build.sh (they are linked into python/orroute), or install the "
                    "package: pip install ."), out.stderr


@pytest.mark.parametrize("cls", ["OpenRouter", "AIModelManager"])
def test_a_sync_client_is_usable_without_importing_asyncio(cls: str) -> None:
    """Importing asyncio is most of the time to a usable client or manager (~20 ms of a
    manager's ~55): only async calls need it."""
    code = (
        f"import sys, orroute; c = orroute.{cls}(api_key='sk-or-v1-not-a-real-key'); "
        "print('asyncio' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(orroute.__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


def _fresh(code: str) -> str:
    """stdout of ``code`` run in a fresh interpreter on this tree's package."""
    env = dict(os.environ, PYTHONPATH=str(Path(orroute.__file__).resolve().parents[1]))
    env.pop("LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


@pytest.mark.parametrize("cls", ["OpenRouter", "AsyncOpenRouter", "AIModelManager"])
def test_a_client_is_usable_without_importing_logging(cls: str) -> None:
    """`logging` (~3.5 ms with traceback) is imported on the first record or callback only."""
    code = (
        f"import sys, orroute; c = orroute.{cls}(api_key='sk-or-v1-not-a-real-key'); "
        "print('logging' in sys.modules, 'orroute._observe_dispatch' in sys.modules)"
    )
    assert _fresh(code) == "False False"


def test_a_manager_is_usable_without_the_cascade_module() -> None:
    """The cascade runner is imported by the first cascade (or `orroute.CascadeResult`)."""
    code = (
        "import sys, orroute; m = orroute.AIModelManager(api_key='sk-or-v1-not-a-real-key'); "
        "print('orroute._cascade_run' in sys.modules); "
        "from orroute.manager import CascadeResult; print(CascadeResult is orroute.CascadeResult)"
    )
    assert _fresh(code).split("\n") == ["False", "True"]


def test_unimported_logging_reads_as_unconfigured() -> None:
    """Without `logging` imported, INFO is off and WARNING on (as an unconfigured logger), and
    a warning still reaches stderr; once the application configures logging, its level rules."""
    code = (
        "import sys; from orroute import _logs; "
        "print(_logs.enabled(20), _logs.enabled(30), 'logging' in sys.modules); "
        "import logging; logging.getLogger('orroute').setLevel(logging.INFO); "
        "print(_logs.enabled(20), _logs.enabled(10))"
    )
    assert _fresh(code).split("\n") == ["False True False", "True False"]


def test_every_public_name_resolves() -> None:
    """__all__ is derived from the lazy-import table: each name must load from its module."""
    assert orroute.__all__ == sorted(set(orroute.__all__))
    assert dir(orroute) == orroute.__all__
    missing = [name for name in orroute.__all__ if getattr(orroute, name, None) is None]
    assert missing == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Decimal("0.0000025"), Decimal("0.0000025")),
        ("0.00000015", Decimal("0.00000015")),
        (0.1, Decimal("0.1")),
        (3, Decimal(3)),
    ],
    ids=["decimal", "str", "float-shortest-repr", "int"],
)
def test_money_crosses_the_boundary_exactly(given: object, expected: Decimal) -> None:
    assert _core.parse_money(given) == expected


def test_bad_money_is_a_clear_value_error() -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="not a valid amount of money: 'abc'"):
        _core.parse_money("abc")
    with pytest.raises(ValueError):
        _core.parse_money("1.2.3")


def test_budget_exceeded_is_the_plans_budget_error() -> None:
    assert issubclass(orroute.BudgetExceededError, orroute.BudgetError)
    assert orroute.status_error_class(429) is orroute.RateLimitError
    assert orroute.status_error_class(503) is orroute.InternalServerError


def test_task_normalises_a_string_prompt() -> None:
    task = orroute.Task(type="coding", messages="hi", budget=0.5)
    assert task.messages == [{"role": "user", "content": "hi"}]
    assert task.budget == Decimal("0.5")
    assert task.id
    with pytest.raises(orroute.InvalidArgumentError, match="max_tokens"):
        orroute.Task(messages="hi", max_tokens=0)
