"""The PDUs that go by once per message, packed and read by hand: submit_sm out,
submit_sm_resp and deliver_sm (receipts, MO) in, deliver_sm_resp out.

smpplib builds a PDU object per PDU (a dict of ~50 parameters set one by one, each field
looked up and packed through several calls): at a few thousand submit_sm a second that is
most of the uplink's CPU. These functions write the same bytes as smpplib's classes for
the fields `codec.submit_fields` produces (tests/test_smpp_wire.py compares them byte for
byte) and give up (None) on anything else, which then goes through smpplib as before.
"""

from __future__ import annotations

import struct

SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM_RESP = 0x80000005
HEADER = struct.Struct(">LLLL")

# mandatory submit_sm fields in wire order: (name, C-string max length incl. NUL, or 0 = one
# octet integer); short_message follows with its length octet
_MANDATORY = (("service_type", 6), ("source_addr_ton", 0), ("source_addr_npi", 0),
              ("source_addr", 21), ("dest_addr_ton", 0), ("dest_addr_npi", 0),
              ("destination_addr", 21), ("esm_class", 0), ("protocol_id", 0),
              ("priority_flag", 0), ("schedule_delivery_time", 17),
              ("validity_period", 17), ("registered_delivery", 0),
              ("replace_if_present_flag", 0), ("data_coding", 0), ("sm_default_msg_id", 0))
# the optional ones submit_fields may set, in smpplib's order: (name, tag, value format)
_TLVS = (("sar_msg_ref_num", 0x020C, "H"), ("sar_total_segments", 0x020E, "B"),
         ("sar_segment_seqnum", 0x020F, "B"))
_PAYLOAD_TAG = 0x0424
KNOWN = frozenset([name for name, _ in _MANDATORY] + [name for name, _, _ in _TLVS]
                  + ["short_message", "message_payload"])


def encode_submit_sm(sequence: int, fields: dict) -> bytes | None:
    """smpplib's bytes for a submit_sm with these fields; None when a field is not one this
    packer knows (the caller uses smpplib's SubmitSM then)."""
    if not KNOWN.issuperset(fields):
        return None
    body = bytearray()
    get = fields.get
    for name, size in _MANDATORY:
        value = get(name)
        if size:
            text = (value or "")[:size - 1]
            body += text.encode("latin-1")
            body.append(0)
        else:
            body.append(value or 0)        # bytearray refuses values over 255, as struct does
    short = get("short_message") or b""
    payload = get("message_payload")
    if short and payload:
        raise ValueError("`message_payload` can not be used with `short_message`")
    body.append(len(short))
    body += short
    for name, tag, fmt in _TLVS:
        value = get(name)
        if value is not None:
            body += struct.pack(">HH" + fmt, tag, struct.calcsize(fmt), value)
    if payload:
        body += struct.pack(">HH", _PAYLOAD_TAG, len(payload)) + payload
    return HEADER.pack(16 + len(body), SUBMIT_SM, 0, sequence) + bytes(body)


class SubmitResp:
    """A submit_sm_resp as the channel reads it (the fields smpplib's class would give)."""

    __slots__ = ("sequence", "status", "message_id")
    command = "submit_sm_resp"

    def __init__(self, sequence: int, status: int, message_id: bytes):
        self.sequence, self.status, self.message_id = sequence, status, message_id


def read_submit_resp(raw: bytes) -> SubmitResp | None:
    """A whole PDU's bytes; None unless it is a submit_sm_resp."""
    _, command_id, status, sequence = HEADER.unpack_from(raw)
    if command_id != SUBMIT_SM_RESP:
        return None
    end = raw.find(b"\0", 16)
    return SubmitResp(sequence, status, raw[16:end if end >= 0 else len(raw)])


class Reply:
    """A deliver_sm_resp: an empty message_id; `status` may change until it is sent."""

    __slots__ = ("sequence", "status")

    def __init__(self, sequence: int, status: int = 0):
        self.sequence, self.status = sequence, status

    def generate(self) -> bytes:
        return HEADER.pack(17, DELIVER_SM_RESP, self.status, self.sequence) + b"\0"


DELIVER_SM = 0x00000005
# deliver_sm's mandatory fields up to short_message: C-string (True) or one octet (False)
_DELIVER_FIELDS = (("service_type", True), ("source_addr_ton", False),
                   ("source_addr_npi", False), ("source_addr", True),
                   ("dest_addr_ton", False), ("dest_addr_npi", False),
                   ("destination_addr", True), ("esm_class", False), ("protocol_id", False),
                   ("priority_flag", False), ("schedule_delivery_time", True),
                   ("validity_period", True), ("registered_delivery", False),
                   ("replace_if_present_flag", False), ("data_coding", False),
                   ("sm_default_msg_id", False))
# the TLVs a receipt or an MO carries: tag -> (name, octets of an integer, 0 = octets,
# -1 = C-string)
_DELIVER_TLVS = {0x020C: ("sar_msg_ref_num", 2), 0x020E: ("sar_total_segments", 1),
                 0x020F: ("sar_segment_seqnum", 1), 0x0424: ("message_payload", 0),
                 0x0427: ("message_state", 1), 0x001E: ("receipted_message_id", -1)}


class Deliver:
    """A deliver_sm as smpplib's DeliverSM would read it, for the fields the channel uses."""

    command = "deliver_sm"

    def __init__(self, sequence: int, status: int):
        self.sequence, self.status = sequence, status


def read_deliver_sm(raw: bytes) -> Deliver | None:
    """A whole PDU's bytes; None unless it is a deliver_sm this reader is sure of (anything
    unusual — a field without its NUL, a TLV that runs past the end, one the channel reads
    with an unexpected size — is left to smpplib). TLVs the channel does not read
    (`network_error_code`, an aggregator's vendor tags on every receipt) are skipped, as
    smpplib skips the ones it does not know: a receipt carrying them stays on this path."""
    _, command_id, status, sequence = HEADER.unpack_from(raw)
    if command_id != DELIVER_SM:
        return None
    pdu = Deliver(sequence, status)
    pos, end = 16, len(raw)
    for name, is_text in _DELIVER_FIELDS:
        if pos >= end:
            return None
        if is_text:
            nul = raw.find(b"\0", pos)
            if nul < 0:
                return None
            setattr(pdu, name, raw[pos:nul])
            pos = nul + 1
        else:
            setattr(pdu, name, raw[pos])
            pos += 1
    if pos >= end:
        return None
    length = raw[pos]
    pdu.short_message = raw[pos + 1:pos + 1 + length]
    pos += 1 + length
    if pos > end:
        return None
    for name, _ in _DELIVER_TLVS.values():
        setattr(pdu, name, None)
    while pos < end:
        if end - pos < 4:
            return None
        tag, size = struct.unpack_from(">HH", raw, pos)
        pos += 4
        if pos + size > end:
            return None
        known = _DELIVER_TLVS.get(tag)
        if known is None:
            pos += size
            continue
        name, kind = known
        value = raw[pos:pos + size]
        if kind > 0:
            if size != kind:
                return None
            value = int.from_bytes(value, "big")
        elif kind < 0:
            value = value[:-1] if value.endswith(b"\0") else None
            if value is None:
                return None
        setattr(pdu, name, value)
        pos += size
    return pdu
