"""Whether the system clock is synchronized shows in /status, /health and /metrics.

A box whose NTP servers never answer (a LAN that blocks the public pool) keeps the time it
saved at its last shutdown: its local times and schedules are off. /health warns once NTP
had its grace after start (it still answers 200: the box still sends). The daemon runs in
this process over a real socket; the kernel's flag is injected, and read for real once.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from appliance.clock import FakeClock
from appliance.clock_sync import kernel_synchronized, synchronized
from appliance.health import CLOCK_SYNC_GRACE
from conftest import Api
from test_web_metrics import check, health, scrape, value


def start(make_config, run_daemon, synchronized):
    clock = FakeClock(start=time.time())
    daemon = run_daemon(make_config(), clock=clock, clock_synchronized=lambda: synchronized)
    return daemon, clock, Api(daemon.port)


def status(api: Api) -> dict:
    code, body = api.get("/status")
    assert code == 200
    return json.loads(body)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux's")
def test_the_kernel_says_whether_the_clock_is_synchronized():
    assert kernel_synchronized() in (True, False)


def test_in_the_services_sandbox_timesyncds_flag_answers(tmp_path):
    """ProtectClock=yes refuses adjtimex even for reading (kernel: None)."""
    flag, state = tmp_path / "run" / "synchronized", tmp_path / "timesync"
    refused = lambda: None      # noqa: E731
    assert synchronized(flag=flag, timesyncd_state=state, kernel=refused) is None   # no timesyncd
    state.mkdir()
    assert synchronized(flag=flag, timesyncd_state=state, kernel=refused) is False  # not yet
    flag.parent.mkdir()
    flag.touch()
    assert synchronized(flag=flag, timesyncd_state=state, kernel=refused) is True
    assert synchronized(flag=flag, timesyncd_state=state, kernel=lambda: False) is False


def test_an_unsynchronized_clock_warns_after_ntp_had_its_grace(make_config, run_daemon):
    daemon, clock, api = start(make_config, run_daemon, False)
    assert status(api)["clock"]["synchronized"] is False
    assert check(health(api)[1], "clock")["status"] == "pass"      # NTP may still be at it
    daemon.started -= CLOCK_SYNC_GRACE      # up that long (advancing the clock would make the
    code, body = health(api)                # worker heartbeats look stale too: 503)
    assert code == 200 and check(body, "clock")["status"] == "warn"
    assert "NTP" in check(body, "clock")["reason"]
    samples = scrape(api)
    assert value(samples, "sms_clock_synchronized") == 0
    assert value(samples, "sms_health_status", component="clock") == 1


def test_a_synchronized_clock_passes(make_config, run_daemon):
    daemon, clock, api = start(make_config, run_daemon, True)
    clock.advance(CLOCK_SYNC_GRACE * 10)
    assert check(health(api)[1], "clock") == {"component": "clock", "status": "pass",
                                              "reason": "synchronized (NTP)"}
    assert value(scrape(api), "sms_clock_synchronized") == 1
    assert status(api)["clock"] == {"synchronized": True,
                                    "now": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(clock.now()))}


def test_where_the_kernel_cannot_say_nothing_is_claimed(make_config, run_daemon):
    daemon, clock, api = start(make_config, run_daemon, None)
    clock.advance(CLOCK_SYNC_GRACE * 10)
    assert check(health(api)[1], "clock")["status"] == "pass"
    assert not any(name == "sms_clock_synchronized" for name, _ in scrape(api))
    assert status(api)["clock"]["synchronized"] is None
