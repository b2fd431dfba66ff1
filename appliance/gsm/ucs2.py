"""UCS-2 user data. We send UTF-16 (astral characters as surrogate pairs), as every
current handset reads it, and count in 16-bit code units."""

from __future__ import annotations

from .errors import EncodingError, PduError


def encode_ucs2(text: str) -> bytes:
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise EncodingError(f"text holds a lone surrogate at index {exc.start}") from None


def decode_ucs2(octets: bytes) -> str:
    """Decode big-endian UTF-16. A lone surrogate (a pair another phone split across
    parts) becomes U+FFFD, because text must stay storable as UTF-8."""
    if len(octets) % 2:
        raise PduError(f"UCS-2 user data has an odd number of octets ({len(octets)})")
    return octets.decode("utf-16-be", errors="replace")


def code_units(ch: str) -> int:
    """16-bit code units one character takes: 2 for astral characters (emoji)."""
    return 2 if ord(ch) > 0xFFFF else 1


def unit_count(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
