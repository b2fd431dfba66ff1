"""The whole appliance with nothing but one SMPP connection, against smpp34's SMPP server."""

from __future__ import annotations

import json
import re
import socket
import sys

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


def started_daemon(tmp_path, port: int) -> Daemon:
    """`sms-appliance run` with one SMPP connection to `port`, in this process."""
    args = cli._parser().parse_args([
        "run", "--config", smpp_only_file(tmp_path, port), "--http-host", "127.0.0.1",
        "--http-port", "0", "--state-dir", str(tmp_path / "state"),
        "--admin-password", ADMIN_PASSWORD])
    daemon = Daemon(cli.run_config(args), admin_password=args.admin_password)
    daemon.start()
    return daemon


@pytest.fixture
def smpp_daemon(tmp_path, smsc):
    daemon = started_daemon(tmp_path, smsc.port)
    yield daemon, daemon.config
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
    daemon = started_daemon(tmp_path, quiet_smsc.port)
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


@pytest.fixture
def windowed_smsc():
    """An SMSC with a window of 10 on each direction, unreachable until the test says."""
    server = Smsc(receipts=True, receipt_window=10).start()
    server.proxy.down = True
    yield server
    server.stop()


@pytest.fixture
def backlog_daemon(tmp_path, windowed_smsc):
    daemon = started_daemon(tmp_path, windowed_smsc.port)
    yield daemon
    daemon.stop()


def _queue_backlog(daemon, short: int, long: int) -> tuple[list[str], list[str]]:
    """`short` one-part and `long` three-part messages, taken in batches of 500."""
    api = Api(daemon.port)
    texts = [(f"+3620{i:07d}", f"alert {i}") for i in range(short)] + \
        [(f"+3630{i:07d}", UCS2_TEXT) for i in range(long)]
    ids: list[str] = []
    for start in range(0, len(texts), 500):
        batch = texts[start:start + 500]
        params = {"messagecount": str(len(batch))}
        for i, (recipient, text) in enumerate(batch):
            params[f"recipient{i}"], params[f"messagedata{i}"] = recipient, text
        ids += re.findall(r"<messageid\d+>([^<]+)</messageid", api.action("sendmessage",
                                                                         **params))
    assert len(ids) == short + long
    return ids[:short], ids[short:]


def _all_delivered(daemon, ids: list[str]) -> bool:
    return all(daemon.journal.get_message(i)["state"] == "delivered" for i in ids)


def _on_one_bind(daemon, message_id: str) -> bool:
    parts = daemon.journal.get_parts(message_id)
    return [p["state"] for p in parts] == ["delivered"] * 3 and \
        {p["connection"] for p in parts} == {"SMPP0"}


def test_a_backlog_drains_while_receipts_come_back_with_a_window(backlog_daemon,
                                                                  windowed_smsc):
    """Receipts for the first messages arrive while later submit_sm are in flight and their
    results are still held in the uplink. Each receipt is matched to its part, nothing is
    sent twice, and a long message's parts leave through the one bind that took part 1."""
    short, long = _queue_backlog(backlog_daemon, 120, 4)
    windowed_smsc.proxy.down = False
    wait_until(lambda: _all_delivered(backlog_daemon, short + long), timeout=60,
               what="every receipt applied")
    assert len(windowed_smsc.received) == 120 + 4 * 3            # each part submitted once
    assert backlog_daemon.journal.orphans_waiting("SMPP0") == 0   # no receipt left unmatched
    assert all(_on_one_bind(backlog_daemon, message_id) for message_id in long)


def test_links_cut_during_such_a_drain_lose_nothing(backlog_daemon, windowed_smsc):
    """The link is cut three times while submit_sm and receipts are both in flight: parts
    whose answer was lost are sent again (at least once), receipts not answered come again
    on the next bind, and every message ends delivered."""
    short, long = _queue_backlog(backlog_daemon, 3000, 6)
    total = 3000 + 6 * 3
    windowed_smsc.proxy.down = False
    for cut in range(1, 4):                 # at a quarter, half and three quarters
        wait_until(lambda: len(windowed_smsc.received) >= total * cut // 4, timeout=30,
                   what=f"a {cut}/4 of the parts at the SMSC")
        windowed_smsc.proxy.cut()
    wait_until(lambda: _all_delivered(backlog_daemon, short + long), timeout=60,
               what="every message delivered after the cuts")
    sent = {(r.destination, r.short_message) for r in windowed_smsc.received}
    assert len(sent) == total                       # every part reached the SMSC
    assert len(windowed_smsc.binds) >= 4            # the cuts did cut: bound again each time
    assert all(_on_one_bind(backlog_daemon, message_id) for message_id in long)


def test_results_read_just_before_the_refill_finds_the_link_gone_are_kept(backlog_daemon,
                                                                         windowed_smsc):
    """A read brings submit_sm_resp OKs, and the window refill that follows fails because
    the link went meanwhile (here: the socket's sending side is shut once, from within that
    read). That read's results are recorded before the link is dropped: those parts stayed
    `sending`, neither sent again nor settled, until a restart."""
    channel = backlog_daemon.channels.running["SMPP0"]
    refill = channel._send_ready
    broken = []

    def refill_on_a_dead_link():
        called_by = sys._getframe(1).f_code.co_name
        if not broken and called_by == "_read_batch" and channel.counts["submitted"] >= 3:
            broken.append(channel.counts["submitted"])
            channel._client._socket.shutdown(socket.SHUT_WR)     # the next send fails
        refill()
    channel._send_ready = refill_on_a_dead_link
    short, _ = _queue_backlog(backlog_daemon, 60, 0)
    windowed_smsc.proxy.down = False
    wait_until(lambda: _all_delivered(backlog_daemon, short), timeout=20,
               what="every message delivered, also those whose results came in that read")
    assert broken and channel.counts["link_drops"] == 1
