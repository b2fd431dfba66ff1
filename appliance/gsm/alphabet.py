"""GSM 03.38 / TS 23.038 default alphabet and its extension table, and septet packing.

Text is turned into septets (ints 0..127); an extension character becomes two septets,
ESC (0x1B) followed by its code, so it costs two units of the 160-septet budget.
"""

from __future__ import annotations

import re

from .errors import EncodingError, PduError

ESC = 0x1B

# TS 23.038 §6.2.1, indexed by septet value. 0x1B is the escape to the extension table.
DEFAULT_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1: the extension characters every handset knows.
EXTENSION_TABLE = {
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}

_DEFAULT_CODE = {ch: code for code, ch in enumerate(DEFAULT_TABLE) if code != ESC}
_EXTENSION_CODE = {ch: code for code, ch in EXTENSION_TABLE.items()}

# Septets per character, for segment arithmetic.
CHAR_COST = {**{ch: 1 for ch in _DEFAULT_CODE}, **{ch: 2 for ch in _EXTENSION_CODE}}

GSM_CHARACTERS = "".join(_DEFAULT_CODE)
EXTENSION_CHARACTERS = "".join(_EXTENSION_CODE)

# The same tables as character classes: one C-level scan per message instead of a Python
# step per character (every accepted text is checked and costed once).
_GSM7_TEXT = re.compile("[%s]*" % re.escape(GSM_CHARACTERS + EXTENSION_CHARACTERS))
_EXTENSION_CHAR = re.compile("[%s]" % re.escape(EXTENSION_CHARACTERS))


# Typographic punctuation that word processors, mail clients and templates put in machine
# texts, and the GSM 03.38 character that means the same. One of them in an alert would
# make the whole SMS UCS-2 (70 characters a part instead of 160). Letters are never
# replaced: `ő` stays `ő` (and UCS-2), only punctuation and invisible spacing change.
_PLAIN_PUNCTUATION = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u2022": "*", "\u00b7": "*",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None, "\ufeff": None,
})


def plain_punctuation(text: str) -> str:
    """`text` with typographic quotes, dashes, ellipses, bullets and special spaces as their
    GSM 03.38 equivalents (for texts the appliance composes: mail, webhooks, rules)."""
    return text.translate(_PLAIN_PUNCTUATION)


def is_gsm7(text: str) -> bool:
    """True when every character is in the default or the extension table."""
    return _GSM7_TEXT.fullmatch(text) is not None


def septet_cost(text: str) -> int:
    """Septets `text` needs; raises EncodingError for characters outside GSM 7-bit."""
    if _GSM7_TEXT.fullmatch(text) is None:
        raise _not_encodable(text)
    return len(text) + len(_EXTENSION_CHAR.findall(text))     # extension characters: 2


def to_septets(text: str) -> list[int]:
    """Septet values for `text`, extension characters as ESC + code."""
    septets: list[int] = []
    for ch in text:
        code = _DEFAULT_CODE.get(ch)
        if code is not None:
            septets.append(code)
        elif ch in _EXTENSION_CODE:
            septets += (ESC, _EXTENSION_CODE[ch])
        else:
            raise _not_encodable(text)
    return septets


def from_septets(septets: list[int] | bytes) -> str:
    """Text for septet values; a trailing lone ESC is dropped."""
    chars: list[str] = []
    escaped = False
    for code in septets:
        if escaped:
            chars.append(_escaped_char(code))
            escaped = False
        elif code == ESC:
            escaped = True
        else:
            chars.append(DEFAULT_TABLE[code])
    return "".join(chars)


def _escaped_char(code: int) -> str:
    """TS 23.038 §6.2.1.1: an escape the handset does not know shows the default-table
    character; ESC ESC (reserved for another extension table) shows a space."""
    if code == ESC:
        return " "
    return EXTENSION_TABLE.get(code, DEFAULT_TABLE[code])


def _not_encodable(text: str) -> EncodingError:
    bad = sorted({ch for ch in text if ch not in CHAR_COST})
    shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad[:5])
    return EncodingError(f"not in the GSM 7-bit alphabet: {shown}")


def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB first; `fill_bits` zero bits come first (to align after a UDH)."""
    packed = bytearray()
    acc, nbits = 0, fill_bits
    for septet in septets:
        acc |= septet << nbits
        nbits += 7
        while nbits >= 8:
            packed.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        packed.append(acc & 0xFF)
    return bytes(packed)


def packed_length(septet_count: int, fill_bits: int = 0) -> int:
    """Octets that `septet_count` packed septets occupy."""
    return (septet_count * 7 + fill_bits + 7) // 8


def unpack_septets(octets: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """The first `count` septets of `octets`, after skipping `fill_bits` bits."""
    if packed_length(count, fill_bits) > len(octets):
        raise PduError(f"{count} septets need {packed_length(count, fill_bits)} octets, "
                       f"only {len(octets)} present")
    bits = int.from_bytes(octets, "little") >> fill_bits
    return [(bits >> (7 * i)) & 0x7F for i in range(count)]
