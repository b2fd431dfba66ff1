"""/health grades the queue's age and the callback backlog by their thresholds, over a real
HTTP socket (503 once a check fails) and at the exact edges."""

from __future__ import annotations

import json
import time

import pytest

from appliance import health
from appliance.clock import FakeClock
from conftest import ADMIN_PASSWORD, Api


def test_an_old_queue_fails_health_with_503(make_config, run_daemon):
    clock = FakeClock(start=time.time())
    daemon = run_daemon(make_config(), clock=clock)       # no connections: messages wait
    api = Api(daemon.port)
    status, body = api.get("/health")
    assert status == 200 and _check(body, "queue")["status"] == "pass"
    api.send("+36201234567", "waits for a way out")
    clock.advance(health.QUEUE_AGE_FAIL + 60)
    status, body = api.get("/health")
    assert status == 503
    assert _check(body, "queue")["status"] == "fail"
    assert json.loads(body)["status"] == "fail"


@pytest.mark.parametrize("amount, expected", [
    (health.CALLBACKS_WARN - 1, "pass"), (health.CALLBACKS_WARN, "warn"),
    (health.CALLBACKS_FAIL - 1, "warn"), (health.CALLBACKS_FAIL, "fail")])
def test_threshold_edges(amount, expected):
    check = health._graded_by_threshold("callbacks", amount, health.CALLBACKS_WARN,
                                        health.CALLBACKS_FAIL, "")
    assert check.status == expected


def _check(body: str, component: str) -> dict:
    return next(c for c in json.loads(body)["checks"] if c["component"] == component)


def test_health_warns_when_no_connection_is_configured(make_config, run_daemon):
    """Found by a helper: with no modem and no uplink /health said "pass": nothing can
    send, and a load balancer or Ansible saw nothing wrong."""
    daemon = run_daemon(make_config())
    status, body = Api(daemon.port).get("/health")
    assert status == 200 and _check(body, "connections")["status"] == "warn"


def test_status_is_not_healthy_while_health_fails_a_held_modem(make_config, run_daemon,
                                                               monkeypatch):
    """Found by a helper: /health was 503 for a held modem while /status (and `sms-appliance
    status`) said "healthy": true with no failing connection."""
    from appliance import config as cfg
    from appliance import daemon as daemon_module
    from fakes.channels import HeldModem
    monkeypatch.setattr(daemon_module, "build_channel", lambda conn, *a, **k: HeldModem(conn))
    modem = cfg.GSMModemConfig(name="GSMModem0", modemorport="/dev/null")
    daemon = run_daemon(make_config(connections=(modem,)))
    api = Api(daemon.port)
    status, body = api.get("/health")
    assert status == 503 and _check(body, "modem:GSMModem0")["status"] == "fail"
    status = json.loads(api.get("/status")[1])
    assert status["healthy"] is False and status["failing_connections"] == ["GSMModem0"]


def test_status_line_counts_busy_modems_as_ready_and_names_held_ones(make_config, run_daemon,
                                                                     monkeypatch, tmp_path):
    """Found by a helper: systemd's STATUS said "0/2 channels ready" during every burst (it
    counted idle modems), and a held modem was not named."""
    from web_kit import demo_daemon_on_simulated_modems
    from wsgi_client import WsgiApi
    from test_modem_kit import wait_until
    with demo_daemon_on_simulated_modems(make_config, run_daemon, step_seconds=3.0) as (d, _):
        api = WsgiApi(d.app)
        for n in range(4):
            api.get("/api", action="sendmessage", username="admin", password=ADMIN_PASSWORD,
                    recipient=f"+3620123456{n}", messagetype="SMS:TEXT", messagedata="hi")
        wait_until(lambda: all(c.free_slots() == 0 for c in d.channels.running.values()),
                   what="both modems sending")
        assert d.status_line().endswith(", 2/2 channels ready")

    from appliance import config as cfg
    from appliance import daemon as daemon_module
    from fakes.channels import HeldModem
    monkeypatch.setattr(daemon_module, "build_channel", lambda conn, *a, **k: HeldModem(conn))
    modem = cfg.GSMModemConfig(name="GSMModem0", modemorport="/dev/null")
    store = cfg.StoreConfig(state_dir=str(tmp_path / "held"))
    daemon = run_daemon(make_config(connections=(modem,), store=store))
    assert daemon.status_line().endswith(", 0/1 channels ready; GSMModem0 held")
