"""TP-UDL and TP-UD (TS 23.040 §9.2.3.16, §9.2.3.24): the payload with its optional header.

With a header, GSM 7-bit text starts at the next septet boundary: the header is
counted in septets and fill bits pad it, so the UDL stays a septet count.

Data sent under a DCS the caller gives (SMS:BINARY:XML) is laid out as that DCS says, since
the phone reads it so: GSM 7-bit data are septet values, one per octet (as SMPP carries
them), packed here with TP-UDL in septets; UCS-2 data must be whole 16-bit units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .alphabet import from_septets, pack_septets, packed_length, to_septets, unpack_septets
from .dcs import Coding, parse_dcs
from .errors import EncodingError, PduError, TooLongError
from .reader import Reader
from .ucs2 import decode_ucs2, encode_ucs2

MAX_SEPTETS = 160
MAX_OCTETS = 140


def header_septets(header_octets: int) -> int:
    """Septets a header of that many octets (UDHL included) occupies in GSM 7-bit."""
    return (header_octets * 8 + 6) // 7


def _header_block(ies: bytes) -> bytes:
    return bytes((len(ies),)) + ies if ies else b""


def build_user_data(encoding: str, text: str | None, data: bytes, ies: bytes,
                    dcs: int | None = None) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for one part; raises EncodingError when it does not fit (TooLongError
    when only its size is wrong). 8-bit `data` under an explicit `dcs` follow that DCS."""
    block = _header_block(ies)
    if encoding == "gsm7":
        return _build_septets(to_septets(text or ""), block, "gsm7 part")
    if encoding == "8bit" and dcs is not None:
        return _build_data(bytes(data), block, parse_dcs(dcs), dcs)
    payload = encode_ucs2(text or "") if encoding == "ucs2" else bytes(data)
    return _build_octets(payload, block, f"{encoding} part")


def _build_octets(payload: bytes, block: bytes, what: str) -> tuple[int, bytes]:
    if len(block) + len(payload) > MAX_OCTETS:
        raise TooLongError(f"{what} needs {len(block) + len(payload)} octets "
                           f"with its header, at most {MAX_OCTETS} fit one SMS")
    return len(block) + len(payload), block + payload


def _build_septets(septets: list[int], block: bytes, what: str) -> tuple[int, bytes]:
    skip = header_septets(len(block))
    if skip + len(septets) > MAX_SEPTETS:
        raise TooLongError(f"{what} needs {skip + len(septets)} septets with its header, "
                           f"at most {MAX_SEPTETS} fit one SMS")
    fill = skip * 7 - len(block) * 8
    return skip + len(septets), block + pack_septets(septets, fill)


def _build_data(data: bytes, block: bytes, coding: Coding, dcs: int) -> tuple[int, bytes]:
    """Caller's data under its own DCS: a GSM 7-bit DCS counts TP-UDL in septets (TS 23.040
    §9.2.3.16), so sending the octets as they are made the phone read other characters."""
    what = f"data with DCS {dcs:02X}"
    if coding.encoding == "gsm7" and not coding.compressed:
        wide = next((i for i, octet in enumerate(data) if octet > 0x7F), None)
        if wide is not None:
            raise EncodingError(f"{what} (GSM 7-bit) must be septet values 00-7F, one per "
                                f"octet; octet {wide + 1} is {data[wide]:02X}")
        return _build_septets(list(data), block, what)
    if coding.encoding == "ucs2" and len(data) % 2:
        raise EncodingError(f"{what} (UCS-2) must be whole 16-bit characters, an even "
                            f"number of octets, not {len(data)}")
    return _build_octets(data, block, what)


@dataclass(frozen=True)
class UserData:
    header: bytes          # information elements, without the UDHL octet
    encoding: str
    text: str | None
    data: bytes
    truncated: bool = False   # fewer octets arrived than TP-UDL announced
    # The text as it came, undecoded (UCS-2 octets, or GSM septet values one per byte): the
    # parts of a long message are joined before decoding, so a character a phone split
    # across two parts (a surrogate pair, an escape and its character) survives.
    raw: bytes = field(default=b"", compare=False, repr=False)


def read_user_data(reader: Reader, coding: Coding, has_header: bool) -> UserData:
    udl = reader.octet("TP-UDL")
    if has_header and udl == 0:
        raise PduError("TP-UDHI says a user data header follows, but TP-UDL is 0")
    if coding.compressed:                      # TS 23.040: compressed UDL counts octets
        return _read_octets(reader, udl, has_header, "8bit")
    if coding.encoding == "gsm7" and coding.reserved and _ucs2_in_disguise(reader, udl):
        return _read_octets(reader, udl, has_header, "ucs2")
    if coding.encoding == "gsm7":
        return _read_gsm7(reader, udl, has_header)
    return _read_octets(reader, udl, has_header, coding.encoding)


def _take_announced(reader: Reader, wanted: int, field: str) -> bytes:
    """The user data octets; real phones sometimes send fewer than TP-UDL says (gammu's
    test 41), so a short tail is accepted and flagged, but nothing at all is an error."""
    if wanted and not reader.remaining():
        raise PduError(f"{field} is missing: TP-UDL announces data, the PDU ends")
    return reader.take(min(wanted, reader.remaining()), field)


def _split_header(raw: bytes, has_header: bool) -> tuple[bytes, bytes]:
    if not has_header:
        return b"", raw
    udhl = raw[0]
    if udhl + 1 > len(raw):
        raise PduError(f"UDHL {udhl} is longer than the {len(raw) - 1} user data octets")
    return raw[1:udhl + 1], raw[udhl + 1:]


def _read_gsm7(reader: Reader, udl: int, has_header: bool) -> UserData:
    if udl > MAX_SEPTETS:
        raise PduError(f"TP-UDL {udl} exceeds {MAX_SEPTETS} septets")
    raw = _take_announced(reader, packed_length(udl), "GSM 7-bit user data")
    header, body = _split_header(raw, has_header)
    skip = header_septets(len(header) + 1) if has_header else 0
    if skip > udl:
        raise PduError(f"user data header ({skip} septets) is longer than TP-UDL {udl}")
    fill = skip * 7 - (len(header) + 1) * 8 if has_header else 0
    present = (len(body) * 8 - fill) // 7
    count = min(udl - skip, present)
    septets = bytes(unpack_septets(body, count, fill))
    return UserData(header, "gsm7", from_septets(septets), b"", truncated=count < udl - skip,
                    raw=septets)


def _read_octets(reader: Reader, udl: int, has_header: bool, encoding: str) -> UserData:
    if udl > MAX_OCTETS:
        raise PduError(f"TP-UDL {udl} exceeds {MAX_OCTETS} octets for {encoding} data")
    raw = _take_announced(reader, udl, f"{encoding} user data")
    header, payload = _split_header(raw, has_header)
    truncated = len(raw) < udl
    if encoding == "ucs2":
        payload = payload[:len(payload) // 2 * 2] if truncated else payload
        return UserData(header, "ucs2", decode_ucs2(payload), b"", truncated, raw=payload)
    return UserData(header, "8bit", None, payload, truncated)


def _ucs2_in_disguise(reader: Reader, udl: int) -> bool:
    """Some phones set a reserved DCS bit and send UCS-2 (gammu's test 14, DCS F9).
    Read it as UCS-2 only when exactly UDL octets follow and they are clean UTF-16."""
    if reader.remaining() != udl or udl % 2 or packed_length(udl) == udl:
        return False
    payload = reader.octets[reader.pos:]
    try:
        text = payload.decode("utf-16-be")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\r" for ch in text)
