"""Store-and-forward: with every route down messages are kept, and leave in order when a route
comes back; failover from a dead uplink to a modem (the pty simulator) and back."""

from __future__ import annotations

import dataclasses
import time

import pytest

from appliance import config as cfg
from appliance import demo
from appliance.compose import Submission, prepare
from conftest import Api
from fakes.smsc import Smsc
from test_smpp import wait_until


@pytest.fixture
def smsc():
    server = Smsc(receipts=False).start()
    server.proxy.down = True                      # the aggregator is unreachable at start
    yield server
    server.stop()


def uplink(smsc, **kw) -> cfg.SMPPConfig:
    fields = dict(name="SMPP0", host="127.0.0.1", port=smsc.port, username="esme",
                  password="secret", reconnectdelay=0.05, reconnectmaxdelay=0.2)
    fields.update(kw)
    return cfg.SMPPConfig(**fields)


def test_ten_thousand_wait_while_every_route_is_down_and_leave_in_order(
        smsc, make_config, run_daemon):
    daemon = run_daemon(make_config(connections=(uplink(smsc, windowsize=50),)))
    count = 10_000
    messages = [prepare(Submission(user="admin", recipient=f"+3620{i:07d}", text=f"m{i}"))
                for i in range(count)]
    results = daemon.journal.accept(messages)
    assert all(isinstance(r, str) for r in results)
    time.sleep(0.3)
    status = daemon.status()
    assert status["waiting"] == count and status["oldest_queued_age"] is not None
    assert daemon.status_line().startswith(f"{count} waiting (oldest ")
    assert status["uplinks"][0]["bound"] is False and smsc.proxy.wire == []

    started = time.monotonic()
    smsc.proxy.down = False
    wait_until(lambda: daemon.journal.stats()["parts_by_state"].get("submitted") == count,
               timeout=60, what="all submitted")
    elapsed = time.monotonic() - started
    wire = smsc.proxy.wire
    assert len(wire) == count                                   # none lost, none twice
    assert [p.short_message for p in wire] == [f"m{i}".encode() for i in range(count)]
    assert daemon.status()["waiting"] == 0
    print(f"\n10,000 queued parts left in {elapsed:.1f}s")


def test_failover_from_a_dead_uplink_to_a_modem_and_back(smsc, make_config, run_daemon):
    base = make_config(connections=(uplink(smsc),),
                       demo=cfg.DemoConfig(enabled=False, modems=1, send_seconds=0.05,
                                           report_seconds=0.05))
    config, network, pin_factory = demo.start(base)
    config = dataclasses.replace(config, routes=(
        cfg.RouteConfig(connections=("SMPP0", "GSMModem0"), mode="failover"),))
    try:
        daemon = run_daemon(config, pin_factory=pin_factory)
        api = Api(daemon.port)
        modem = daemon.channels.running["GSMModem0"]
        wait_until(lambda: modem.free_slots() > 0, timeout=30, what="modem ready")

        first = api.send("+36201111111", "while the uplink is down")
        api.wait_state(first, 13, timeout=30)                 # submitted by the modem
        assert daemon.journal.get_parts(first)[0]["connection"] == "GSMModem0"

        smsc.proxy.down = False
        channel = daemon.channels.running["SMPP0"]
        wait_until(lambda: channel.state == "bound", what="uplink back")
        second = api.send("+36202222222", "uplink is back")
        wait_until(lambda: daemon.journal.get_parts(second)[0]["state"] == "submitted",
                   what="sent by the uplink")
        assert daemon.journal.get_parts(second)[0]["connection"] == "SMPP0"
        assert [p.destination_addr for p in smsc.proxy.wire] == ["36202222222"]
    finally:
        network.close()
