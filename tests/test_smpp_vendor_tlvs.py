"""Optional parameters (TLVs) the appliance does not use, on PDUs from a real SMSC.

Aggregators add TLVs to every receipt: `network_error_code`, and vendor tags
(0x1400-0x3FFF) of their own. They must neither send each receipt through smpplib's slower
reader nor write a log line per PDU: smpplib warns of every unknown tag at every PDU that
carries one, so an SMSC with a vendor tag on each receipt wrote a WARNING per receipt to the
SD card. Through a real socket (fakes/raw_smsc.py) and the real SmppChannel.
"""

from __future__ import annotations

import logging
import struct

import smpplib.smpp

from appliance.uplink import wire
from appliance.uplink.smpp import pdu_fields
from test_smpp import wait_until
from test_smpp_wire import Seq

# smpplib's warning is said once per tag and process: each test has a tag of its own
VENDOR_TAG = 0x1501
LOGGED_TAG = 0x1502
NETWORK_ERROR_CODE = b"\x03\x00\x01"
RECEIPT = (b"id:%d sub:001 dlvrd:001 submit date:2612051200 done date:2612051201"
           b" stat:DELIVRD err:000 text:x")


def with_tlv(raw: bytes, tag: int, value: bytes) -> bytes:
    """`raw` with one more TLV at its end, and its command_length made right."""
    body = raw[4:] + struct.pack(">HH", tag, len(value)) + value
    return struct.pack(">I", 4 + len(body)) + body


def vendor_receipt(make_pdu, command: str, number: int, tag: int = VENDOR_TAG) -> bytes:
    """A receipt with network_error_code and a vendor TLV; data_sm carries its text in
    message_payload (it has no short_message)."""
    text = {"short_message" if command == "deliver_sm" else "message_payload": RECEIPT % number}
    raw = make_pdu(command, esm_class=4, source_addr="36201234567", destination_addr="ACME",
                   network_error_code=NETWORK_ERROR_CODE, **text)
    return with_tlv(raw, tag, b"carrier-x\0")


def smpplib_bytes(command: str, **fields) -> bytes:
    return smpplib.smpp.make_pdu(command, client=Seq(), **fields).generate()


def test_a_receipt_with_tlvs_it_does_not_use_is_read_as_smpplib_reads_it():
    raw = vendor_receipt(smpplib_bytes, "deliver_sm", 160)
    theirs = smpplib.smpp.parse_pdu(raw, client=Seq(), allow_unknown_opt_params=True)
    ours = wire.read_deliver_sm(raw)
    assert ours is not None, "left to smpplib"
    assert pdu_fields(ours) == pdu_fields(theirs)
    assert (ours.sequence, ours.status) == (theirs.sequence, theirs.status)


def test_a_tlv_that_runs_past_the_pdu_is_still_left_to_smpplib():
    raw = vendor_receipt(smpplib_bytes, "deliver_sm", 1)
    cut = raw[:-3]
    assert wire.read_deliver_sm(struct.pack(">I", len(cut)) + cut[4:]) is None


def test_receipts_with_a_vendor_tlv_are_settled_and_logged_once(raw, raw_channel, caplog):
    channel, sink = raw_channel()
    caplog.set_level(logging.INFO)
    for number in range(20):
        raw.push(vendor_receipt(raw.pdu, "deliver_sm", number, LOGGED_TAG))
    # data_sm is read by smpplib alone: its warning about the vendor tag comes once
    for number in range(20, 40):
        raw.push(vendor_receipt(raw.pdu, "data_sm", number, LOGGED_TAG))
    wait_until(lambda: len(sink.reports) == 40, what="40 receipts")
    wait_until(lambda: len([a for a in raw.answers if a[0] in ("deliver_sm_resp", "data_sm_resp")])
               == 40, what="40 answers")
    assert all(status == 0 for _, _, status in raw.answers)
    assert sorted(int(r.reference) for r in sink.reports) == list(range(40))
    about_the_tag = [r for r in caplog.records if f"0x{LOGGED_TAG:x}" in r.getMessage()]
    assert len(about_the_tag) == 1, [r.getMessage() for r in about_the_tag]
    assert about_the_tag[0].levelno == logging.WARNING
    assert channel.status()["counts"]["link_drops"] == 0
