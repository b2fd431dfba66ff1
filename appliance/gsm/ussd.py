"""USSD payloads (TS 23.038 §5, the CBS data coding scheme that USSD reuses).

Modems answer +CUSD in three forms: plain text (already decoded in the AT character
set), UCS-2 as hex, or packed GSM 7-bit as hex (Huawei and others). `decode_ussd` tells
them apart from the DCS and the payload. Huawei also wants requests packed:
encode_ussd("*144#") == "AA188D3602".
"""

from __future__ import annotations

import binascii
import re
import string

from .alphabet import (EXTENSION_CHARACTERS, GSM_CHARACTERS, from_septets, is_gsm7,
                       pack_septets, to_septets, unpack_septets)
from .errors import PduError

_HEX = frozenset(string.hexdigits)
# A "packed" reading that yields Greek capitals or control characters means the payload
# was plain text that merely looked like hex.
_PLAUSIBLE = frozenset(GSM_CHARACTERS + EXTENSION_CHARACTERS) - frozenset("ΔΦΓΛΩΠΨΣΘΞ\f")


def _alphabet(dcs: int | None) -> tuple[str, int]:
    """(alphabet, octets of language prefix to skip) for a CBS DCS."""
    if dcs is None:
        return "gsm7", 0
    group = dcs >> 4
    if group in (0b0000, 0b0010, 0b0011):    # language groups, GSM 7-bit
        return "gsm7", 0
    if dcs == 0x10:                           # GSM 7-bit preceded by a language, e.g. "EN\r"
        return "gsm7-language", 0
    if dcs == 0x11:                           # UCS-2 preceded by two packed language chars
        return "ucs2", 2
    if 0b0100 <= group <= 0b0111 or group == 0b1001:   # general data coding
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03], 0
    if group == 0b1111:
        return ("8bit" if dcs & 0x04 else "gsm7"), 0
    return "gsm7", 0


def decode_ussd(payload: str, dcs: int | None = 0x0F) -> str:
    """Readable text of a +CUSD payload, whichever of the three forms the modem used."""
    if not isinstance(payload, str):
        raise PduError(f"USSD payload must be a string, not {type(payload).__name__}")
    alphabet, skip = _alphabet(dcs)
    if alphabet == "ucs2":
        return _ucs2_hex(payload, skip) if _is_hex(payload, 4, skip) else payload
    if alphabet == "8bit":
        return _octets_hex(payload) if _is_hex(payload, 2) else payload
    text = _gsm7(payload)
    if alphabet == "gsm7-language" and text[2:3] == "\r":
        return text[3:]
    return text


def _is_hex(payload: str, multiple: int, skip: int = 0) -> bool:
    body = len(payload) - 2 * skip
    return bool(payload) and body % multiple == 0 and body >= 0 and set(payload) <= _HEX


def _ucs2_hex(payload: str, skip: int) -> str:
    return binascii.unhexlify(payload)[skip:].decode("utf-16-be", errors="replace")


def _octets_hex(payload: str) -> str:
    return binascii.unhexlify(payload).decode("latin-1")


def _gsm7(payload: str) -> str:
    """Packed hex if it unpacks to plausible text, else UCS-2 hex (modems set to
    AT+CSCS="UCS2" re-encode the GSM text, so it must still be GSM characters), else the
    payload as the modem gave it."""
    if not _is_hex(payload, 2):
        return payload
    unpacked = _unpack_hex(payload)
    if all(ch in _PLAUSIBLE for ch in unpacked):
        return unpacked
    if len(payload) % 4 == 0:
        as_ucs2 = _ucs2_hex(payload, 0)
        if is_gsm7(as_ucs2) and "\x1b" not in as_ucs2:
            return as_ucs2
    return payload


def _unpack_hex(payload: str) -> str:
    octets = binascii.unhexlify(payload)
    text = from_septets(unpack_septets(octets, len(octets) * 8 // 7))
    # TS 23.038 §6.1.2.3.1: a final CR fills 7 spare bits; an unused last septet reads '@'.
    if len(octets) % 7 == 0 and text.endswith(("\r", "@")):
        return text[:-1]
    return text


# TS 22.030 §6.5: a USSD request is a service code framed by * or # and ended by #, made of
# digits, *, # and + only (*100#, *101*1#, #123#). Anything else is refused before it reaches
# the modem: the code goes inside an AT command (`AT+CUSD=1,"<code>"` or `ATD<code>;`), so a
# quote or a CR would let it run other commands (AT+CFUN=0 turned a radio off in a test),
# and with the ATD method a bare number would dial a voice call.
USSD_CODE = re.compile(r"[*#][0-9*#+]{0,38}#")


def ussd_code_problem(code: str) -> str:
    """Why `code` is not a USSD request we send, or "" when it is one."""
    if USSD_CODE.fullmatch(code or ""):
        return ""
    return (f"not a USSD code: {(code or '')[:40]!r} (expected digits, * and # only, starting with * or #"
            " and ending with #, at most 40 characters, e.g. *100#)")


def encode_ussd(request: str) -> str:
    """A USSD string packed as GSM 7-bit hex, as Huawei modems want it in AT+CUSD."""
    septets = to_septets(request)
    if len(septets) % 8 == 7:          # 7 spare bits would read as '@': pad with CR
        septets.append(0x0D)
    return pack_septets(septets).hex().upper()
