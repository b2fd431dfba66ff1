"""Service centre time stamps (TS 23.040 §9.2.3.11) and validity periods (§9.2.3.12).

An SCTS is seven swapped-BCD octets: year, month, day, hour, minute, second, and the
offset from UTC in quarter hours with its sign in bit 3 of the first digit.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta, timezone

from .errors import EncodingError, PduError

# Two-digit years 70..99 are 19xx (old captures), 00..69 are 20xx.
_CENTURY_PIVOT = 70


def _bcd(value: int) -> int:
    """Two decimal digits as one swapped semi-octet pair: 29 -> 0x92."""
    return (value % 10) << 4 | value // 10


def bcd_value(octet: int, field: str) -> int:
    low, high = octet & 0x0F, octet >> 4
    if low > 9 or high > 9:
        raise PduError(f"{field} octet {octet:02X} is not two decimal digits")
    return low * 10 + high


def encode_scts(moment: datetime) -> bytes:
    """Seven octets for an aware datetime, in its own local time and offset."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EncodingError("time stamps must be timezone-aware datetimes")
    quarters = round(moment.utcoffset().total_seconds() / 900)
    if abs(quarters) > 79:
        raise EncodingError(f"UTC offset of {moment.utcoffset()} does not fit a time stamp")
    local = moment.astimezone(timezone(timedelta(minutes=15 * quarters)))
    fields = (local.year % 100, local.month, local.day, local.hour, local.minute, local.second)
    return bytes(_bcd(v) for v in fields) + bytes((_encode_offset(quarters),))


def _encode_offset(quarters: int) -> int:
    octet = _bcd(abs(quarters))
    return octet | 0x08 if quarters < 0 else octet


def decode_scts(octets: bytes, field: str = "SCTS") -> datetime:
    """An aware datetime from seven octets; impossible dates raise PduError."""
    year, month, day, hour, minute, second = (bcd_value(o, field) for o in octets[:6])
    offset = _decode_offset(octets[6], field)
    year += 1900 if year >= _CENTURY_PIVOT else 2000
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=offset)
    except ValueError as exc:
        raise PduError(f"{field} {octets.hex().upper()} is not a valid time: {exc}") from None


def _decode_offset(octet: int, field: str) -> timezone:
    negative = bool(octet & 0x08)
    quarters = bcd_value(octet & 0xF7, f"{field} time zone")
    return timezone(timedelta(minutes=15 * (-quarters if negative else quarters)))


# Relative validity: the four ranges of TS 23.040 §9.2.3.12.1.
def relative_seconds(vp: int) -> int:
    """Duration that the one-octet relative validity value `vp` stands for."""
    if vp <= 143:
        return (vp + 1) * 300
    if vp <= 167:
        return 12 * 3600 + (vp - 143) * 1800
    if vp <= 196:
        return (vp - 166) * 86400
    return (vp - 192) * 7 * 86400


def encode_relative(seconds: float) -> int:
    """The smallest VP lasting at least `seconds` (5 minutes to 63 weeks, clamped)."""
    if seconds < 0:
        raise EncodingError(f"validity of {seconds} seconds is negative")
    return min(bisect_left(_RELATIVE_SECONDS, seconds), 255)


_RELATIVE_SECONDS = [relative_seconds(vp) for vp in range(256)]  # ascending


def encode_validity(validity: float | timedelta | datetime | None) -> tuple[int, bytes]:
    """(TP-VPF, TP-VP): none, relative (a duration in seconds) or absolute (a datetime)."""
    if validity is None:
        return 0b00, b""
    if isinstance(validity, datetime):
        return 0b11, encode_scts(validity)
    if isinstance(validity, timedelta):
        validity = validity.total_seconds()
    if isinstance(validity, bool) or not isinstance(validity, (int, float)):
        raise EncodingError(f"validity must be seconds, a timedelta or a datetime, "
                            f"not {validity!r}")
    return 0b10, bytes((encode_relative(validity),))
