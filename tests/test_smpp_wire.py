"""The hand-packed PDUs (appliance/uplink/wire.py) are byte for byte what smpplib's classes
make of the same fields, for every kind of part codec.submit_fields produces."""

from __future__ import annotations

import itertools

import pytest
import smpplib.smpp

from appliance.config import SMPPConfig
from appliance.model import OutPart
from appliance.uplink import codec, wire


class Seq:
    def next_sequence(self):
        return 7


def smpplib_bytes(command: str, sequence: int, **fields) -> bytes:
    return smpplib.smpp.make_pdu(command, client=Seq(), sequence=sequence, **fields).generate()


PARTS = [
    dict(text="hello"),
    dict(text="Ünïcode ☺", encoding="ucs2"),
    dict(text="€ and [brackets] in GSM", originator="+36301234567"),
    dict(text="", originator=""),
    dict(text="part two", seq=2, total=3, concat_ref=77),
    dict(text="part two", seq=2, total=3, concat_ref=300, concat_16bit=True),
    dict(encoding="8bit", data=bytes(range(256))[:140], udh=b"\x05\x04\x0b\x84\x23\xf0"),
    dict(text="flash", msg_class=0, want_report=False, pid=0x41),
    dict(text="valid", valid_until=1_700_000_000.0),
    dict(text="x", smpp_params={"source_addr_ton": "5", "esm_class": "0x03",
                                "data_coding": "3"}),
    dict(text="alphanumeric originator that is far too long", originator="A" * 30,
         recipient="+" + "9" * 25),
]
CONNECTIONS = [dict(), dict(usesar=True), dict(defaultalphabet="latin1", sourceaddrton=1,
                                               destaddrton=0, deliveryreport=False)]


@pytest.mark.parametrize("fields,settings", list(itertools.product(PARTS, CONNECTIONS)))
def test_submit_sm_bytes_are_smpplibs(fields, settings):
    part = OutPart(**{"id": 1, "message_id": "m", "recipient": "+36201234567",
                      "originator": "ACME", **fields})
    conn = SMPPConfig(name="S", host="h", port=1, username="u", password="p", **settings)
    submit = codec.submit_fields(part, conn)
    assert wire.encode_submit_sm(123456, submit) == smpplib_bytes("submit_sm", 123456, **submit)


def test_a_whole_message_in_message_payload_is_smpplibs():
    part = OutPart(id=1, message_id="m", recipient="+36201234567", originator="ACME",
                   text="part one", seq=1, total=2, concat_ref=5)
    conn = SMPPConfig(name="S", host="h", port=1, username="u", password="p",
                      usetlvmessagepayload=True)
    submit = codec.submit_fields(part, conn, whole_text="part one and part two " * 20)
    assert wire.encode_submit_sm(9, submit) == smpplib_bytes("submit_sm", 9, **submit)


def test_a_field_it_does_not_know_is_left_to_smpplib():
    assert wire.encode_submit_sm(1, {"destination_addr": "1", "callback_num": b"1234"}) is None


@pytest.mark.parametrize("status,message_id", [(0, "000000A0"), (0x58, None), (0, "")])
def test_submit_sm_resp_reads_as_smpplib_reads_it(status, message_id):
    raw = smpplib_bytes("submit_sm_resp", 42, status=status, message_id=message_id)
    ours = wire.read_submit_resp(raw)
    theirs = smpplib.smpp.parse_pdu(raw, client=Seq())
    assert (ours.command, ours.sequence, ours.status) == \
        (theirs.command, theirs.sequence, theirs.status)
    assert ours.message_id == (theirs.message_id or b"")


def test_other_pdus_are_not_read_as_submit_sm_resp():
    assert wire.read_submit_resp(smpplib_bytes("enquire_link", 3)) is None


@pytest.mark.parametrize("status", [0, 0x08])
def test_deliver_sm_resp_bytes_are_smpplibs(status):
    assert wire.Reply(77, status).generate() == \
        smpplib_bytes("deliver_sm_resp", 77, status=status)


DELIVERS = [
    dict(short_message=b"id:0000A0 sub:001 dlvrd:001 submit date:2401011200 done date:"
                       b"2401011201 stat:DELIVRD err:000 text:x", esm_class=4,
         source_addr="36201234567", destination_addr="ACME"),
    dict(short_message=b"", esm_class=4, receipted_message_id="a3f", message_state=2,
         source_addr="1", destination_addr="2", source_addr_ton=1),
    dict(short_message=b"\x05\x00\x03\x07\x02\x01hello", esm_class=0x40, data_coding=0,
         source_addr="36701111111", destination_addr="1234", source_addr_ton=1),
    dict(short_message=b"part", sar_msg_ref_num=300, sar_total_segments=2,
         sar_segment_seqnum=1, source_addr="3670", destination_addr="1"),
    dict(short_message=b"", message_payload=b"a long text " * 30, data_coding=8,
         source_addr="3670", destination_addr="1"),
]


def parsed_by_smpplib(raw: bytes):
    return smpplib.smpp.parse_pdu(raw, client=Seq(), allow_unknown_opt_params=True)


@pytest.mark.parametrize("fields", DELIVERS)
def test_deliver_sm_reads_as_smpplib_reads_it(fields):
    from appliance.uplink.smpp import pdu_fields
    raw = smpplib_bytes("deliver_sm", 99, **fields)
    ours, theirs = wire.read_deliver_sm(raw), parsed_by_smpplib(raw)
    assert ours is not None
    assert (ours.command, ours.sequence, ours.status) == \
        (theirs.command, theirs.sequence, theirs.status)
    assert pdu_fields(ours) == pdu_fields(theirs)


def test_an_unusual_deliver_sm_is_left_to_smpplib():
    odd_size = smpplib_bytes("deliver_sm", 5, short_message=b"x", source_addr="1",
                             destination_addr="2")
    odd_size += bytes.fromhex("0427 0002 0002")        # message_state in two octets, not one
    odd_size = len(odd_size).to_bytes(4, "big") + odd_size[4:]
    assert wire.read_deliver_sm(odd_size) is None
    whole = smpplib_bytes("deliver_sm", 5, short_message=b"hello", source_addr="1",
                          destination_addr="2")
    cut = len(whole) - 3                   # short_message runs past the end
    truncated = cut.to_bytes(4, "big") + whole[4:cut]
    assert wire.read_deliver_sm(truncated) is None
    assert wire.read_deliver_sm(smpplib_bytes("enquire_link", 3)) is None


def test_validity_period_is_right_for_each_second_also_when_reused():
    import time as _time

    from appliance.uplink.codec import validity
    for value in (1700000000.9, 1700000000.1, 1700000001.0, 1700000000.5, 86400.0):
        expected = _time.strftime("%y%m%d%H%M%S", _time.gmtime(int(value))) + "000+"
        assert validity(value) == expected
    assert validity(None) == ""


def test_default_alphabet_text_is_the_septets_of_the_gsm_table():
    from appliance.gsm import alphabet
    from appliance.gsm.errors import EncodingError
    texts = ["", "benchmark message 1", alphabet.GSM_CHARACTERS, alphabet.EXTENSION_CHARACTERS,
             "Price: 5€ [sale] {x} ~ | ^ \\ \f", "@£$¥èéùìòÇ\nØø\rÅå", "ÄÖÑÜ§¿äöñüà Δ_ΦΓΛΩΠΨΣΘΞ"]
    for text in texts:
        assert codec.encode_default_text(text, "gsm") == bytes(alphabet.to_septets(text))
    for text in ("emoji 😀", "ESC \x1b", "Ő"):
        with pytest.raises(EncodingError):
            codec.encode_default_text(text, "gsm")
