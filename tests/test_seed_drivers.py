"""Seed 000 driver keys: every key of the GSM modem and SMPP tables is accepted under its seed
name (applied or stored as <ignoredkey>), seed spellings and PROTOCOL names, and the keys the
appliance applies on a real SMPP bind (tests/fakes/raw_smsc.py on 127.0.0.1)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from appliance.clock import FakeClock
from conftest import xml_values
from test_api_drivers import error_code, idle_channels  # noqa: F401 - fixture
from test_smpp import part, wait_until

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_ba62e230856e7920.txt"


def seed_table(title: str, next_title: str) -> dict[str, str]:
    """KEY -> default value, read from the seed document itself."""
    text = SEED.read_text(encoding="utf-8")
    section = text.split(title + "\n", 1)[1].split(next_title + "\n", 1)[0]
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^([A-Za-z0-9]+) \|(.*)\|$", section, re.M)}


GSM_TABLE = ("GSM/GPRS Modem Connection", "CIMD2 connection")
SMPP_TABLE = ("SMPP connection", "UCP connection")


def _seed_request(table: dict[str, str], *, skip=()) -> dict[str, str]:
    return {key: value for key, value in table.items() if key not in skip}


@pytest.mark.skipif(not SEED.exists(), reason="the seed documents are not beside the repo")
@pytest.mark.parametrize("kind,title,required", [
    ("GSMModem", GSM_TABLE, {"MODEMORPORT": "/dev/ttyUSB2"}),
    ("SMPP", SMPP_TABLE, {"HOST": "127.0.0.1"}),
])
def test_every_seed_key_with_its_seed_default_is_accepted(appliance, idle_channels, kind,
                                                          title, required):
    daemon, api = appliance
    table = seed_table(*title)
    assert len(table) == {"GSMModem": 60, "SMPP": 57}[kind]
    api.action("createdriver", type=kind, name="D1")
    # OPERATOR is the driver's name in the seed table; it is a field here and stays valid
    body = api.action("configdriver", name="D1", **{**_seed_request(table), **required})
    assert "<action>configdriver</action>" in body, body
    assert xml_values(body, "state") == ["running"], body
    ignored = set(xml_values(body, "ignoredkey"))
    assert "logdirectory" in ignored and "protocol" in ignored
    conn = daemon.channels.running["D1"].conn
    assert conn.autoconnect is True and conn.deliveryreport is True
    if kind == "SMPP":
        assert conn.mode == "transceiver" and conn.windowsize == 20
        assert (conn.sourceaddrton, conn.bindton, conn.destaddrton) == (-1, -1, 1)
        assert conn.protocolversion == "3.4" and conn.submittimeout == 60
    else:
        assert conn.gsmmodeminit == "AT" and conn.ussdmethod == "AT+CUSD"
        assert "gprsapn" in ignored and "windowsize" in ignored
    # the ignored keys are stored and listed
    listed = api.action("listdrivers")
    assert "<ignoredkey>logdirectory</ignoredkey>" in listed
    assert daemon.documents.get("connections", "D1")["ignored"]["gprsdialstring" if
                                                                kind == "GSMModem" else
                                                                "dcshexchar"]


def test_seed_spellings_and_protocol_names(appliance, idle_channels):
    daemon, api = appliance
    body = api.action("createdriver", type="SMPP", name="U1", host="127.0.0.1",
                      mode="Transceiver")
    assert xml_values(body, "state") == ["running"], body       # autoconnect on by default
    assert daemon.channels.running["U1"].conn.mode == "transceiver"
    api.action("configdriver", name="U1", send="off")
    assert daemon.channels.running["U1"].conn.mode == "receiver"
    api.action("configdriver", name="U1", send="on", receive="off")
    assert daemon.channels.running["U1"].conn.mode == "transmitter"
    body = api.action("configdriver", name="U1", send="off", receive="off")
    assert "both off" in body and xml_values(body, "state") == ["not configured"]
    for name in ("EAIFMMS", "MM7MMS", "ozVoIP", "CIMD2", "UCP", "VoIP"):
        body = api.action("createdriver", type=name)
        assert error_code(body) == 11 and "not supported" in body, name
    body = api.action("createdriver", type="GSM/GPRS Modem", name="M1",
                      modemorport="/dev/ttyUSB2", submittimeoutaction="submitsuccess")
    assert daemon.channels.running["M1"].conn.submittimeoutaction == "SubmitSuccess"
    # another kind's seed key on this driver: stored and ignored, never fails the request
    body = api.action("configdriver", name="M1", targeturl="http://x/", baudrate="19200")
    assert xml_values(body, "ignoredkey") == ["targeturl"]
    assert daemon.channels.running["M1"].conn.baudrate == 19200
    assert error_code(api.action("configdriver", name="M1", warpdrive="on")) == 3
    assert error_code(api.action("configdriver", name="M1", ussdmethod="pigeon")) == 3
    assert error_code(api.action("createdriver", type="Telepathy")) == 3


# --- applied on a real bind -------------------------------------------------------------


@pytest.fixture
def bind(raw_channel):
    def make(clock=None, **kw):
        return raw_channel({"clock": clock} if clock else None, **kw)
    return make


def test_bind_ton_npi_and_address_range(raw, bind):
    bind(bindton=1, bindnpi=1, addressrange="^3620", sourceaddrton=5)
    assert raw.bind_fields[-1] == {"command": "bind_transceiver", "system_id": b"esme",
                                   "password": b"secret", "addr_ton": 1, "addr_npi": 1,
                                   "address_range": b"^3620"}


def test_without_bind_ton_the_source_ton_is_used_as_before(raw, bind):
    bind(sourceaddrton=5, sourceaddrnpi=0, receive=False)
    assert raw.bind_fields[-1]["addr_ton"] == 5
    assert raw.bind_fields[-1]["command"] == "bind_transmitter"     # RECEIVE=off


def _two_submits_after(channel, sink, clock, first_id: int):
    """Advance time past the keep-alive period, then send two parts: when the second is
    answered, the timers of the cycle that handled the first have run."""
    clock.advance(100)
    for pid in (first_id, first_id + 1):
        channel.submit(part(pid))
        wait_until(lambda pid=pid: pid in sink.submitted, what=f"part {pid}")


@pytest.mark.parametrize("keepalive,expected", [(True, True), (False, False)])
def test_keepalive_request_switch(raw, bind, keepalive, expected):
    clock = FakeClock()
    channel, sink = bind(clock=clock, keepaliveperiod=30, keepaliverequest=keepalive)
    _two_submits_after(channel, sink, clock, 1)
    if expected:
        wait_until(lambda: raw.enquire_links >= 1, what="enquire_link")
    else:
        _two_submits_after(channel, sink, clock, 3)
        assert raw.enquire_links == 0


@pytest.mark.parametrize("action,submitted", [("SubmitSuccess", True), ("SubmitFailed", False)])
def test_submit_timeout_action(raw, bind, action, submitted):
    clock = FakeClock()
    channel, sink = bind(clock=clock, submittimeout=60, submittimeoutaction=action,
                         keepaliverequest=False)
    raw.silent = True
    channel.submit(part(1))
    wait_until(lambda: len(raw.submits) == 1, what="submit_sm sent")
    clock.advance(61)
    channel.submit(part(2))          # wakes the channel so its timers see the timeout
    wait_until(lambda: 1 in sink.submitted or any(f[0] == 1 for f in sink.failed),
               what="timeout handled")
    if submitted:
        assert sink.submitted[1] == ""                 # counted as submitted, never resent
    else:
        assert (1, "link_down", True) in sink.failed     # back to the queue, retried


@pytest.mark.parametrize("keepalive", [False, True])
def test_an_idle_or_half_open_link_does_not_spin(raw, bind, monkeypatch, keepalive):
    """Found by a helper: once the link had been quiet for KEEPALIVEPERIOD, select() got a
    timeout of 0 as long as no enquire_link went out (KEEPALIVEREQUEST=off) or none was
    answered (a half-open link: 30 s at a time): the uplink thread took a whole core."""
    import select
    import threading
    clock = FakeClock()
    channel, sink = bind(clock=clock, keepaliveperiod=30, keepaliverequest=keepalive)
    _two_submits_after(channel, sink, clock, 1)
    raw.silent = True                           # nothing answers the enquire_link
    calls = []
    real_select = select.select

    def counting(*args):
        if threading.current_thread().name.startswith("smpp-"):
            calls.append(args[3] if len(args) > 3 else None)
        return real_select(*args)
    clock.advance(100)                          # quiet for longer than the period
    channel.submit(part(3))                     # wakes it; the submit is never answered
    monkeypatch.setattr(select, "select", counting)
    time.sleep(1.0)
    monkeypatch.setattr(select, "select", real_select)
    assert len(calls) < 20, f"{len(calls)} select calls in one second, timeouts {calls[:5]}"


BAD_UDH_MO = dict(source_addr="36201111111", destination_addr="36200000000",
                  esm_class=0x40, short_message=b"\x05\x00\x03\x01\x02")   # IE overruns


def test_an_unreadable_mo_in_the_same_read_as_a_result_loses_neither(raw, bind):
    """Found by a helper: a UDH whose element overran the message raised out of the read:
    the submit result in the same read was dropped (the part stayed `sending`, and went out
    again after a restart), the link went down, and an SMSC that resends unanswered MO kept
    it down. Now the MO is kept whole as binary data and answered, the link stays."""
    channel, sink = bind()
    raw.after_submit = raw.pdu("deliver_sm", **BAD_UDH_MO)
    channel.submit(part(1))
    wait_until(lambda: 1 in sink.submitted and sink.fragments, what="result and MO")
    [kept] = sink.fragments
    assert (kept.encoding, kept.text, kept.data, kept.sender) == \
        ("8bit", None, b"\x05\x00\x03\x01\x02", "36201111111")
    wait_until(lambda: any(a[0] == "deliver_sm_resp" and a[2] == 0 for a in raw.answers),
               what="the MO answered")
    assert raw.binds == 1 and channel.state == "bound" and len(raw.submits) == 1


def test_a_stray_byte_after_a_pdu_does_not_drop_the_link(raw, bind):
    """smpplib raises struct.error on a byte after the last field: it escaped the reader,
    the link dropped, and the submit answered in the same read was sent again."""
    channel, sink = bind()
    padded = raw.pdu("enquire_link") + b"\x00"
    raw.after_submit = (len(padded)).to_bytes(4, "big") + padded[4:]
    channel.submit(part(1))
    wait_until(lambda: 1 in sink.submitted, what="the result")
    raw.after_submit = b""
    channel.submit(part(2))
    wait_until(lambda: 2 in sink.submitted, what="the next result")
    assert raw.binds == 1 and len(raw.submits) == 2      # nothing sent twice


def test_a_receipt_in_message_payload_is_read(raw, bind):
    """It was answered OK and dropped: the message never reached delivered."""
    channel, sink = bind()
    text = b"id:1 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD"
    raw.push(raw.pdu("deliver_sm", source_addr="36201234567", esm_class=0x04,
                     short_message=b"", message_payload=text))
    wait_until(lambda: sink.reports, what="the receipt")
    assert sink.reports[0].reference == "1"


def test_the_mo_before_an_unbind_is_answered_before_the_unbind_resp(raw, bind):
    """An SMSC that closes on unbind_resp took the MO for unanswered and sent it again."""
    channel, sink = bind()
    mo = raw.pdu("deliver_sm", source_addr="36201111111", short_message=b"before unbind")
    raw.push(mo + raw.pdu("unbind"))
    wait_until(lambda: any(a[0] == "unbind_resp" for a in raw.answers), what="unbind_resp")
    commands = [a[0] for a in raw.answers]
    assert commands.index("deliver_sm_resp") < commands.index("unbind_resp")
    assert [f.text for f in sink.fragments] == ["before unbind"]


def test_an_mo_sent_as_data_sm_reaches_the_inbox(raw, bind):
    """It got generic_nack and was lost."""
    channel, sink = bind()
    raw.push(raw.pdu("data_sm", source_addr="36201111111", destination_addr="36200000000",
                     message_payload=b"MO via data sm"))
    wait_until(lambda: sink.fragments, what="the MO")
    assert [f.text for f in sink.fragments] == ["MO via data sm"]
    wait_until(lambda: any(a[0] == "data_sm_resp" for a in raw.answers), what="data_sm_resp")
    assert ("data_sm_resp", 0) in [(a[0], a[2]) for a in raw.answers]
