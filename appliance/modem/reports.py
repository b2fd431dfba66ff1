"""Decoded PDUs into the store's vocabulary: DELIVER -> InboundFragment, STATUS-REPORT -> Report.

TP-ST (23.040 §9.2.3.15): 0x00-0x1F the SMS was delivered; 0x20-0x3F the SMSC is still
trying (not final); 0x40-0x5F permanent error; 0x60-0x7F temporary error the SMSC gave up
on (final too); 0x46 is "validity period expired". Reserved values count as failures.
"""

from __future__ import annotations

from appliance.gsm import Pdu
from appliance.model import InboundFragment, Report, ReportStatus

TP_ST_EXPIRED = 0x46
TP_ST_TEXT = {0x00: "delivered", 0x01: "forwarded, delivery unconfirmed", 0x02: "replaced",
              0x20: "congestion, still trying", 0x21: "recipient busy, still trying",
              0x22: "no response from recipient, still trying", 0x40: "remote procedure error",
              0x41: "incompatible destination", 0x42: "connection rejected by recipient",
              0x43: "not obtainable", 0x44: "quality of service not available",
              0x45: "no interworking available", 0x46: "validity period expired",
              0x47: "deleted by originating SME", 0x48: "deleted by SMSC administration",
              0x49: "SM does not exist", 0x60: "congestion, SMSC gave up",
              0x61: "recipient busy, SMSC gave up", 0x62: "no response, SMSC gave up"}


def report_status(tp_st: int) -> ReportStatus:
    if 0x00 <= tp_st <= 0x1F:
        return ReportStatus.DELIVERED
    if 0x20 <= tp_st <= 0x3F:
        return ReportStatus.PENDING
    if tp_st == TP_ST_EXPIRED:
        return ReportStatus.EXPIRED
    return ReportStatus.FAILED


def to_report(pdu: Pdu, connection: str, received_at: float) -> Report:
    tp_st = pdu.status if pdu.status is not None else 0x40
    done_at = pdu.discharge_time.timestamp() if pdu.discharge_time else received_at
    return Report(connection=connection, reference=str(pdu.message_reference),
                  status=report_status(tp_st), code=tp_st,
                  detail=TP_ST_TEXT.get(tp_st, f"TP-ST 0x{tp_st:02X}"),
                  recipient=pdu.number or None, done_at=done_at)


def to_fragment(pdu: Pdu, connection: str, own_number: str, received_at: float) -> InboundFragment:
    return InboundFragment(connection=connection, sender=pdu.number, recipient=own_number,
                           encoding=pdu.encoding, text=pdu.text, data=pdu.data,
                           concat=pdu.concat,
                           sent_at=pdu.scts.timestamp() if pdu.scts else None,
                           received_at=received_at, msg_class=pdu.msg_class, udh=pdu.udh,
                           raw=pdu.raw)
