"""What the network sends a phone: SMS-DELIVER and SMS-STATUS-REPORT (TS 23.040 §9.2.2.1,
§9.2.2.3). The modem simulator uses these, so a simulated network speaks real PDUs."""

from __future__ import annotations

from datetime import datetime

from .address import encode_address, encode_smsc
from .dcs import build_dcs
from .params import check_octet
from .segment import choose_encoding
from .timestamps import encode_scts
from .udh import build_header
from .userdata import build_user_data

_MTI_DELIVER = 0x00
_MTI_STATUS_REPORT = 0x02
_NO_MORE_MESSAGES = 0x04   # TP-MMS = 1
_UDHI = 0x40


def encode_deliver(sender: str, text: str | None = None, *, data: bytes = b"",
                   encoding: str | None = None,
                   concat: tuple[int, int, int, int] | None = None, udh: bytes = b"",
                   scts: datetime, smsc: str | None = None, msg_class: int | None = None,
                   pid: int = 0, dcs: int | None = None) -> str:
    """One SMS-DELIVER as upper-case hex with the SMSC field. Text without an encoding
    gets GSM 7-bit or UCS-2; no text means 8-bit `data`."""
    encoding = _deliver_encoding(text, encoding)
    ies = build_header(concat, udh)
    udl, user_data = build_user_data(encoding, text, data, ies, dcs)
    coding = build_dcs(encoding, msg_class) if dcs is None else check_octet(dcs, "TP-DCS")
    first = _MTI_DELIVER | _NO_MORE_MESSAGES | (_UDHI if ies else 0)
    tpdu = (bytes((first,)) + encode_address(sender) + bytes((check_octet(pid, "TP-PID"), coding))
            + encode_scts(scts) + bytes((udl,)) + user_data)
    return (encode_smsc(smsc) + tpdu).hex().upper()


def _deliver_encoding(text: str | None, encoding: str | None) -> str:
    if encoding == "8bit" or (text is None and encoding is None):
        return "8bit"
    return choose_encoding(text or "", encoding)


def encode_status_report(recipient: str, *, message_reference: int, status: int,
                         scts: datetime, discharge_time: datetime,
                         smsc: str | None = None) -> str:
    """One SMS-STATUS-REPORT (no optional parameters), upper-case hex with SMSC field.
    `status` is TP-ST: 0 delivered, 0x20-0x3F temporary, 0x40-0x7F permanent failure."""
    first = _MTI_STATUS_REPORT | _NO_MORE_MESSAGES
    tpdu = (bytes((first, check_octet(message_reference, "TP-MR"))) + encode_address(recipient)
            + encode_scts(scts) + encode_scts(discharge_time)
            + bytes((check_octet(status, "TP-ST"),)))
    return (encode_smsc(smsc) + tpdu).hex().upper()
