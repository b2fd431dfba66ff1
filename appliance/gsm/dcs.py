"""TP-DCS (TS 23.038 §4): which alphabet and message class a PDU carries."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EncodingError

ENCODINGS = ("gsm7", "8bit", "ucs2")
_ALPHABET_BITS = {"gsm7": 0x00, "8bit": 0x04, "ucs2": 0x08}


@dataclass(frozen=True)
class Coding:
    encoding: str              # "gsm7" | "8bit" | "ucs2"
    msg_class: int | None
    compressed: bool = False
    reserved: bool = False     # a reserved value or bit was set; the payload may disagree


def build_dcs(encoding: str, msg_class: int | None = None) -> int:
    """General data coding group: 0x00/0x04/0x08, plus 0x10|class when a class is given."""
    if encoding not in _ALPHABET_BITS:
        raise EncodingError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    if msg_class is None:
        return _ALPHABET_BITS[encoding]
    if msg_class not in (0, 1, 2, 3):
        raise EncodingError(f"message class must be 0..3, not {msg_class}")
    return 0x10 | _ALPHABET_BITS[encoding] | msg_class


def parse_dcs(dcs: int) -> Coding:
    group = dcs >> 4
    if group <= 0b0111:
        return _general_group(dcs)
    if group in (0b1100, 0b1101):          # message waiting, discard/store, GSM 7-bit
        return Coding("gsm7", None)
    if group == 0b1110:                    # message waiting, store, UCS-2
        return Coding("ucs2", None)
    if group == 0b1111:
        return Coding("8bit" if dcs & 0x04 else "gsm7", dcs & 0x03, reserved=bool(dcs & 0x08))
    return Coding("gsm7", None, reserved=True)   # 1000..1011: reserved, read as GSM 7-bit


def _general_group(dcs: int) -> Coding:
    """00xx and 01xx (marked for automatic deletion) share one layout."""
    alphabet = (dcs >> 2) & 0x03
    msg_class = dcs & 0x03 if dcs & 0x10 else None
    compressed = bool(dcs & 0x20)
    if alphabet == 0b11:                   # reserved alphabet: TS 23.038 says GSM 7-bit
        return Coding("gsm7", msg_class, compressed, reserved=True)
    return Coding(ENCODINGS[alphabet], msg_class, compressed)
