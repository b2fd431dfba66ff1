"""A cursor over PDU octets whose reads fail with PduError naming the field, never IndexError."""

from __future__ import annotations

import binascii

from .errors import PduError


def octets_from_hex(pdu_hex: str) -> bytes:
    """Octets of a hex PDU; whitespace is ignored and either case accepted."""
    if not isinstance(pdu_hex, str):
        raise PduError(f"PDU must be a hex string, not {type(pdu_hex).__name__}")
    compact = "".join(pdu_hex.split())
    if len(compact) % 2:
        raise PduError(f"PDU hex has an odd number of digits ({len(compact)})")
    try:
        return binascii.unhexlify(compact)
    except (binascii.Error, ValueError):
        raise PduError("PDU holds characters that are not hex digits") from None


class Reader:
    def __init__(self, octets: bytes):
        self.octets = octets
        self.pos = 0

    def remaining(self) -> int:
        return len(self.octets) - self.pos

    def octet(self, field: str) -> int:
        return self.take(1, field)[0]

    def take(self, count: int, field: str) -> bytes:
        if count > self.remaining():
            raise PduError(f"PDU ends inside {field}: needs {count} octets at offset "
                           f"{self.pos}, {self.remaining()} left")
        chunk = self.octets[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def rest(self) -> bytes:
        chunk = self.octets[self.pos:]
        self.pos = len(self.octets)
        return chunk
