"""The board's time zone, east or west of UTC, and dates at the end of what the formats
hold. Found by a helper: with TZ=Europe/Budapest (the zone image/README and the Ansible role
use as their example) the daemon could not start, because the JSON API computed its "no
limit" date from a local date at import; a far send date accepted west of UTC made the
dashboard's message page answer 500."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from appliance.timefmt import LAST_EPOCH, ozeki_time
from appliance.web import dashboard_data, ozeki_json

ZONES = ["Europe/Budapest", "Asia/Tokyo", "Pacific/Kiritimati", "America/New_York", "UTC"]
NEVER = 253402300799 + 400 * 86400          # past 9999-12-31 23:59:59 UTC


@pytest.mark.skipif(not os.path.exists("/usr/share/zoneinfo/Asia/Tokyo"), reason="no tzdata")
@pytest.mark.parametrize("zone", ZONES)
def test_the_daemon_and_every_dialect_load_in_any_zone(zone):
    script = ("import appliance.daemon, appliance.web.routes\n"
              "from appliance.web import ozeki_json, dashboard_data\n"
              f"print(ozeki_json.fmt_time({NEVER}), '|', dashboard_data.when({NEVER}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TZ": zone}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("|")[0].strip() == "9999-12-31 23:59:59"


@pytest.fixture
def zone(monkeypatch):
    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.skipif(not os.path.exists("/usr/share/zoneinfo/Asia/Tokyo"), reason="no tzdata")
@pytest.mark.parametrize("name", ZONES)
def test_dates_past_the_year_9999_are_shown_at_its_end(zone, name):
    zone(name)
    assert ozeki_json.fmt_time(NEVER, "") == ozeki_json.NO_LIMIT
    assert ozeki_time(NEVER).startswith("9999-12-31 ")
    assert ozeki_time(NEVER, dotted=True).startswith("9999.12.31. ")
    assert dashboard_data.when(NEVER).startswith("9999-12-31 ")
    assert ozeki_time(LAST_EPOCH) == ozeki_time(NEVER)
