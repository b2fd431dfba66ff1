"""The whole appliance with nothing but one SMPP connection, against smpp34's SMPP server."""

from __future__ import annotations

import json

import pytest

from appliance import cli
from appliance.daemon import Daemon
from conftest import ADMIN_PASSWORD, Api
from fakes.smsc import Smsc
from test_smpp import wait_until

UCS2_TEXT = ("Szia! Ünnepi üdvözlet ☺ " * 7).strip()      # 3 UCS-2 segments


@pytest.fixture
def smsc():
    server = Smsc(receipts=True).start()
    yield server
    server.stop()


def smpp_only_file(tmp_path, port: int) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[connections.SMPP0]
type = "SMPP"
host = "127.0.0.1"
port = {port}
username = "esme"
password = "secret"
reconnectdelay = 0.05
""")
    return str(path)


@pytest.fixture
def smpp_daemon(tmp_path, smsc):
    args = cli._parser().parse_args([
        "run", "--config", smpp_only_file(tmp_path, smsc.port), "--http-host", "127.0.0.1",
        "--http-port", "0", "--state-dir", str(tmp_path / "state"),
        "--admin-password", ADMIN_PASSWORD])
    config = cli.run_config(args)
    daemon = Daemon(config, admin_password=args.admin_password)
    daemon.start()
    yield daemon, config
    daemon.stop()


def test_run_flags_override_a_file_with_only_an_smpp_connection(smpp_daemon, tmp_path):
    daemon, config = smpp_daemon
    assert [c.name for c in config.connections] == ["SMPP0"]
    assert (config.http.host, config.http.port) == ("127.0.0.1", 0)
    assert config.store.state_dir == str(tmp_path / "state")
    assert daemon.port != 0 and (tmp_path / "state").is_dir()


def test_three_part_ucs2_message_is_delivered_through_the_uplink(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = Api(daemon.port)
    wait_until(lambda: daemon.channels.running["SMPP0"].state == "bound", what="bind")
    message_id = api.send("+36201234567", UCS2_TEXT)
    api.wait_state(message_id, 10)                    # Ozeki "Delivery successful"
    wire = smsc.proxy.wire
    assert len(wire) == 3
    refs = set()
    for seq, pdu in enumerate(wire, 1):
        body = pdu.short_message
        assert pdu.data_coding == 8 and pdu.esm_class & 0x40
        assert body[1:3] == b"\x00\x03" and body[4:6] == bytes((3, seq))
        refs.add(body[3])
    assert len(refs) == 1                               # one reference for the three parts
    assert "".join(p.short_message[6:].decode("utf-16-be") for p in wire) == UCS2_TEXT
    parts = daemon.journal.get_parts(message_id)
    assert [p["state"] for p in parts] == ["delivered"] * 3
    assert all(p["connection"] == "SMPP0" for p in parts)


def test_status_shows_the_uplink(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = Api(daemon.port)
    wait_until(lambda: daemon.channels.running["SMPP0"].state == "bound", what="bind")
    api.wait_state(api.send("+36201234567", "hello"), 10)
    status, body = api.get("/status")
    assert status == 200, body
    uplink = json.loads(body)["uplinks"][0]
    assert uplink["name"] == "SMPP0" and uplink["bound"]
    assert uplink["window"] == {"size": 20, "in_use": 0}      # seed 000 WINDOWSIZE default
    assert uplink["counts"]["submitted"] == 1 and uplink["counts"]["receipts"] == 1
    assert "submits_per_second" in uplink and "last_error" in uplink


def test_inbound_from_the_uplink_reaches_the_inbox(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    wait_until(lambda: smsc.sessions, what="bind")
    assert smsc.send_mo("+36709999999", "1234", b"hello appliance") == 0
    wait_until(lambda: daemon.journal.folder(None, "inbox"), what="inbox")
    row = daemon.journal.folder(None, "inbox")[0]
    assert "hello appliance" in json.dumps(row)


def test_link_cut_mid_window_loses_nothing_and_repeats_only_parts_in_flight(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = Api(daemon.port)
    channel = daemon.channels.running["SMPP0"]
    wait_until(lambda: channel.state == "bound", what="bind")
    smsc.hold_after = 3                   # 3 answered, the other 7 stay in flight
    recipients = [f"+3620555{i:04d}" for i in range(10)]
    ids = [api.send(r, f"cut {i}") for i, r in enumerate(recipients)]
    wait_until(lambda: len(smsc.held) == 7, what="7 in flight")
    in_flight = {ev.destination_addr for ev in smsc.held}
    assert channel.status()["window"]["in_use"] == 7
    smsc.proxy.cut()
    smsc.release_held()                   # answers into the cut link: lost
    for message_id in ids:
        api.wait_state(message_id, 10, timeout=30)          # every one delivered
    per_part = {r.lstrip("+"): 0 for r in recipients}
    for pdu in smsc.proxy.wire:
        per_part[pdu.destination_addr] += 1
    assert {d for d, n in per_part.items() if n == 2} == in_flight
    assert all(n == 1 for d, n in per_part.items() if d not in in_flight)
    assert channel.status()["counts"]["link_drops"] == 1
    assert daemon.status()["waiting"] == 0


@pytest.fixture
def quiet_smsc():
    """An SMSC that sends receipts only when a test says so."""
    server = Smsc(receipts=False).start()
    yield server
    server.stop()


def test_a_receipt_settles_its_own_message_whatever_its_text_says(tmp_path, quiet_smsc):
    """Found by a helper: `text:` carries the message's first 20 characters, and fields
    read inside it won: a receipt for "Your code id: 160" settled message 160, and its own
    message waited for ever. Through the real uplink, against the smpp34 SMSC."""
    args = cli._parser().parse_args([
        "run", "--config", smpp_only_file(tmp_path, quiet_smsc.port), "--http-host",
        "127.0.0.1", "--http-port", "0", "--state-dir", str(tmp_path / "state"),
        "--admin-password", ADMIN_PASSWORD])
    daemon = Daemon(cli.run_config(args), admin_password=args.admin_password)
    daemon.start()
    try:
        api = Api(daemon.port)
        wait_until(lambda: daemon.channels.running["SMPP0"].state == "bound", what="bind")
        first = api.send("+36201234567", "First message")
        api.wait_state(first, 13)
        first_id = quiet_smsc.receipt_id(quiet_smsc.wait_received(1)[0])
        second = api.send("+36201234568", f"Your code id: {first_id}")
        api.wait_state(second, 13)
        record = quiet_smsc.wait_received(2)[1]
        text = (f"id:{quiet_smsc.receipt_id(record)} sub:001 dlvrd:000 submit date:2401011200"
                f" done date:2401011201 stat:UNDELIV err:000 text:Your code id: {first_id}")
        assert quiet_smsc.send_mo("+36201234568", "+36200000000", text.encode(),
                                  esm_class=0x04) == 0
        api.wait_state(second, 16)                    # undelivered: its own receipt
        assert api.state(first) == 13                 # still waiting for its own
    finally:
        daemon.stop()


def test_a_backlog_drains_while_receipts_come_back_with_a_window(tmp_path):
    """An SMSC with a window on each direction: receipts for the first messages arrive while
    later submit_sm are in flight and their results are still held in the uplink. Each
    receipt is matched to its part, nothing is sent twice, and a long message's parts still
    leave through the one bind that took part 1."""
    smsc = Smsc(receipts=True, receipt_window=10).start()
    smsc.proxy.down = True                  # the uplink is down while the backlog is taken
    args = cli._parser().parse_args([
        "run", "--config", smpp_only_file(tmp_path, smsc.port), "--http-host", "127.0.0.1",
        "--http-port", "0", "--state-dir", str(tmp_path / "state"),
        "--admin-password", ADMIN_PASSWORD])
    daemon = Daemon(cli.run_config(args), admin_password=args.admin_password)
    daemon.start()
    try:
        api = Api(daemon.port)
        short = [api.send(f"+3620{i:07d}", f"alert {i}") for i in range(120)]
        long = [api.send(f"+3630{i:07d}", UCS2_TEXT) for i in range(4)]     # 3 parts each
        smsc.proxy.down = False
        ids = short + long
        wait_until(lambda: all(daemon.journal.get_message(i)["state"] == "delivered"
                               for i in ids), timeout=60, what="every receipt applied")
        assert len(smsc.received) == 120 + 4 * 3            # each part submitted once
        assert daemon.journal.orphans_waiting("SMPP0") == 0   # no receipt left unmatched
        for message_id in long:
            parts = daemon.journal.get_parts(message_id)
            assert [p["state"] for p in parts] == ["delivered"] * 3
            assert {p["connection"] for p in parts} == {"SMPP0"}
    finally:
        daemon.stop()
        smsc.stop()
