"""Budget windows past a zone file's last transition: the file's footer rule (a POSIX TZ string)
applies there. Slim files (zic's default since 2020, as Alpine and many containers ship them)
list transitions only up to a zone's last rule change, so without the footer New York had no
daylight time after 2007; fat files list them to 2037.

The oracle: the same tzdata source compiled by ``zic`` both ways must give the same windows,
and past 2037 Python's ``zoneinfo`` (which applies the footer itself) must agree.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orroute import _core

SOURCE = Path("/usr/share/zoneinfo/tzdata.zi")  # tzdata's rules as one zic input file
ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "America/Santiago",
         "Australia/Lord_Howe", "Africa/Casablanca",
         "America/Havana", "Atlantic/Azores"]  # daylight time ends at 01:00, back to midnight
PERIODS = ["daily", "weekly", "monthly"]
US = 1_000_000

pytestmark = pytest.mark.skipif(shutil.which("zic") is None or not SOURCE.exists(),
                                reason="needs zic and tzdata's tzdata.zi (Debian: libc-bin, tzdata)")


@pytest.fixture(scope="module")
def zone_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$TZDIR holding slim/<zone> and fat/<zone>, compiled from one source."""
    root = tmp_path_factory.mktemp("zoneinfo")
    for kind in ("slim", "fat"):
        subprocess.run(["zic", "-b", kind, "-d", str(root / kind), str(SOURCE)], check=True)
    before = os.environ.get("TZDIR")
    os.environ["TZDIR"] = str(root)
    try:
        yield root
    finally:
        if before is None:
            del os.environ["TZDIR"]
        else:
            os.environ["TZDIR"] = before


def instants(first_year: int, last_year: int) -> Iterator[int]:
    """UTC seconds from ``first_year`` to ``last_year`` every 3 days, 7 hours and 13 minutes
    (every hour of the day and every weekday come up)."""
    at = int(dt.datetime(first_year, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    end = int(dt.datetime(last_year + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    while at < end:
        yield at
        at += 3 * 86400 + 7 * 3600 + 13 * 60


def test_the_slim_file_really_is_slim(zone_dir: Path) -> None:
    """The premise: the slim file ends its transitions years before 2037 (zic -b slim)."""
    assert (zone_dir / "slim/America/New_York").stat().st_size < (
        zone_dir / "fat/America/New_York").stat().st_size


@pytest.mark.parametrize("zone", ZONES)
def test_slim_and_fat_files_give_the_same_windows(zone_dir: Path, zone: str) -> None:
    differ = []
    for at in instants(2020, 2037):
        for period in PERIODS:
            slim = _core.window_bounds(period, f"slim/{zone}", at * US)
            fat = _core.window_bounds(period, f"fat/{zone}", at * US)
            if slim != fat:
                differ.append((period, dt.datetime.fromtimestamp(at, dt.timezone.utc), slim, fat))
    assert not differ, f"{len(differ)} windows differ, the first: {differ[:3]}"


def local_day_start(day: dt.date, zone: ZoneInfo) -> int:
    """UTC microseconds of ``day``'s first instant: its local midnight, the first when it comes
    twice (the clocks go back across it: the local date changes there), or the switch when the
    zone skips midnight (Santiago's daylight time starts at 24:00: the switch is the old
    offset's midnight). zoneinfo's fold=0 reading is each of these."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()) * US


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("kind", ["slim", "fat"])
def test_windows_past_2037_follow_the_footer_as_zoneinfo_does(zone_dir: Path, zone: str,
                                                              kind: str) -> None:
    oracle = ZoneInfo(zone)
    checked = 0
    for at in instants(2038, 2100):
        local = dt.datetime.fromtimestamp(at, oracle).date()
        start = local_day_start(local, oracle)
        end = local_day_start(local + dt.timedelta(days=1), oracle)
        assert _core.window_bounds("daily", f"{kind}/{zone}", at * US) == (start, end), (
            zone, dt.datetime.fromtimestamp(at, dt.timezone.utc))
        checked += 1
    assert checked > 6000


@pytest.mark.parametrize("kind", ["slim", "fat"])
def test_a_day_whose_midnight_is_skipped_starts_at_the_switch(zone_dir: Path, kind: str) -> None:
    """Santiago's daylight time starts at Saturday 24:00 (04:00 UTC), so Sunday's first instant
    is 01:00 local: the Saturday (24 hours) ends and the Sunday (23) starts there. They were
    split at Saturday 23:00 (the new offset's midnight): 23 and 24 hours, the Sunday's window
    holding an hour of the Saturday."""
    switch = int(dt.datetime(2030, 9, 8, 4, tzinfo=dt.timezone.utc).timestamp()) * US
    zone = f"{kind}/America/Santiago"
    saturday = _core.window_bounds("daily", zone, switch - 3600 * US)
    sunday = _core.window_bounds("daily", zone, switch + 3600 * US)
    assert saturday[1] == sunday[0] == switch
    assert saturday[1] - saturday[0] == sunday[1] - sunday[0] + 3600 * US == 24 * 3600 * US


def test_a_midnight_that_comes_twice_starts_the_day_at_the_first() -> None:
    """Every day of 1990-2039, in every zone of the system's tzdata, whose midnight comes twice
    (the clocks go back across it: Havana's and the Azores' 01:00 back to 00:00, Amman's and
    Gaza's until 2021, St. John's 00:01 back to 23:01 until 2010...): the day starts at the
    first, when the local date changes, and the day before ends there. The lookup found the
    second east of UTC (Amman, Gaza, Chita, ...); St. John's repeated hour, read as the day
    before, was in no window (its day's ended before it)."""
    import zoneinfo

    checked = set()
    for name in sorted(zoneinfo.available_timezones()):
        if name.startswith(("Etc/", "posix/", "right/")):
            continue
        zone = ZoneInfo(name)
        day = dt.date(1990, 1, 1)
        while day.year < 2040:
            midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
            second = midnight.replace(fold=1)
            if midnight.utcoffset() != second.utcoffset() and second.timestamp() > \
                    midnight.timestamp():
                first = local_day_start(day, zone)
                second_us = int(second.timestamp()) * US
                assert _core.window_bounds("daily", name, first - 1)[1] == first, (name, day)
                # and the instants until the second, whichever day they read (St. John's read
                # the day before again: 00:01 back to 23:01), are the new day's
                for at in (first, second_us - US, second_us):
                    start, end = _core.window_bounds("daily", name, at)
                    assert start == first and at < end, (name, day, at)
                checked.add(name)
            day += dt.timedelta(days=1)
    assert {"America/Havana", "Atlantic/Azores", "Asia/Amman", "America/St_Johns"} <= checked
