"""Runs the HTTP fuzz harness (tests/fuzz/http_server_fuzz.py) briefly with fixed seeds, so the
suite keeps it working; run it for longer by hand (its docstring says how)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "fuzz" / "http_server_fuzz.py"


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("http_server_fuzz", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["http", "gateway"])
def test_fuzz_harness_finds_nothing_in_a_short_run(target: str) -> None:
    fuzz = _harness()
    run = fuzz.run_http if target == "http" else fuzz.run_gateway
    # At least 12 rounds whatever the machine's load (a slow machine runs longer, never fewer).
    assert run(4.0, 20261203, lambda _: None, min_rounds=12) >= 12
