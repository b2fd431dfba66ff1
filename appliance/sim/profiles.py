"""What simulated modems say about themselves, after the modules in field-notes §3.

Each profile is plain data: identity lines, the `=?` capability answers that decide how
the worker configures it, and the quirks the worker must cope with.
"""

from __future__ import annotations

from dataclasses import dataclass

_CPMS_ALL = '+CPMS: ("SM","ME","SR","MT"),("SM","ME","MT"),("SM","ME","MT")'


@dataclass(frozen=True)
class Profile:
    manufacturer: str
    model: str
    revision: str
    cnmi_support: str
    cpms_support: str = _CPMS_ALL
    urcs_need_urcport: bool = False     # Quectel: URCs go elsewhere until QURCCFG urcport
    huawei_ussd: bool = False           # packed GSM 7-bit USSD until AT^USSDMODE=0
    ussdmode_refused: bool = False      # ...and firmware that refuses AT^USSDMODE=0: packed
    ussd_form: str = "text"             # "text" | "ucs2" | "gsm7": how USSD replies come
    cdsi_memory: str = "SR"             # the memory +CDSI names (Quectel says "SM" for SR)
    csms_support: str = "+CSMS: (0,1)"  # service 1 (phase 2+): +CMT/+CDS wait for +CNMA
    iccid_command: str = "AT+CCID"      # the vendor's ICCID command (AT+CCID also works
                                        # except on Huawei, whose ^ICCID is nibble-swapped)


PROFILES = {
    "quectel": Profile("Quectel", "EC25", "EC25EFAR06A06M4G",
                       "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)", urcs_need_urcport=True,
                       iccid_command="AT+QCCID"),
    # Quectel EC25 firmware that refuses ds=1 and announces its SR reports as `+CDSI: "SM",n`
    # (field-notes §2 point 6, asterisk-chan-quectel #75).
    "quectel_sr": Profile("Quectel", "EC25", "EC25EFAR06A03M4G",
                          "+CNMI: (0-2),(0-3),(0,2),(0,2),(0,1)", urcs_need_urcport=True,
                          cdsi_memory="SM", iccid_command="AT+QCCID"),
    "simcom": Profile("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", "LE20B04SIM7600M22",
                      "+CNMI: (0-2),(0-3),(0-3),(0-2),(0-1)", ussd_form="ucs2",
                      iccid_command="AT+CICCID"),
    "huawei": Profile("Huawei Technologies Co., Ltd.", "ME909s-120", "11.617.01.00.00",
                      "+CNMI: (0-2),(0-3),(0,2),(0-2),(0-1)", huawei_ussd=True,
                      ussdmode_refused=True, ussd_form="gsm7", iccid_command="AT^ICCID?"),
    "telit": Profile("Telit", "LE910C1-EUX", "25.21.660",
                     "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
                     cpms_support='+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")',
                     iccid_command="AT#CCID"),
    # Reports only into SR memory (ds=2): the `+CDSI` path (gammu #408).
    "srmem": Profile("Generic", "SR-only", "1.0", "+CNMI: (0-2),(0-2),(0,2),(0,2),(0,1)"),
    # Routes new SMS only directly (+CMT, mt=2): with AT+CSMS=1 each must be acknowledged
    # with +CNMA, or the modem stops routing and the SMSC delivers it again (27.005 §3.4.4).
    "cmt_only": Profile("Generic", "CMT-only", "1.0", "+CNMI: (0-2),(0,2),(0),(0,1),(0,1)",
                        cpms_support='+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")'),
    # SIM800-like: no stored reports, no CPMS SR.
    "sim800": Profile("SIMCOM_Ltd", "SIMCOM_SIM800L", "1418B04SIM800L24",
                      "+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)",
                      cpms_support='+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")'),
}
