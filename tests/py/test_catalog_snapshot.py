"""The bundled catalog loads from its build-time binary snapshot, exactly as from the JSON; a bad
snapshot is refused with a reason and the JSON is used (tests/cpp/test_catalog_snapshot.cpp
checks the format itself; tests/fuzz/fuzz_catalog_snapshot.cpp fuzzes the reader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orroute import ParseError, _core
from orroute.catalog import Catalog, bundled_catalog_path, bundled_snapshot_path


def _fields(obj: Any) -> Any:
    """Every public, non-method attribute of a core object, recursively, as plain data."""
    if isinstance(obj, (str, int, float, bool, type(None))):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_fields(x) for x in obj]
    if type(obj).__module__ not in ("orroute._core", "orroute"):
        return str(obj)  # Decimal and other values compare by their exact text
    out = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        if not callable(value):
            out[name] = _fields(value)
    return out


def _json() -> _core.ModelCatalog:
    return _core.ModelCatalog.from_file(str(bundled_catalog_path()))


def test_the_build_wrote_the_snapshot() -> None:
    assert bundled_snapshot_path().is_file(), "scripts/dev-build.sh links it; a wheel installs it"


def test_every_model_field_equals_the_json_parse() -> None:
    json_cat = _json()
    snap = _core.ModelCatalog.load_bundled(str(bundled_catalog_path()), str(bundled_snapshot_path()))
    assert not any("snapshot" in w for w in snap.warnings)  # it was used
    assert len(snap) == len(json_cat) > 100
    assert len(_fields(json_cat.models[0])) > 20  # every field, pricing included
    for a, b in zip(json_cat.models, snap.models, strict=True):
        assert _fields(a) == _fields(b), a.id
    assert list(snap.warnings) == list(json_cat.warnings)


def test_catalog_bundled_reads_the_snapshot() -> None:
    cat = Catalog.bundled()
    assert len(cat) == len(_json())
    assert not any("snapshot" in w for w in cat._core.warnings)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b"NOTASNAP" + b[8:], "bad magic"),
        (lambda b: b[:8] + bytes([b[8] + 1]) + b[9:], "format version"),
        (lambda b: b + b"\0", "trailing bytes"),
    ],
)
def test_a_bad_snapshot_falls_back_to_the_json(tmp_path: Path, damage: Any, reason: str) -> None:
    good = bundled_snapshot_path().read_bytes()
    with pytest.raises(ParseError, match=reason):
        _core.ModelCatalog.from_snapshot(damage(good))
    bad = tmp_path / "models.snapshot"
    bad.write_bytes(damage(good))
    cat = _core.ModelCatalog.load_bundled(str(bundled_catalog_path()), str(bad))
    assert len(cat) == len(_json())
    assert cat.warnings[0].startswith(f"snapshot '{bad}' not used: catalog snapshot: ")
    assert reason in cat.warnings[0]


def test_a_snapshot_of_another_json_is_not_used(tmp_path: Path) -> None:
    other = tmp_path / "models.json"
    other.write_text('{"data": [{"id": "a/b", "pricing": {"prompt": "0", "completion": "0"}}]}')
    cat = _core.ModelCatalog.load_bundled(str(other), str(bundled_snapshot_path()))
    assert [m.id for m in cat.models] == ["a/b"]
    assert "made from another JSON" in cat.warnings[0]


def test_snapshot_round_trip_through_bytes() -> None:
    json_cat = _json()
    again = _core.ModelCatalog.from_snapshot(json_cat.to_snapshot(7))
    assert [_fields(m) for m in again.models] == [_fields(m) for m in json_cat.models]
