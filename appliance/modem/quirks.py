"""Vendor quirks that decide whether SMS, reports and USSD work at all (field-notes §2, §3).

Matched on the manufacturer/model the modem reports (AT+CGMI / AT+CGMM). Each quirk is
a list of commands sent during init; an error from any of them is logged and ignored,
because firmware versions differ in what they accept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quirks:
    vendor: str
    init_commands: tuple[str, ...] = ()
    ussd_charset_gsm: bool = True        # some modems answer ERROR to CUSD until CSCS="GSM"
    ussd_text_command: str = ""          # asks for text USSD; if refused, USSD goes packed
    iccid_command: str = "AT+CCID"       # the SIM's ICCID (AT+CCID is the fallback)


QUECTEL = Quirks("quectel", (
    # URCs (+CMTI, +CDS, +CUSD) go to the AT interface we listen on, not usbmodem/uart.
    'AT+QURCCFG="urcport","usbat"',
), iccid_command="AT+QCCID")
SIMCOM = Quirks("simcom", (
    # Reports straight to us (+CDS): the SR-memory path gives CMS 321 on some SIM7600s.
    'AT+CSCS="GSM"',
), iccid_command="AT+CICCID")
HUAWEI = Quirks("huawei", (
    "AT^CURC=0",            # stop ^RSSI/^BOOT/^MODE chatter that buries real answers
),
    # USSD as text; firmwares that refuse it want the request packed GSM 7-bit hex
    # (`*144#` -> `AA188D3602`) and answer packed (field-notes §2 point 11).
    ussd_text_command="AT^USSDMODE=0", iccid_command="AT^ICCID?")
TELIT = Quirks("telit", (
    "AT#SMSMODE=0",         # 27.005 behaviour for +CMGS/+CDS
), iccid_command="AT#CCID")
GENERIC = Quirks("generic")


def detect(manufacturer: str, model: str) -> Quirks:
    text = f"{manufacturer} {model}".lower()
    for needle, quirks in (("quectel", QUECTEL), ("simcom", SIMCOM), ("huawei", HUAWEI),
                           ("telit", TELIT)):
        if needle in text:
            return quirks
    return GENERIC
