"""Pure parsing of modem answers: capabilities, registration, signal, identity, USSD, URCs.

No I/O here, so every branch is tested with the exact text real modems print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGISTRATION_TEXT = {0: "not registered", 1: "home", 2: "searching", 3: "denied",
                     4: "unknown", 5: "roaming", 6: "home (sms only)", 7: "roaming (sms only)",
                     8: "emergency only", 9: "home (csfb not preferred)",
                     10: "roaming (csfb not preferred)"}
REGISTERED = {1, 5, 6, 7, 9, 10}


@dataclass(frozen=True)
class CnmiChoice:
    mode: int
    mt: int
    bm: int
    ds: int
    bfr: int

    def command(self) -> str:
        return f"AT+CNMI={self.mode},{self.mt},{self.bm},{self.ds},{self.bfr}"


def parse_value_sets(text: str) -> list[set]:
    """`+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)` -> [{0,1,2},{0,1,2,3},{0,2},...].

    Works for quoted lists too: `+CPMS: ("SM","ME","SR"),("SM","ME")` -> [{"SM","ME","SR"},..].
    """
    body = text.split(":", 1)[1] if ":" in text else text
    return [_parse_group(group) for group in re.findall(r"\(([^)]*)\)", body)]


def _parse_group(group: str) -> set:
    values: set = set()
    for item in (part.strip() for part in group.split(",")):
        if not item:
            continue
        if item.startswith('"'):
            values.add(item.strip('"'))
        elif "-" in item:
            low, high = item.split("-", 1)
            values.update(range(int(low), int(high) + 1))
        elif item.isdigit():
            values.add(int(item))
    return values


def choose_cnmi(supported: list[set], want_reports: bool = True) -> CnmiChoice:
    """Store new SMS and announce them (+CMTI); reports direct (+CDS) when allowed.

    mt=1 lets us commit a message before deleting it from the SIM; +CMT (mt=2) only when
    the modem cannot store. ds=1 avoids the Quectel `+CDSI: "SM"` mix-up; ds=2 (reports
    in SR memory) is the fallback. Unknown capability lists fall back to 2,1,0,1,0.
    """
    def pick(index: int, preferences: tuple[int, ...], default: int) -> int:
        allowed = supported[index] if index < len(supported) and supported[index] else None
        for value in preferences:
            if allowed is None or value in allowed:
                return value
        return default

    ds_preferences = (1, 2, 0) if want_reports else (0,)
    return CnmiChoice(mode=pick(0, (2, 1, 3), 2), mt=pick(1, (1, 2, 3), 1), bm=pick(2, (0,), 0),
                      ds=pick(3, ds_preferences, 0), bfr=pick(4, (0,), 0))


def choose_storage(supported: list[set]) -> str:
    """The memory for reading and receiving: SIM first (every modem has it), then ME."""
    receive = supported[2] if len(supported) > 2 else set()
    for memory in ("SM", "ME", "MT"):
        if not receive or memory in receive:
            return memory
    return sorted(receive)[0]


def supports_sr_memory(supported: list[set]) -> bool:
    return bool(supported) and "SR" in supported[0]


def parse_registration(lines: list[str], prefix: str) -> int | None:
    """`+CREG: 0,1` or `+CREG: 2,1,"00C3","0000A1B2",7` -> 1. None when absent."""
    for line in lines:
        if line.startswith(prefix + ":"):
            fields = [field.strip() for field in line.split(":", 1)[1].split(",")]
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
            if len(fields) == 1 and fields[0].isdigit():
                return int(fields[0])
    return None


def first_number(lines: list[str], prefix: str) -> int | None:
    """`+CSQ: 21,99` with prefix `+CSQ` -> 21: the first value of an answer line."""
    for line in lines:
        match = re.match(re.escape(prefix) + r":\s*(\d+)", line)
        if match:
            return int(match.group(1))
    return None


def parse_csq(lines: list[str]) -> int | None:
    return first_number(lines, "+CSQ")


def csq_to_dbm(rssi: int | None) -> int | None:
    """27.007: 0 -> -113 dBm, 31 -> -51 dBm or better, 99 unknown."""
    if rssi is None or rssi == 99 or not 0 <= rssi <= 31:
        return None
    return -113 + 2 * rssi


def parse_operator(lines: list[str]) -> str:
    for line in lines:
        match = re.match(r'\+COPS:\s*\d+\s*,\s*\d+\s*,\s*"([^"]*)"', line)
        if match:
            return match.group(1)
    return ""


def parse_imei(lines: list[str]) -> str:
    for line in lines:
        match = re.search(r"\b(\d{14,17})\b", line)
        if match:
            return match.group(1)
    return ""


def parse_iccid(lines: list[str]) -> str:
    """`+CCID: "8936..."`, `+QCCID: 8936...F`, `^ICCID: 9863...` -> `8936...`.

    ICCIDs start with 89 (telecom); Huawei's ^ICCID prints EF_ICCID raw, nibbles swapped
    (`98...`), so a 98-prefixed value is swapped back. Trailing F padding is dropped."""
    for line in lines:
        match = re.search(r"([0-9A-Fa-f]{18,22})", line.split(":", 1)[-1])
        if not match:
            continue
        value = match.group(1).upper()
        if value.startswith("98") and len(value) % 2 == 0:
            value = "".join(value[i + 1] + value[i] for i in range(0, len(value), 2))
        return value.rstrip("F")
    return ""


def parse_csms(lines: list[str]) -> int | None:
    """`+CSMS: 1,1,1,1` -> 1: message service 1 (phase 2+) wants +CNMA for +CMT/+CDS."""
    return first_number(lines, "+CSMS")


def parse_cfun(lines: list[str]) -> int | None:
    """`+CFUN: 1` -> 1 (full functionality); None when the modem did not say."""
    return first_number(lines, "+CFUN")


def parse_pin_state(lines: list[str]) -> str:
    for line in lines:
        if line.startswith("+CPIN:"):
            return line.split(":", 1)[1].strip()
    return ""


def parse_smsc(lines: list[str]) -> str:
    for line in lines:
        match = re.match(r'\+CSCA:\s*"([^"]*)"', line)
        if match:
            return match.group(1)
    return ""


@dataclass(frozen=True)
class UssdReply:
    status: int          # 0 done, 1 further action, 2 terminated, 4 unsupported, 5 timeout
    payload: str
    dcs: int


def parse_cusd(line: str) -> UssdReply | None:
    match = re.match(r'\+CUSD:\s*(\d+)\s*(?:,\s*"(.*)"\s*(?:,\s*(\d+))?)?\s*$', line, re.DOTALL)
    if not match:
        return None
    return UssdReply(int(match.group(1)), match.group(2) or "", int(match.group(3) or 15))


@dataclass(frozen=True)
class StoredIndex:
    memory: str
    index: int


def parse_index_urc(line: str) -> StoredIndex | None:
    """`+CMTI: "SM",3` or `+CDSI: "SR",0` -> StoredIndex."""
    match = re.match(r'\+CDSI:|\+CMTI:', line)
    if not match:
        return None
    fields = [field.strip().strip('"') for field in line.split(":", 1)[1].split(",")]
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return StoredIndex(fields[0], int(fields[1]))


def parse_listing(lines: list[str]) -> list[tuple[int, str]]:
    """AT+CMGL=4 answer -> [(index, pdu_hex)]: each `+CMGL: i,stat,,len` line then its PDU."""
    found = []
    for header, body in zip(lines, lines[1:]):
        match = re.match(r"\+CMGL:\s*(\d+)\s*,", header)
        if match and _looks_hex(body):
            found.append((int(match.group(1)), body))
    return found


def parse_read(lines: list[str]) -> str | None:
    """AT+CMGR=i answer -> the PDU line, or None for an empty slot."""
    for header, body in zip(lines, lines[1:]):
        if header.startswith("+CMGR:") and _looks_hex(body):
            return body
    return None


def parse_cmgs(lines: list[str]) -> int | None:
    for line in lines:
        match = re.match(r"\+CMGS:\s*(\d+)", line)
        if match:
            return int(match.group(1))
    return None


def _looks_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", text) is not None


def parse_amount(text: str) -> float | None:
    """An amount as operators write it: "12.50", "12,50", "1,234.50", "1.234,50",
    "1 234,50", "1,234" (a lone separator before three digits groups thousands). None when
    it is not one."""
    digits = text.strip().replace(" ", "").replace("\u00a0", "").strip(".,")
    if not digits or not re.fullmatch(r"[\d.,]+", digits):
        return None
    last = max(digits.rfind("."), digits.rfind(","))
    separators = [c for c in digits if c in ".,"]
    if last < 0:
        return float(digits)
    decimal = digits[last]
    if len(set(separators)) == 1 and (len(separators) > 1 or len(digits) - last - 1 == 3):
        decimal = ""                # "1,234,567" or "1,234": thousands only
    whole, frac = (digits[:last], digits[last + 1:]) if decimal else (digits, "")
    whole = whole.replace(".", "").replace(",", "")
    try:
        return float(f"{whole}.{frac}" if frac else whole)
    except ValueError:
        return None
