"""The aggregator account as it is usually sold: a transmitter bind that sends and a receiver
bind that gets the receipts (issue 13 item 1), and an SMSC that unbinds every bind (item 2),
with the whole appliance against smpp34's SMPP server."""

from __future__ import annotations

import dataclasses
import json

import pytest

from appliance import config as cfg
from appliance.clock import FakeClock
from appliance.daemon import Daemon
from appliance.store.journal import Journal
from appliance.uplink.smpp import SmppChannel
from conftest import ADMIN_PASSWORD, Api
from fakes.smsc import Smsc
from test_smpp import wait_until


@pytest.fixture
def smsc():
    server = Smsc(receipts=True).start()
    yield server
    server.stop()


def binds(port: int, **kw) -> tuple[cfg.SMPPConfig, ...]:
    common = dict(host="127.0.0.1", port=port, username="esme", password="secret",
                  reconnectdelay=0.05, **kw)
    return (cfg.SMPPConfig(name="SMPPTX", mode="transmitter", **common),
            cfg.SMPPConfig(name="SMPPRX", mode="receiver", **common))


def start(config) -> Daemon:
    daemon = Daemon(config, admin_password=ADMIN_PASSWORD)
    daemon.start()
    for name in ("SMPPTX", "SMPPRX"):
        channel = daemon.channels.running[name]
        wait_until(lambda: channel.state == "bound", what=f"{name} bound")
    return daemon


def both_sessions(smsc, old=()) -> None:
    """Wait until the SMSC has seen both binds (and forgotten those of a stopped daemon)."""
    wait_until(lambda: len(smsc.sessions) == 2 and not set(old) & set(smsc.sessions),
               what="the SMSC's view of both binds")


def uplinks(api: Api) -> dict[str, dict]:
    status, body = api.get("/status")
    assert status == 200, body
    return {u["name"]: u for u in json.loads(body)["uplinks"]}


def test_receipts_on_the_receiver_bind_deliver_what_the_transmitter_sent(smsc, make_config):
    daemon = start(make_config(connections=binds(smsc.port)))
    try:
        api = Api(daemon.port)
        ids = [api.send(f"+3620111000{i}", f"two binds {i}") for i in range(2)]
        for message_id in ids:
            api.wait_state(message_id, 10, timeout=20)              # delivered
        links = uplinks(api)
        assert links["SMPPTX"]["counts"]["submitted"] == 2
        assert links["SMPPTX"]["counts"]["receipts"] == 0
        assert links["SMPPRX"]["counts"]["receipts"] == 2          # they came on the receiver
        assert links["SMPPTX"]["smsc_account"] == links["SMPPRX"]["smsc_account"]
        assert links["SMPPRX"]["orphan_receipts"] == 0
        assert all(p["connection"] == "SMPPTX"
                   for m in ids for p in daemon.journal.get_parts(m))
    finally:
        daemon.stop()


def test_a_receipt_after_a_restart_reaches_its_message(smsc, make_config):
    config = make_config(connections=binds(smsc.port))
    smsc.receipts = False                        # the receipt comes later
    daemon = start(config)
    try:
        api = Api(daemon.port)
        message_id = api.send("+36201112222", "before the restart")
        api.wait_state(message_id, 13, timeout=20)                 # submitted
        both_sessions(smsc)
        old = list(smsc.sessions)
    finally:
        daemon.stop()
    daemon = start(config)                        # a new process: only the journal remembers
    try:
        both_sessions(smsc, old)
        smsc.send_receipt(smsc.received[0])       # the SMSC picks a bind that can receive
        Api(daemon.port).wait_state(message_id, 10, timeout=20)   # delivered
        assert daemon.channels.running["SMPPRX"].status()["counts"]["receipts"] == 1
    finally:
        daemon.stop()


def test_a_receipt_faster_than_the_submit_sm_resp_waits_for_it(smsc, make_config):
    smsc.receipts = False
    smsc.hold_after = 0                           # the submit_sm_resp comes later
    daemon = start(make_config(connections=binds(smsc.port)))
    try:
        api = Api(daemon.port)
        message_id = api.send("+36201116666", "quick receipt")
        wait_until(lambda: smsc.held, what="the submit_sm held")
        both_sessions(smsc)
        record = smsc.received[0]
        record.message_id = f"{1 + 0x9F:08X}"     # the id release_held() will give it
        smsc.send_receipt(record)                 # on the receiver bind, before the answer
        orphans = "SELECT count(*) AS n FROM orphan_reports WHERE connection='SMPPRX'"
        wait_until(lambda: daemon.journal.query(orphans)[0]["n"] == 1, what="kept as orphan")
        assert api.state(message_id) == 1         # sending: no reference yet
        smsc.release_held()                       # now the transmitter records the reference
        api.wait_state(message_id, 10, timeout=20)
        assert daemon.journal.query(orphans)[0]["n"] == 0
    finally:
        daemon.stop()


def test_two_accounts_on_one_smsc_can_be_grouped_explicitly(smsc, make_config):
    tx, rx = binds(smsc.port)
    # a receiver with another system id that the aggregator says is the same account
    rx = dataclasses.replace(rx, username="esme-rx", smscaccount="acme")
    tx = dataclasses.replace(tx, smscaccount="acme")
    daemon = start(make_config(connections=(tx, rx)))
    try:
        api = Api(daemon.port)
        message_id = api.send("+36201113333", "grouped")
        api.wait_state(message_id, 10, timeout=20)
        assert uplinks(api)["SMPPRX"]["smsc_account"] == "acme"
    finally:
        daemon.stop()


def test_an_smsc_that_unbinds_every_bind_shows_as_failing(smsc, make_config):
    smsc.unbind_on_bind = True                   # how many SMSCs answer wrong credentials
    tx, _ = binds(smsc.port)
    daemon = Daemon(make_config(connections=(tx,)), admin_password=ADMIN_PASSWORD)
    daemon.start()
    try:
        api = Api(daemon.port)
        message_id = api.send("+36201114444", "waits")
        wait_until(lambda: uplinks(api)["SMPPTX"]["failed_binds_in_a_row"] >= 2,
                   what="two refused binds")
        status, body = api.get("/status")
        report = json.loads(body)
        link = {u["name"]: u for u in report["uplinks"]}["SMPPTX"]
        assert report["healthy"] is False and report["failing_connections"] == ["SMPPTX"]
        assert link["failing"] and "the SMSC unbound" in link["last_error"]
        assert daemon.healthy()                  # the process is fine: the watchdog goes on
        assert api.state(message_id) in (0, 1)   # waiting, not lost
    finally:
        daemon.stop()


def test_receipts_matching_nothing_are_dropped_after_the_report_timeout(smsc, tmp_path):
    clock = FakeClock()
    journal = Journal.open(tmp_path, clock=clock)
    _, rx = binds(smsc.port, report_timeout_hours=1.0)
    channel = SmppChannel(rx, journal, clock=clock)
    channel.start()
    try:
        wait_until(lambda: channel.state == "bound" and smsc.sessions, what="bound")
        smsc.send_mo("+36201115555", "1234", b"id:777 sub:001 dlvrd:001 stat:DELIVRD err:000",
                     esm_class=0x04, wait=False)           # a receipt for nothing we sent
        orphans = "SELECT count(*) AS n FROM orphan_reports"
        wait_until(lambda: journal.query(orphans)[0]["n"] == 1, what="kept as an orphan")
        # counted at once, not at the next sweep a minute later (found by a helper)
        assert channel.status()["orphan_receipts"] == 1
        clock.advance(61)                                  # the next sweep: too young to drop
        wait_until(lambda: channel.status()["orphan_receipts"] == 1, what="counted as waiting")
        clock.advance(3600)
        wait_until(lambda: channel.status()["counts"]["orphans_dropped"] == 1, what="dropped")
        assert journal.query(orphans)[0]["n"] == 0
        assert channel.status()["orphan_receipts"] == 0
    finally:
        channel.stop()
        journal.close()
