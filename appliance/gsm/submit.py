"""Encoding SMS-SUBMIT PDUs (TS 23.040 §9.2.2.2): one part with `encode_part`, a whole
message with `encode_submit` (which is `segments` + `encode_part`, the same path the
store and the modem worker take), and binary / WAP payloads with `encode_submit_binary`.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from .address import encode_address, encode_smsc
from .dcs import build_dcs
from .errors import EncodingError
from .params import check_octet
from .segment import segments, split_binary
from .timestamps import encode_validity
from .udh import build_header
from .userdata import build_user_data

_MTI_SUBMIT = 0x01
_REJECT_DUPLICATES = 0x04
_STATUS_REPORT_REQUEST = 0x20
_UDHI = 0x40


def encode_part(number: str, *, text: str | None = None, data: bytes = b"",
                encoding: str = "gsm7", concat: tuple[int, int, int, int] | None = None,
                udh: bytes = b"", pid: int = 0, dcs: int | None = None,
                msg_class: int | None = None, request_status_report: bool = False,
                message_reference: int = 0, validity: float | datetime | None = None,
                smsc: str | None = None, reject_duplicates: bool = False) -> str:
    """One SMS-SUBMIT as upper-case hex, SMSC field first (00 = the SIM's SMSC)."""
    ies = build_header(concat, udh)
    udl, user_data = build_user_data(encoding, text, data, ies, dcs)
    vpf, vp = encode_validity(validity)
    first = (_MTI_SUBMIT | vpf << 3 | (_REJECT_DUPLICATES if reject_duplicates else 0)
             | (_STATUS_REPORT_REQUEST if request_status_report else 0) | (_UDHI if ies else 0))
    coding = build_dcs(encoding, msg_class) if dcs is None else check_octet(dcs, "TP-DCS")
    tpdu = (bytes((first, check_octet(message_reference, "TP-MR"))) + encode_address(number)
            + bytes((check_octet(pid, "TP-PID"), coding)) + vp + bytes((udl,)) + user_data)
    return (encode_smsc(smsc) + tpdu).hex().upper()


def default_concat_ref(number: str, payload: bytes, bits: int) -> int:
    """A reference derived from the message, so equal inputs give equal PDUs (the codec
    is pure); callers that track references pass `concat_ref` instead."""
    return zlib.crc32(number.encode("utf-8", "replace") + payload) & ((1 << bits) - 1)


def _positions(count: int, ref: int, bits: int):
    """concat value for each part: None for a lone SMS."""
    if count == 1:
        return [None]
    return [(ref, count, seq, bits) for seq in range(1, count + 1)]


def encode_submit(number: str, text: str, *, encoding: str | None = None,
                  request_status_report: bool = False, message_reference: int = 0,
                  concat_ref: int | None = None, concat_16bit: bool = False,
                  msg_class: int | None = None, validity: float | datetime | None = None,
                  smsc: str | None = None) -> list[str]:
    """Every SMS-SUBMIT for `text`; part n gets TP-MR message_reference + n - 1."""
    plan = segments(text, encoding=encoding, concat_16bit=concat_16bit)
    bits = 16 if concat_16bit else 8
    if concat_ref is None:
        concat_ref = default_concat_ref(number, text.encode("utf-8", "replace"), bits)
    check_octet(message_reference, "TP-MR")
    return [encode_part(number, text=part, encoding=plan.encoding, concat=concat,
                        msg_class=msg_class, request_status_report=request_status_report,
                        message_reference=(message_reference + i) % 256, validity=validity,
                        smsc=smsc)
            for i, (part, concat) in enumerate(zip(plan.parts,
                                                   _positions(plan.count, concat_ref, bits)))]


def with_class(dcs: int, msg_class: int | None) -> int:
    """Put a message class into a general-group DCS (00xx xxxx)."""
    if msg_class is None:
        return dcs
    if msg_class not in (0, 1, 2, 3) or dcs & 0xC0:
        raise EncodingError(f"cannot give DCS {dcs:02X} message class {msg_class!r}")
    return (dcs & ~0x13) | 0x10 | msg_class


def encode_submit_binary(number: str, data: bytes, *, udh: bytes = b"", pid: int = 0,
                         dcs: int = 0x04, request_status_report: bool = False,
                         message_reference: int = 0, concat_ref: int | None = None,
                         concat_16bit: bool = False, msg_class: int | None = None,
                         validity: float | datetime | None = None,
                         smsc: str | None = None) -> list[str]:
    """8-bit data (SMS:BINARY, WAP push); `udh` are IEs without the UDHL octet and are
    repeated in every part, after the concat IE."""
    chunks = split_binary(bytes(data), len(udh), concat_16bit)
    bits = 16 if concat_16bit else 8
    if concat_ref is None:
        concat_ref = default_concat_ref(number, bytes(udh) + bytes(data), bits)
    coding = with_class(check_octet(dcs, "TP-DCS"), msg_class)
    return [encode_part(number, data=chunk, encoding="8bit", concat=concat, udh=udh, pid=pid,
                        dcs=coding, request_status_report=request_status_report,
                        message_reference=(message_reference + i) % 256, validity=validity,
                        smsc=smsc)
            for i, (chunk, concat) in enumerate(zip(chunks,
                                                    _positions(len(chunks), concat_ref, bits)))]
