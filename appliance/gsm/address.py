"""Addresses (TS 23.040 §9.1.2.5): international '+…', national digits, alphanumeric
senders (type of number 5, packed GSM 7-bit), and the SMSC field (TS 24.011)."""

from __future__ import annotations

import re

from .alphabet import pack_septets, septet_cost, to_septets, unpack_septets, from_septets
from .errors import EncodingError, PduError
from .reader import Reader

TOA_INTERNATIONAL = 0x91   # TON 1, numbering plan ISDN/E.164
TOA_UNKNOWN = 0x81         # TON 0: what phones use for numbers without '+'
TOA_ALPHANUMERIC = 0xD0    # TON 5, numbering plan unknown

MAX_DIGITS = 20            # the field holds at most 10 octets of semi-octets
MAX_ALPHANUMERIC_SEPTETS = 11

# Semi-octet values 0xA-0xE carry these (TS 23.040 §9.1.2.3); 0xF is the filler.
_SEMI_OCTET_CHARS = "0123456789*#abc"
# What we send as a number; anything else is an alphanumeric name. (Semi-octets a-c
# exist but are never dialled, and would turn a sender like "cab" into digits.)
_DIGITS_RE = re.compile(r"\+?[0-9*#]+")


def encode_semi_octets(digits: str) -> bytes:
    """'12345' -> 21 43 F5: swapped nibbles, odd counts padded with F."""
    nibbles = [_SEMI_OCTET_CHARS.index(d) for d in digits]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(lo | hi << 4 for lo, hi in zip(nibbles[::2], nibbles[1::2]))


def decode_semi_octets(octets: bytes, count: int | None = None) -> str:
    """Digits of swapped semi-octets; stops at the F filler or after `count` digits."""
    digits: list[str] = []
    for octet in octets:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble == 0xF:
                return "".join(digits)
            digits.append(_SEMI_OCTET_CHARS[nibble])
    return "".join(digits[:count] if count is not None else digits)


def is_numeric(number: str) -> bool:
    return bool(_DIGITS_RE.fullmatch(number))


def encode_address(number: str) -> bytes:
    """TP-DA / TP-OA: length in useful semi-octets, type of address, value."""
    if not number:
        raise EncodingError("address is empty")
    if is_numeric(number):
        return _encode_numeric(number)
    return _encode_alphanumeric(number)


def _encode_numeric(number: str) -> bytes:
    international = number.startswith("+")
    digits = number.lstrip("+")
    if len(digits) > MAX_DIGITS:
        raise EncodingError(f"number {number!r} has {len(digits)} digits, at most {MAX_DIGITS}")
    toa = TOA_INTERNATIONAL if international else TOA_UNKNOWN
    return bytes((len(digits), toa)) + encode_semi_octets(digits)


def _encode_alphanumeric(name: str) -> bytes:
    try:
        cost = septet_cost(name)
    except EncodingError as exc:
        raise EncodingError(f"alphanumeric address {name!r}: {exc}") from None
    if cost > MAX_ALPHANUMERIC_SEPTETS:
        raise EncodingError(f"alphanumeric address {name!r} takes {cost} septets, "
                            f"at most {MAX_ALPHANUMERIC_SEPTETS}")
    packed = pack_septets(to_septets(name))
    semi_octets = (cost * 7 + 3) // 4   # useful semi-octets, as TS 23.040 counts them
    return bytes((semi_octets, TOA_ALPHANUMERIC)) + packed


def read_address(reader: Reader, field: str) -> tuple[str, int]:
    """Read TP-OA/DA/RA; returns (number, type of address). International gets '+'."""
    length = reader.octet(f"{field} length")
    toa = reader.octet(f"{field} type of address")
    if length > MAX_DIGITS:
        raise PduError(f"{field} length {length} semi-octets is beyond the {MAX_DIGITS} allowed")
    value = reader.take((length + 1) // 2, field)
    return _address_text(value, length, toa, field), toa


def _address_text(value: bytes, length: int, toa: int, field: str) -> str:
    ton = (toa >> 4) & 0x07
    if ton == 5:
        return from_septets(unpack_septets(value, length * 4 // 7))
    digits = decode_semi_octets(value, length)
    return "+" + digits if ton == 1 and digits else digits


def encode_smsc(smsc: str | None) -> bytes:
    """The SMSC field before the TPDU: length in octets (with the TOA), or 00 for 'use
    the SIM's SMSC'."""
    if not smsc:
        return b"\x00"
    if not is_numeric(smsc):
        raise EncodingError(f"SMSC address {smsc!r} must be digits, optionally with '+'")
    encoded = _encode_numeric(smsc)
    return bytes((len(encoded) - 1,)) + encoded[1:]


def read_smsc(reader: Reader) -> str | None:
    length = reader.octet("SMSC length")
    if length == 0:
        return None
    if length > 12:
        raise PduError(f"SMSC length {length} octets is beyond the 12 allowed")
    toa = reader.octet("SMSC type of address")
    digits = decode_semi_octets(reader.take(length - 1, "SMSC address"))
    return "+" + digits if (toa >> 4) & 0x07 == 1 and digits else digits
