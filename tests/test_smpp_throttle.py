"""Throttling through the whole daemon: the preferred uplink answers ESME_RTHROTTLED; the part
waits for that uplink's pause (not the store's 5 s retry) and does not fail over."""

from __future__ import annotations

import time

import pytest

from appliance import config as cfg
from conftest import Api
from fakes.smsc import Smsc
from test_smpp import wait_until


@pytest.fixture
def smscs():
    servers = [Smsc().start(), Smsc().start()]
    yield servers
    for server in servers:
        server.stop()


def test_a_throttled_part_stays_on_its_preferred_uplink(smscs, make_config, run_daemon):
    preferred, other = smscs
    connections = tuple(cfg.SMPPConfig(name=f"SMPP{i}", host="127.0.0.1", port=s.port,
                                       username="esme", password="secret")
                        for i, s in enumerate(smscs))
    daemon = run_daemon(make_config(connections=connections, routes=(
        cfg.RouteConfig(connections=("SMPP0", "SMPP1"), mode="failover"),)))
    for channel in daemon.channels.running.values():
        wait_until(lambda c=channel: c.state == "bound", what="bind")
    preferred.throttle = 2
    api = Api(daemon.port)
    started = time.monotonic()
    ids = [api.send(f"+3620100000{i}", f"m{i}") for i in range(3)]
    for message_id in ids:
        api.wait_state(message_id, 13, timeout=10)
    elapsed = time.monotonic() - started
    assert elapsed < 4.0                           # the channel's pause, not RETRY_BACKOFF
    assert all(daemon.journal.get_parts(m)[0]["connection"] == "SMPP0" for m in ids)
    assert other.proxy.wire == []
    throttled = daemon.channels.running["SMPP0"].status()["counts"]["throttled"]
    assert throttled == 2
    # the SMSC (smpp34) handles pipelined PDUs concurrently, so which two it refused is not
    # fixed: each message crossed the wire, the refused ones once more, nothing else
    wire = [p.short_message for p in preferred.proxy.wire]
    assert sorted(set(wire)) == [b"m0", b"m1", b"m2"] and len(wire) == 3 + throttled
