"""Checks for the one-octet parameters callers pass in (PID, DCS, TP-MR, status)."""

from .errors import EncodingError


def check_octet(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise EncodingError(f"{name} must be an integer 0..255, not {value!r}")
    return value
