"""SMS:BINARY:XML user data under the DCS the sender gives (TS 23.038 / TS 23.040 §9.2.3.16).

A GSM 7-bit DCS (00, F0, 10..13, C0..DF) makes TP-UDL a septet count: the <ud> octets are
septet values (one per octet, as SMPP carries them) that the PDU packs; they went out as
octets with an octet count, and the phone read other characters. A UCS-2 DCS needs whole
16-bit units: an odd <ud> was accepted, then refused by the modem with CMS 304; now every
dialect that carries SMS:BINARY:XML refuses it at once, in its own format, storing nothing.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone

import pytest

from appliance import gsm
from appliance.gsm import EncodingError
from conftest import Api, xml_values
from test_api_dialects import post_json
from test_api_ozeki import make_user
from test_modem_kit import wait_until
from web_kit import demo_daemon_on_simulated_modems

SCTS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
HELLO = b"Hello world"
PORTS = bytes.fromhex("050415811581")           # port IE 5505 <- 5505, without its UDHL


def binary_xml(ud: bytes, dcs: str, udh: bytes = b"") -> str:
    header = f"<udh>{(bytes((len(udh),)) + udh).hex().upper()}</udh>" if udh else ""
    return f"<sms><pid>00</pid><dcs>{dcs}</dcs>{header}<ud>{ud.hex().upper()}</ud></sms>"


# --- the PDU decoder ------------------------------------------------------------------------


@pytest.mark.parametrize("dcs", [0x00, 0x10, 0xF0, 0xF1])
@pytest.mark.parametrize("udh", [b"", PORTS])
def test_gsm7_dcs_data_is_packed_and_counted_in_septets(dcs, udh):
    pdu = gsm.encode_part("+36201234567", data=HELLO, encoding="8bit", dcs=dcs, udh=udh)
    decoded = gsm.decode(pdu)
    assert (decoded.text, decoded.encoding, decoded.dcs) == ("Hello world", "gsm7", dcs)
    assert not decoded.truncated
    ud_octets = _ud_octets(len(HELLO), udh)
    udl = int(pdu[-2 * ud_octets - 2:-2 * ud_octets], 16)
    assert udl == (0 if not udh else ((len(udh) + 1) * 8 + 6) // 7) + len(HELLO)
    if udh:
        assert decoded.ports == (5505, 5505)
    deliver = gsm.decode(gsm.encode_deliver("+36201234567", data=HELLO, encoding="8bit",
                                            dcs=dcs, udh=udh, scts=SCTS))
    assert deliver.text == "Hello world"


def _ud_octets(septets: int, udh: bytes) -> int:
    """TP-UD octets: the header block, then the septets packed after its fill bits."""
    if not udh:
        return (septets * 7 + 7) // 8
    block = len(udh) + 1
    skip = (block * 8 + 6) // 7
    return block + ((skip + septets) * 7 - block * 8 + 7) // 8


def test_octet_and_ucs2_dcs_keep_their_octets():
    assert gsm.decode(gsm.encode_part("+1555", data=b"\x80\x00\xff", encoding="8bit",
                                      dcs=0xF5)).data == b"\x80\x00\xff"
    text = "Szia \u263a".encode("utf-16-be")
    assert gsm.decode(gsm.encode_part("+1555", data=text, encoding="8bit",
                                      dcs=0x08)).text == "Szia \u263a"


@pytest.mark.parametrize("dcs,data,says", [
    (0x00, b"\xc8\x32", "septet values 00-7F"),
    (0x08, b"\x00\x41\x00", "even number of octets"),
    (0x18, b"\x00", "even number of octets"),
    (0xE0, b"\x00\x41\x00", "even number of octets"),
])
def test_data_that_cannot_be_what_the_dcs_says_is_not_encoded(dcs, data, says):
    with pytest.raises(EncodingError, match=says):
        gsm.encode_part("+1555", data=data, encoding="8bit", dcs=dcs)


# --- through the API and the pty modem simulator --------------------------------------------


def test_binary_xml_with_dcs_00_reaches_the_phone_as_sent(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        api = Api(daemon.port)
        for number, udh in (("+36701110001", b""), ("+36701110002", PORTS)):
            body = api.action("sendmessage", recipient=number, messagetype="SMS:BINARY:XML",
                              messagedata=binary_xml(HELLO, "00", udh))
            assert xml_values(body, "statuscode") == ["0"], body
        got = wait_until(lambda: len([s for s in network.submits if s["to"].startswith(
            "+3670111000")]) == 2 and network.submits, timeout=30, what="both submitted")
        by_number = {s["to"]: s for s in got}
        assert by_number["+36701110001"]["text"] == "Hello world"
        assert by_number["+36701110002"]["text"] == "Hello world"


# --- refused at acceptance, in each dialect's format -----------------------------------------

ODD_UCS2 = [("08", b"\x00\x41\x00"), ("18", b"\x00\x41\x00\x42\xd8"), ("E0", b"\x00")]


def _stored(daemon) -> list:
    return daemon.journal.folder(None, "outbox", 100)


@pytest.mark.parametrize("dcs,ud", ODD_UCS2)
def test_ozeki_get_refuses_odd_ucs2_with_statuscode_4_and_charges_nothing(appliance, dcs, ud):
    daemon, api = appliance
    john = make_user(api)
    before = john.action("getcredits")
    body = john.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                       messagedata=binary_xml(ud, dcs))
    assert xml_values(body, "statuscode") == ["4"], body
    assert "even number of octets" in xml_values(body, "statusmessage")[0]
    assert xml_values(body, "messageid") == []
    assert _stored(daemon) == []
    assert john.action("getcredits") == before


def test_ozeki_post_and_batch_refuse_only_the_odd_ucs2_message(appliance):
    daemon, api = appliance
    odd = binary_xml(b"\x00\x41\x00", "08")
    form = urllib.parse.urlencode({
        "action": "sendmessage", "username": api.username, "password": api.password,
        "recipient": "+36201234567", "messagetype": "SMS:BINARY:XML", "messagedata": odd})
    status, body = api.post("/api", form)
    assert status == 200 and xml_values(body, "statuscode") == ["4"], body
    body = api.action("sendmessage", messagecount="2", messagetype="SMS:BINARY:XML",
                      recipient0="+36201234567", messagedata0=odd,
                      recipient1="+36201234568", messagedata1=binary_xml(b"\x00\x41", "08"))
    assert xml_values(body, "statuscode0") + xml_values(body, "statuscode1") == ["4", "0"], body
    assert "even number of octets" in xml_values(body, "statusmessage0")[0]
    assert [m["recipient"] for m in _stored(daemon)] == ["+36201234568"]


def test_ozeki_json_refuses_odd_ucs2_in_that_message_status(appliance):
    daemon, api = appliance
    status, reply = post_json(api, "sendmsg", {"messages": [
        {"to_address": "+36201234567", "message_type": "SMS:BINARY:XML",
         "text": binary_xml(b"\x00\x41\x00", "08")},
        {"to_address": "+36201234568", "message_type": "SMS:BINARY:XML",
         "text": binary_xml(b"\x00\x41", "08")}]})
    assert status == 200 and reply["response_code"] == "SUCCESS", json.dumps(reply)
    data = reply["data"]
    assert (data["success_count"], data["failed_count"]) == (1, 1)
    refused, accepted = data["messages"]
    assert "even number of octets" in refused["status"]
    assert accepted["status"] == "SUCCESS"
    assert [m["recipient"] for m in _stored(daemon)] == ["+36201234568"]


def test_gsm7_dcs_takes_septet_values_and_160_of_them(appliance):
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                      messagedata=binary_xml(bytes.fromhex("C8329BFD06"), "00"))
    assert xml_values(body, "statuscode") == ["4"], body
    assert "septet values 00-7F" in xml_values(body, "statusmessage")[0]
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                      messagedata=binary_xml(b"A" * 160, "00"))
    assert xml_values(body, "statuscode") == ["0"], body
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                      messagedata=binary_xml(b"A" * 161, "00"))
    assert xml_values(body, "statuscode") == ["3"], body


def test_dynamic_data_coding_naming_ucs2_refuses_odd_data(appliance):
    """Ozeki's dynamic data_coding replaces the DCS on an SMPP link (the modem keeps <dcs>):
    odd 8-bit data under a UCS-2 data_coding is refused as well, even data is accepted."""
    daemon, api = appliance
    odd, even = binary_xml(b"\x00\x41\x00", "04"), binary_xml(b"\x00\x41", "04")
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                      messagedata=odd, data_coding="8")
    assert xml_values(body, "statuscode") == ["4"], body
    assert "data_coding 8 is UCS-2" in xml_values(body, "statusmessage")[0]
    assert _stored(daemon) == []
    for extra in ({"data_coding": "8", "messagedata": even}, {"data_coding": "4",
                                                            "messagedata": odd}):
        body = api.action("sendmessage", recipient="+36201234567",
                          messagetype="SMS:BINARY:XML", **extra)
        assert xml_values(body, "statuscode") == ["0"], body


@pytest.mark.parametrize("coding", ["0", "1", "240"])         # 240: DCS F0
def test_dynamic_data_coding_naming_gsm7_refuses_octets_above_7f(appliance, coding):
    """Found by a helper: only the UCS-2 data_coding was checked, so 8-bit data under a
    GSM 7-bit data_coding was accepted and charged, then sent with octets that are no
    septets. It is refused like SMS:BINARY:XML with <dcs>00: statuscode 4, nothing kept."""
    daemon, api = appliance
    john = make_user(api)
    before = john.action("getcredits")
    body = john.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                       messagedata=binary_xml(bytes.fromhex("C8329BFD06"), "04"),
                       data_coding=coding)
    assert xml_values(body, "statuscode") == ["4"], body
    assert "septet values 00-7F" in xml_values(body, "statusmessage")[0]
    assert xml_values(body, "messageid") == []
    assert _stored(daemon) == []
    assert john.action("getcredits") == before
    for extra in ({"data_coding": coding, "messagedata": binary_xml(HELLO, "04")},
                  {"data_coding": "3", "messagedata": binary_xml(b"\xe9", "04")},
                  {"data_coding": "4", "messagedata": binary_xml(b"\xe9", "04")}):
        body = john.action("sendmessage", recipient="+36201234567",
                           messagetype="SMS:BINARY:XML", **extra)
        assert xml_values(body, "statuscode") == ["0"], body


# --- the message class stored from the DCS (TS 23.038 §4) -----------------------------------


@pytest.mark.parametrize("dcs,ud,msg_class", [
    ("00", HELLO, None), ("10", HELLO, 0), ("14", HELLO, 0), ("18", b"\x00\x41", 0),
    ("C0", HELLO, None), ("D0", HELLO, None), ("D8", HELLO, None), ("E0", b"\x00\x41", None),
    ("F0", HELLO, 0), ("F5", HELLO, 1), ("93", HELLO, None),
])
def test_binary_xml_class_follows_the_dcs_coding_group(appliance, dcs, ud, msg_class):
    """Message waiting groups C, D, E carry no class although bit 4 may be set (D0, D8: it
    is part of the group number); group F always carries one in bits 0-1."""
    daemon, api = appliance
    body = api.action("sendmessage", recipient="+36201234567", messagetype="SMS:BINARY:XML",
                      messagedata=binary_xml(ud, dcs))
    assert xml_values(body, "statuscode") == ["0"], body
    stored = daemon.journal.get_message(xml_values(body, "messageid")[0])
    assert stored["msg_class"] == msg_class


def test_a_port_header_without_its_udhl_reaches_the_phone_with_its_ports(make_config,
                                                                          run_daemon):
    """Found by a helper: <udh> may come without its length octet (api.md), but a first
    octet equal to the rest's length was taken for one; the port IE 05 04 dddd ssss always
    starts so, lost its 05, and the phone got a broken header without ports. With its UDHL
    the same header still works."""
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        api = Api(daemon.port)
        for number, udh in (("+36701110003", PORTS.hex()), ("+36701110004", "06" + PORTS.hex())):
            body = api.action("sendmessage", recipient=number, messagetype="SMS:BINARY:XML",
                              messagedata=f"<sms><pid>00</pid><dcs>04</dcs><udh>{udh}</udh>"
                                          f"<ud>{HELLO.hex()}</ud></sms>")
            assert xml_values(body, "statuscode") == ["0"], body
        wait_until(lambda: len([s for s in network.submits if s["to"].startswith(
            "+3670111000")]) == 2, timeout=30, what="both submitted")
        for submit in network.submits:
            assert (submit["data"], submit["ports"]) == (HELLO, (5505, 5505)), submit


@pytest.mark.parametrize("udh", ["0605040B8423F0FF", "05040B84", "0B"])
def test_a_udh_that_is_not_whole_elements_is_refused_at_acceptance(appliance, udh):
    """Found by a helper: a <udh> whose last element overruns it was accepted and charged,
    then failed at the modem ('extra UDH: ...'); now statuscode 4, and in a batch only
    that message is refused."""
    daemon, api = appliance
    john = make_user(api)
    before = john.action("getcredits")
    broken = f"<sms><dcs>04</dcs><udh>{udh}</udh><ud>41</ud></sms>"
    body = john.action("sendmessage", messagecount="2", messagetype="SMS:BINARY:XML",
                       recipient0="+36201234567", messagedata0=broken,
                       recipient1="+36201234568", messagedata1=binary_xml(b"A", "04", PORTS))
    assert xml_values(body, "statuscode0") + xml_values(body, "statuscode1") == ["4", "0"], body
    assert "udh&gt; is not whole information elements" in xml_values(body, "statusmessage0")[0]
    assert [m["recipient"] for m in _stored(daemon)] == ["+36201234568"]
    assert xml_values(john.action("getcredits"), "balance") == \
        [str(int(xml_values(before, "balance")[0]) - 1)]
