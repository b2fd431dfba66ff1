"""Decoding SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT PDUs (TS 23.040 §9.2.2).

`decode` reads what modems print for +CMGR / +CMGL / +CMT / +CDS: an optional SMSC field
followed by the TPDU, in hex. Octets after the user data are ignored, as phones do
(some modems append garbage); anything missing or impossible raises PduError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .address import read_address, read_smsc
from .dcs import parse_dcs
from .errors import PduError
from .reader import Reader, octets_from_hex
from .timestamps import bcd_value, decode_scts, relative_seconds
from .udh import interpret, strip_concat
from .userdata import UserData, read_user_data

MTI_DELIVER, MTI_SUBMIT, MTI_STATUS_REPORT = 0, 1, 2
_UDHI = 0x40
_SRR_OR_SRI = 0x20   # SMS-SUBMIT: report requested; SMS-DELIVER: report indication


@dataclass(frozen=True)
class Pdu:
    type: str                                   # "deliver" | "submit" | "status_report"
    smsc: str | None = None
    number: str = ""                            # OA, DA or RA; '+' when international
    text: str | None = None                     # None for 8-bit data
    data: bytes = b""                           # the payload of 8-bit messages
    encoding: str = "gsm7"                      # "gsm7" | "ucs2" | "8bit"
    msg_class: int | None = None
    udh: bytes = b""                            # IEs other than concatenation
    concat: tuple[int, int, int, int] | None = None   # (ref, total, seq, ref_bits)
    ports: tuple[int, int] | None = None        # (dest, src)
    message_reference: int | None = None
    validity: int | datetime | None = None      # seconds (relative) or datetime (absolute)
    scts: datetime | None = None
    discharge_time: datetime | None = None
    status: int | None = None                   # TP-ST
    pid: int = 0
    dcs: int = 0
    status_report_requested: bool = False       # SRR (submit) / SRI (deliver)
    number_type: int | None = None              # the address's type-of-address octet
    truncated: bool = False                     # user data shorter than TP-UDL announced
    raw: bytes = field(default=b"", compare=False, repr=False)   # UserData.raw (text parts)


def tpdu_length(pdu_hex: str) -> int:
    """Octets after the SMSC field: the length AT+CMGS wants."""
    octets = octets_from_hex(pdu_hex)
    if not octets:
        raise PduError("PDU is empty")
    if octets[0] + 1 > len(octets):
        raise PduError(f"SMSC field claims {octets[0]} octets, the PDU is shorter")
    return len(octets) - 1 - octets[0]


def decode(pdu_hex: str, *, has_smsc: bool = True) -> Pdu:
    reader = Reader(octets_from_hex(pdu_hex))
    smsc = read_smsc(reader) if has_smsc else None
    first = reader.octet("first octet")
    mti = first & 0x03
    if mti == MTI_DELIVER:
        return _deliver(reader, first, smsc)
    if mti == MTI_SUBMIT:
        return _submit(reader, first, smsc)
    if mti == MTI_STATUS_REPORT:
        return _status_report(reader, first, smsc)
    raise PduError("message type indicator 3 is reserved; not an SMS PDU")


def _deliver(reader: Reader, first: int, smsc: str | None) -> Pdu:
    number, toa = read_address(reader, "originating address")
    pid = reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    scts = decode_scts(reader.take(7, "TP-SCTS"))
    body = read_user_data(reader, parse_dcs(dcs), bool(first & _UDHI))
    return _with_body("deliver", body, smsc=smsc, number=number, number_type=toa, pid=pid,
                      dcs=dcs, scts=scts, status_report_requested=bool(first & _SRR_OR_SRI))


def _submit(reader: Reader, first: int, smsc: str | None) -> Pdu:
    reference = reader.octet("TP-MR")
    number, toa = read_address(reader, "destination address")
    pid = reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    validity = _read_validity(reader, (first >> 3) & 0x03)
    body = read_user_data(reader, parse_dcs(dcs), bool(first & _UDHI))
    return _with_body("submit", body, smsc=smsc, number=number, number_type=toa, pid=pid,
                      dcs=dcs, message_reference=reference, validity=validity,
                      status_report_requested=bool(first & _SRR_OR_SRI))


def _status_report(reader: Reader, first: int, smsc: str | None) -> Pdu:
    reference = reader.octet("TP-MR")
    number, toa = read_address(reader, "recipient address")
    scts = decode_scts(reader.take(7, "TP-SCTS"), "TP-SCTS")
    discharge = decode_scts(reader.take(7, "TP-DT"), "TP-DT")
    status = reader.octet("TP-ST")
    fields = dict(smsc=smsc, number=number, number_type=toa, message_reference=reference,
                  scts=scts, discharge_time=discharge, status=status)
    optional = _status_report_extras(reader, first)
    if optional is None:
        return Pdu("status_report", **fields)
    pid, dcs, body = optional
    return _with_body("status_report", body, pid=pid, dcs=dcs, **fields)


def _status_report_extras(reader: Reader, first: int) -> tuple[int, int, UserData] | None:
    """TP-PI and what it announces (TS 23.040 §9.2.2.3). They are optional and absent in
    most real reports; a garbled tail (some networks pad with FF) must not lose the
    report itself, so it is ignored rather than raised."""
    try:
        return _read_status_report_extras(reader, first)
    except PduError:
        return None


def _read_status_report_extras(reader: Reader, first: int) -> tuple[int, int, UserData] | None:
    if reader.remaining() == 0:
        return None
    indicator = reader.octet("TP-PI")
    while indicator & 0x80 and reader.remaining():   # extension octets: skip, keep the first
        reader.octet("TP-PI extension")
    pid = reader.octet("TP-PID") if indicator & 0x01 else 0
    dcs = reader.octet("TP-DCS") if indicator & 0x02 else 0
    if indicator & 0x04:
        return pid, dcs, read_user_data(reader, parse_dcs(dcs), bool(first & _UDHI))
    if indicator & 0x03:
        return pid, dcs, UserData(b"", parse_dcs(dcs).encoding, None, b"")
    return None


def _with_body(kind: str, body: UserData, *, dcs: int, **fields) -> Pdu:
    info = interpret(body.header)
    return Pdu(kind, text=body.text, data=body.data, encoding=body.encoding,
               msg_class=parse_dcs(dcs).msg_class, udh=strip_concat(body.header),
               concat=info.concat, ports=info.ports, dcs=dcs, truncated=body.truncated,
               raw=body.raw, **fields)


def _read_validity(reader: Reader, vpf: int) -> int | datetime | None:
    if vpf == 0b10:
        return relative_seconds(reader.octet("TP-VP (relative)"))
    if vpf == 0b11:
        return decode_scts(reader.take(7, "TP-VP (absolute)"), "TP-VP")
    if vpf == 0b01:
        return _enhanced_validity(reader.take(7, "TP-VP (enhanced)"))
    return None


def _enhanced_validity(octets: bytes) -> int | None:
    """TS 23.040 §9.2.3.12.3: relative forms give seconds; 'none' gives None."""
    form = octets[0] & 0x07
    if form == 1:
        return relative_seconds(octets[1])
    if form == 2:
        return octets[1]
    if form == 3:
        hours, minutes, seconds = (bcd_value(o, "TP-VP (enhanced)") for o in octets[1:4])
        return hours * 3600 + minutes * 60 + seconds
    return None
