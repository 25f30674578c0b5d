"""Shared fixtures. Tests use the public API only (``import orroute``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the `fake_openrouter` fixture (also registered by the pytest11 entry point when installed)
from orroute.testing.pytest_plugin import fake_openrouter  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see a real key or the user's own ledger and config."""
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path / "orroute-home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def pytest_report_header(config: pytest.Config) -> str:
    import orroute

    return f"orroute {orroute.__version__} from {os.path.dirname(orroute.__file__)}"
