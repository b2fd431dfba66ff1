"""The start-up and housekeeping commands ordinary AT clients send, answered as a Quectel EC25
or SIMCom SIM7600 does, so gammu, python-gsmmodem, ModemManager's probe and Kannel's `at`
driver can drive a simulated modem (`sms-appliance sim`) in PDU mode.

The appliance's own worker needs none of this; these handlers come before modem.py's, which
keep the behaviour the field tests rely on. Text mode (AT+CMGF=1) is accepted and reported,
but sending and reading SMS is simulated in PDU mode only: in text mode AT+CMGS, AT+CMGL and
AT+CMGR answer +CMS ERROR: 302 (operation not allowed), as a modem refusing the mode would.
"""

from __future__ import annotations

import re

CHARSETS = ("GSM", "IRA", "UCS2")          # what EC25 and SIM7600 list for AT+CSCS=?
_COMMANDS = ("AT", "ATE", "ATI", "ATZ", "AT&F", "ATV", "AT+CGMI", "AT+CGMM", "AT+CGMR",
             "AT+CGSN", "AT+CIMI", "AT+CNUM", "AT+CPIN", "AT+CFUN", "AT+CSQ", "AT+CREG",
             "AT+CGREG", "AT+CEREG", "AT+COPS", "AT+CMEE", "AT+CSCS", "AT+CMGF", "AT+CSCA",
             "AT+CSMP", "AT+CSMS", "AT+CPMS", "AT+CNMI", "AT+CNMA", "AT+CMGS", "AT+CMGL",
             "AT+CMGR", "AT+CMGD", "AT+CUSD", "AT+CLAC", "AT+GCAP", "AT+CGDCONT")


def setup(sim) -> None:
    """Power-on values of the settings these commands read and write."""
    sim.cscs = "GSM"
    sim.cmgf = 0
    sim.csmp = (17, 167, 0, 0)
    sim.cgdcont = '1,"IP","internet","0.0.0.0",0,0'


def split_chain(line: str) -> list[str]:
    """`AT+COPS=3,2;+COPS?` -> ["AT+COPS=3,2", "AT+COPS?"] (ModemManager chains commands);
    a `;` inside quotes or ending ATD (a voice/USSD dial) is not a separator."""
    if not line.upper().startswith("AT") or line.upper().startswith("ATD"):
        return [line]
    parts, current, quoted = [], "", False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    parts = [p.strip() for p in parts if p.strip()]
    if len(parts) <= 1:
        return [line]
    return [parts[0]] + [p if p.upper().startswith("AT") else "AT" + p for p in parts[1:]]


# -- handlers: (sim, line, match) like modem.py's -------------------------------------------


def _ok(sim, line, match):
    sim._reply([])


def _reset(sim, line, match):
    """ATZ / AT&F: back to the stored profile (echo on, numeric-free verbose errors off)."""
    sim.echo = True
    sim.cmee = 0
    setup(sim)
    sim._reply([])


def _cscs_test(sim, line, match):
    sim._reply(["+CSCS: (" + ",".join(f'"{c}"' for c in CHARSETS) + ")"])


def _cscs_query(sim, line, match):
    sim._reply([f'+CSCS: "{sim.cscs}"'])


def _cscs_set(sim, line, match):
    wanted = match.group(1).strip().strip('"')
    if wanted not in CHARSETS:
        return sim._cme(4)
    sim.cscs = wanted
    sim._reply([])


def _cmgf_test(sim, line, match):
    sim._reply(["+CMGF: (0,1)"])


def _cmgf_query(sim, line, match):
    sim._reply([f"+CMGF: {sim.cmgf}"])


def _cmgf_set(sim, line, match):
    sim.cmgf = int(match.group(1) or 0)
    sim._reply([])


def _text_mode_only_pdu(sim, line, match):
    """In text mode the SMS commands are refused (the simulator speaks PDU)."""
    if sim.cmgf == 1:
        return sim._cms(302)
    return None


def _cpms_query(sim, line, match):
    sizes = ",".join(f'"{name}",{len(sim.memory[name])},{50 if name == "SM" else 255}'
                     for name in sim.cpms)
    sim._reply([f"+CPMS: {sizes}"])


def _csmp_query(sim, line, match):
    sim._reply(["+CSMP: " + ",".join(str(v) for v in sim.csmp)])


def _csmp_set(sim, line, match):
    values = [v.strip() for v in line.split("=", 1)[1].split(",")]
    if all(v.isdigit() for v in values if v):
        current = list(sim.csmp)
        for i, v in enumerate(values[:4]):
            if v:
                current[i] = int(v)
        sim.csmp = tuple(current)
    sim._reply([])


def _imsi(sim, line, match):
    sim._reply(["21670" + sim.number.lstrip("+")[-10:].rjust(10, "0")])


def _cnum(sim, line, match):
    sim._reply([f'+CNUM: "","{sim.number}",{145 if sim.number.startswith("+") else 129}'])


def _gcap(sim, line, match):
    sim._reply(["+GCAP: +CGSM,+FCLASS,+DS"])


def _clac(sim, line, match):
    sim._reply(list(_COMMANDS))


def _cfun_test(sim, line, match):
    sim._reply(["+CFUN: (0,1,4),(0,1)"])


def _reg_test(sim, line, match):
    sim._reply([f"+{match.group(1)}: (0-2)"])


def _cops_test(sim, line, match):
    sim._reply(['+COPS: (2,"SimTel","SimTel","21670",7),,(0-4),(0-2)'])


def _clck(sim, line, match):
    if line.upper().endswith("=?"):
        return sim._reply(['+CLCK: ("SC","AO","OI","OX","AI","IR","AB","AG","AC","FD")'])
    if ",2" in line:
        return sim._reply([f"+CLCK: {1 if sim.pin else 0}"])
    sim._reply([])


def _cmgl_test(sim, line, match):
    sim._reply(["+CMGL: (0-4)"])


def _cmgd_test(sim, line, match):
    indexes = sorted(sim.memory[sim.cpms[0]])
    sim._reply([f"+CMGD: ({','.join(str(i) for i in indexes)}),(0-4)"])


def _cmgs_test(sim, line, match):
    sim._reply([])


def _cusd_query(sim, line, match):
    sim._reply(["+CUSD: 0"])


def _cusd_test(sim, line, match):
    sim._reply(["+CUSD: (0-2)"])


def _cgdcont_query(sim, line, match):
    sim._reply([f"+CGDCONT: {sim.cgdcont}"])


def _cgdcont_test(sim, line, match):
    sim._reply(['+CGDCONT: (1-24),"IP",,,(0-2),(0-4)',
                '+CGDCONT: (1-24),"IPV6",,,(0-2),(0-4)'])


def _cgdcont_set(sim, line, match):
    sim.cgdcont = line.split("=", 1)[1].strip() + ',"0.0.0.0",0,0'
    sim._reply([])


def _cind(sim, line, match):
    if line.upper().endswith("=?"):
        return sim._reply(['+CIND: ("battchg",(0-5)),("signal",(0-5)),("service",(0,1)),'
                           '("roam",(0,1)),("smsfull",(0,1))'])
    sim._reply([f"+CIND: 5,4,{1 if sim._registered() else 0},0,0"])


def _ws46(sim, line, match):
    sim._reply(["+WS46: (12,22,25,28,29,30,31)" if line.upper().endswith("=?") else "+WS46: 12"])


def _cpbs(sim, line, match):
    sim._reply(['+CPBS: ("SM","DC","FD","LD","MC","ME","RC","EN","ON")'
                if line.upper().endswith("=?") else '+CPBS: "SM",0,250'])


def _atd_ussd(sim, line, match):
    """ATD*100#; : a USSD request dialled (seed USSDMETHOD=ATD), answered by +CUSD."""
    code = match.group(1)
    if not sim._registered():
        return sim._cme(30)
    sim._reply([])
    sim.network.schedule(0.2, lambda: sim.post(lambda: sim._ussd_answer(code)))


def _identity(sim, line, match):
    """ATI0/ATI1 (ModemManager, Kannel) as ATI."""
    sim._identity(line, match)


HANDLERS = [
    (r"ATZ0?|AT&F0?", _reset),
    (r"ATI\d", _identity),
    (r"ATV1|ATQ0|AT&C\d?|AT&D\d?|AT&W0?|ATS0=0|ATX\d", _ok),
    (r"AT\+IFC=.*|AT\+ICF=.*|AT\+IPR=.*|AT\+CLIP=.*|AT\+CRC=.*|AT\+CVHU=.*|AT\+COLP=.*"
     r"|AT\+CMER=.*|AT\+CSDH=.*|AT\+CSCB=.*|AT\+COPS=[0-4](?:,\d)?|AT\+CLIR=.*", _ok),
    (r"AT\+CSCS=\?", _cscs_test),
    (r"AT\+CSCS\?", _cscs_query),
    (r"AT\+CSCS=(.+)", _cscs_set),
    (r"AT\+CMGF=\?", _cmgf_test),
    (r"AT\+CMGF\?", _cmgf_query),
    (r"AT\+CMGF=([01])?", _cmgf_set),
    (r"AT\+CPMS\?", _cpms_query),
    (r"AT\+CSMP\?", _csmp_query),
    (r"AT\+CSMP=.*", _csmp_set),
    (r"AT\+CIMI", _imsi),
    (r"AT\+CNUM", _cnum),
    (r"AT\+GCAP", _gcap),
    (r"AT\+CLAC", _clac),
    (r"AT\+CFUN=\?", _cfun_test),
    (r"AT\+(CREG|CGREG|CEREG)=\?", _reg_test),
    (r"AT\+COPS=\?", _cops_test),
    (r"AT\+CLCK=.*", _clck),
    (r"AT\+CMGL=\?", _cmgl_test),
    (r"AT\+CMGD=\?", _cmgd_test),
    (r"AT\+CMGS=\?", _cmgs_test),
    (r"AT\+CUSD\?", _cusd_query),
    (r"AT\+CUSD=\?", _cusd_test),
    (r"AT\+CGDCONT\?", _cgdcont_query),
    (r"AT\+CGDCONT=\?", _cgdcont_test),
    (r"AT\+CGDCONT=.+", _cgdcont_set),
    (r"AT\+CIND=?\??", _cind),
    (r"AT\+WS46=?\??", _ws46),
    (r"AT\+CPBS=?\??", _cpbs),
    (r"ATD(\*[0-9*#]+#);?", _atd_ussd),
]

# Commands that do not exist in text mode here (see the module note).
PDU_ONLY = re.compile(r"AT\+CMG[SLR]=.*")
