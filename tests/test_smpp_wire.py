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
