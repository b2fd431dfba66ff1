"""Ozeki's dynamic `data_coding` (http-api.md §2.2) on a plain SMS:TEXT: the text is split
and written in the alphabet it names, so the submit_sm's octets are what its data_coding
says. data_coding=8 on a GSM 7-bit text went out as septets labelled UCS-2 (b'abc' with
data_coding 8), which the phone shows as garbage. A data_coding a text cannot be written in
is refused at once, in the dialect's format, storing nothing."""

from __future__ import annotations

import pytest

from appliance.gsm import alphabet
from conftest import Api, xml_values
from test_api_ozeki import make_user
from test_modem_kit import wait_until
from test_smpp_daemon import smpp_daemon, smsc  # noqa: F401 (fixtures)
from web_kit import demo_daemon_on_simulated_modems

LONG_GSM = "The quick brown fox jumps over the lazy dog. " * 2    # 90 chars: 1 GSM, 2 UCS-2


def _bound(daemon) -> Api:
    wait_until(lambda: daemon.channels.running["SMPP0"].state == "bound", what="bind")
    return Api(daemon.port)


def _send(api: Api, text: str, **params) -> str:
    body = api.action("sendmessage", recipient="+36201234567", messagedata=text, **params)
    assert xml_values(body, "statuscode") == ["0"], body
    return xml_values(body, "messageid")[0]


def test_data_coding_8_sends_a_gsm7_text_as_ucs2(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    message_id = _send(api, "abc", messagetype="SMS:TEXT", data_coding="8")
    api.wait_state(message_id, 10)
    [pdu] = smsc.proxy.wire
    assert pdu.data_coding == 8 and pdu.short_message == "abc".encode("utf-16-be")


def test_data_coding_8_splits_and_counts_parts_as_ucs2(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    john = make_user(api)
    assert xml_values(john.action("getcredits"), "balance") == ["1000"]
    message_id = _send(john, LONG_GSM, data_coding="8")
    assert xml_values(john.action("getcredits"), "balance") == ["998"]   # two UCS-2 parts
    api.wait_state(message_id, 10)
    wire = smsc.proxy.wire
    assert len(wire) == 2 == len(daemon.journal.get_parts(message_id))
    assert all(p.data_coding == 8 and p.esm_class & 0x40 for p in wire)
    text = "".join(p.short_message[1 + p.short_message[0]:].decode("utf-16-be") for p in wire)
    assert text == LONG_GSM
    stored = daemon.journal.get_message(message_id)
    assert (stored["encoding"], stored["parts_total"]) == ("ucs2", 2)


@pytest.mark.parametrize("coding,wire", [
    ("0", bytes(alphabet.to_septets("Hi_there@"))),
    ("1", b"Hi_there@"),
    ("3", b"Hi_there@"),
])
def test_default_ia5_and_latin1_codings_write_one_octet_per_character(smpp_daemon, smsc,
                                                                      coding, wire):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    api.wait_state(_send(api, "Hi_there@", data_coding=coding), 10)
    [pdu] = smsc.proxy.wire
    assert (pdu.data_coding, pdu.short_message) == (int(coding), wire)


@pytest.mark.parametrize("params,says", [
    ({"data_coding": "0", "messagedata": "Szia ő"}, "with data_coding 0"),
    ({"data_coding": "3", "messagedata": "Привет"}, "with data_coding 3"),
    # GSM 7-bit, but not in Latin-1 / ASCII: written as '?' (found by a helper)
    ({"data_coding": "3", "messagedata": "€5 ΔT"}, "(Latin-1): 'Δ€'"),
    ({"data_coding": "1", "messagedata": "café £1"}, "(IA5/ASCII): '£é'"),
    ({"data_coding": "4"}, "8-bit data, not text; send the octets as SMS:BINARY:XML"),
    ({"data_coding": "2"}, "8-bit data"),
    ({"data_coding": "5"}, "JIS"),
    ({"data_coding": "8", "messagetype": "SMS:TEXT:GSM7BIT"}, "asks for GSM 7-bit"),
    ({"data_coding": "0", "messagetype": "SMS:TEXT:UCS2"}, "asks for UCS-2"),
    ({"data_coding": "16", "messagetype": "SMS:TEXT:CLASS1"}, "is message class 0, the "
                                                              "message type asks for class 1"),
])
def test_a_text_the_data_coding_cannot_carry_is_refused(smpp_daemon, smsc, params, says):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    params = {"messagedata": "abc", **params}
    body = api.action("sendmessage", recipient="+36201234567", **params)
    assert xml_values(body, "statuscode") == ["3"], body
    assert says in xml_values(body, "statusmessage")[0]
    assert daemon.journal.folder(None, "outbox", 10) == []
    assert smsc.proxy.wire == []


def test_latin1_writes_the_gsm7_letters_it_has(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    api.wait_state(_send(api, "café £1 [x]", data_coding="3"), 10)
    [pdu] = smsc.proxy.wire
    assert (pdu.data_coding, pdu.short_message) == (3, "café £1 [x]".encode("latin-1"))


def test_without_data_coding_a_gsm7_text_stays_gsm7(smpp_daemon, smsc):
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    api.wait_state(_send(api, "abc"), 10)
    [pdu] = smsc.proxy.wire
    assert (pdu.data_coding, pdu.short_message) == (0, bytes(alphabet.to_septets("abc")))


def test_a_modem_sends_a_data_coding_8_text_as_ucs2_too(make_config, run_daemon):
    """A modem has no data_coding (the parameter is SMPP-only): it sends the parts the
    message was split into, UCS-2 ones, so the text and the part count are the same on
    either route."""
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        api = Api(daemon.port)
        _send(api, "abc", data_coding="8")
        [submit] = wait_until(lambda: [s for s in network.submits
                                       if s["to"] == "+36201234567"], timeout=30,
                              what="submitted")
        assert (submit["text"], submit["encoding"]) == ("abc", "ucs2")


def test_a_flash_data_coding_makes_the_message_flash_on_a_modem_too(make_config,
                                                                   run_daemon):
    """Found by a helper: data_coding 24 (0x18, flash UCS-2) on SMS:TEXT was flash on the
    SMPP link but stored without a class and sent by a modem as a plain SMS."""
    with demo_daemon_on_simulated_modems(make_config, run_daemon) as (daemon, network):
        api = Api(daemon.port)
        message_id = _send(api, "abc", data_coding="24")
        [submit] = wait_until(lambda: [s for s in network.submits
                                       if s["to"] == "+36201234567"], timeout=30,
                              what="submitted")
        assert (submit["text"], submit["encoding"], submit["msg_class"]) == ("abc", "ucs2", 0)
        assert daemon.journal.get_message(message_id)["msg_class"] == 0


@pytest.mark.parametrize("messagetype,coding,wire_dcs", [
    ("SMS:TEXT:CLASS0", "8", 0x18),         # flash UCS-2, as a modem sends it
    ("SMS:TEXT:CLASS0", "0", 0x10),
    ("SMS:TEXT:CLASS1", "8", 0x19),
    ("SMS:TEXT:CLASS0", "3", 3),            # Latin-1 has no class bits: sent as asked
    ("SMS:TEXT", "8", 8),
    ("SMS:TEXT", "24", 0x18),               # a DCS of its own: sent as given
    ("SMS:TEXT:CLASS0", "16", 0x10),
])
def test_data_coding_naming_the_alphabet_keeps_the_message_class(smpp_daemon, smsc,
                                                                  messagetype, coding,
                                                                  wire_dcs):
    """Found by a helper: the dynamic data_coding replaced the whole DCS, so a flash
    SMS:TEXT:CLASS0 with data_coding 8 went out as plain UCS-2 (8), not 0x18."""
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    api.wait_state(_send(api, "abc", messagetype=messagetype, data_coding=coding), 10)
    [pdu] = smsc.proxy.wire
    body = "abc".encode("utf-16-be") if coding == "8" else None
    assert pdu.data_coding == wire_dcs
    assert body is None or pdu.short_message == body


@pytest.mark.parametrize("esm_class", ["0", "3", "64"])
def test_a_dynamic_esm_class_keeps_the_udhi_bit_the_body_needs(smpp_daemon, smsc, esm_class):
    """Found by a helper: the dynamic esm_class replaced the computed one, so esm_class=0 (a
    client sending its defaults) on a long text cleared UDHI and the phone showed each
    part's concat header as text; 64 on a one-part text made its first letter a header
    length. The messaging mode (3: store and forward) is kept."""
    daemon, _ = smpp_daemon
    api = _bound(daemon)
    long_id = _send(api, "a" * 200, esm_class=esm_class)
    short_id = _send(api, "Hello", esm_class=esm_class)
    api.wait_state(long_id, 10)
    api.wait_state(short_id, 10)
    mode = int(esm_class) & 0x03
    [short] = [p for p in smsc.proxy.wire if len(p.short_message) == len("Hello")]
    parts = [p for p in smsc.proxy.wire if p is not short]
    assert [p.esm_class for p in parts] == [0x40 | mode] * 2
    assert "".join(alphabet.from_septets(p.short_message[6:]) for p in parts) == "a" * 200
    assert (short.esm_class, short.short_message) == (mode, bytes(alphabet.to_septets("Hello")))
