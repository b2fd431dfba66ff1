"""User data headers (TS 23.040 §9.2.3.24): concatenation and application port IEs.

`udh` values in this package are information elements without the UDHL octet, so
callers can append their own IEs after ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EncodingError, PduError

IEI_CONCAT_8 = 0x00
IEI_PORTS_8 = 0x04
IEI_PORTS_16 = 0x05
IEI_CONCAT_16 = 0x08

CONCAT_IE_LENGTH = {8: 5, 16: 6}   # octets one concat IE takes, IEI and length included


def concat_ie(ref: int, total: int, seq: int, ref_bits: int = 8) -> bytes:
    """IE 00 (8-bit reference) or IE 08 (16-bit reference)."""
    if ref_bits not in (8, 16):
        raise EncodingError(f"concatenation reference must be 8 or 16 bits, not {ref_bits}")
    if not 0 <= ref < 1 << ref_bits:
        raise EncodingError(f"concatenation reference {ref} does not fit {ref_bits} bits")
    if not 1 <= seq <= total <= 255:
        raise EncodingError(f"part {seq} of {total} is not a valid concatenation position")
    if ref_bits == 8:
        return bytes((IEI_CONCAT_8, 3, ref, total, seq))
    return bytes((IEI_CONCAT_16, 4, ref >> 8, ref & 0xFF, total, seq))


def port_ie(dest: int, src: int, bits: int = 16) -> bytes:
    """IE 04 (8-bit ports) or IE 05 (16-bit ports, as WDP uses: 2948 <- 9200)."""
    if bits == 8 and 0 <= dest < 256 and 0 <= src < 256:
        return bytes((IEI_PORTS_8, 2, dest, src))
    if bits == 16 and 0 <= dest < 65536 and 0 <= src < 65536:
        return bytes((IEI_PORTS_16, 4)) + dest.to_bytes(2, "big") + src.to_bytes(2, "big")
    raise EncodingError(f"ports {dest}/{src} do not fit {bits}-bit port IEs")


def parse_ies(header: bytes) -> list[tuple[int, bytes]]:
    """Split a header (without UDHL) into (IEI, value) pairs."""
    ies: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(header):
        if pos + 2 > len(header):
            raise PduError(f"user data header ends inside the IE at offset {pos}")
        iei, length = header[pos], header[pos + 1]
        if pos + 2 + length > len(header):
            raise PduError(f"UDH element {iei:02X} claims {length} octets, "
                           f"{len(header) - pos - 2} left in the header")
        ies.append((iei, header[pos + 2:pos + 2 + length]))
        pos += 2 + length
    return ies


@dataclass(frozen=True)
class HeaderInfo:
    concat: tuple[int, int, int, int] | None = None   # (ref, total, seq, ref_bits)
    ports: tuple[int, int] | None = None               # (dest, src)


def interpret(header: bytes) -> HeaderInfo:
    """Concatenation and port information of a header; unknown IEs are kept by callers
    in the raw header. An invalid concat IE is ignored, as TS 23.040 §9.2.3.24.1 says."""
    concat = ports = None
    for iei, value in parse_ies(header):
        if iei in (IEI_CONCAT_8, IEI_CONCAT_16):
            concat = _concat_value(iei, value) or concat
        elif iei in (IEI_PORTS_8, IEI_PORTS_16):
            ports = _ports_value(iei, value) or ports
    return HeaderInfo(concat, ports)


def _concat_value(iei: int, value: bytes) -> tuple[int, int, int, int] | None:
    if iei == IEI_CONCAT_8 and len(value) == 3:
        ref, total, seq, bits = value[0], value[1], value[2], 8
    elif iei == IEI_CONCAT_16 and len(value) == 4:
        ref, total, seq, bits = value[0] << 8 | value[1], value[2], value[3], 16
    else:
        raise PduError(f"concatenation IE {iei:02X} has {len(value)} octets")
    return (ref, total, seq, bits) if 1 <= seq <= total else None


def _ports_value(iei: int, value: bytes) -> tuple[int, int]:
    if iei == IEI_PORTS_8 and len(value) == 2:
        return value[0], value[1]
    if iei == IEI_PORTS_16 and len(value) == 4:
        return int.from_bytes(value[:2], "big"), int.from_bytes(value[2:], "big")
    raise PduError(f"application port IE {iei:02X} has {len(value)} octets")


def strip_concat(header: bytes) -> bytes:
    """The header's IEs other than concatenation (what Pdu.udh keeps for the caller)."""
    return b"".join(bytes((iei, len(value))) + value for iei, value in parse_ies(header)
                    if iei not in (IEI_CONCAT_8, IEI_CONCAT_16))


def build_header(concat: tuple[int, int, int, int] | None, extra: bytes = b"") -> bytes:
    """Header IEs for one part: the concat IE first, then the caller's own IEs."""
    extra = bytes(extra)
    try:
        parse_ies(extra)   # refuse a malformed caller header here, not on the handset
    except PduError as exc:
        raise EncodingError(f"extra UDH: {exc}") from None
    return (concat_ie(*concat) if concat else b"") + extra
