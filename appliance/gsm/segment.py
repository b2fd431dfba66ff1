"""Splitting a message into SMS parts the way the network bills them.

GSM 7-bit: 160 septets alone, 153 per part with an 8-bit concat reference (152 with a
16-bit one); an extension character costs two septets and is never split from its
escape. UCS-2: 70 code units alone, 67 (66) per part; a surrogate pair stays together.
Every part text fits `encode_part` exactly, so the store can split at accept time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .alphabet import CHAR_COST, GSM_CHARACTERS, is_gsm7, septet_cost
from .errors import EncodingError
from .udh import CONCAT_IE_LENGTH
from .ucs2 import code_units, unit_count
from .userdata import MAX_OCTETS, MAX_SEPTETS, header_septets


@dataclass(frozen=True)
class Segmentation:
    encoding: str            # "gsm7" | "ucs2"
    parts: list[str]
    chars: int               # user characters (code points)
    units_used: int          # septets or UCS-2 code units, all parts together
    left_in_last_part: int   # units still free in the last part

    @property
    def count(self) -> int:
        return len(self.parts)


def choose_encoding(text: str, encoding: str | None = None) -> str:
    """GSM 7-bit when every character fits (extension included), else UCS-2."""
    if encoding is None:
        return "gsm7" if is_gsm7(text) else "ucs2"
    if encoding == "gsm7":
        septet_cost(text)   # raises EncodingError naming the characters that do not fit
        return encoding
    if encoding == "ucs2":
        return encoding
    raise EncodingError(f"text encoding must be 'gsm7' or 'ucs2', not {encoding!r}")


def part_limits(encoding: str, concat_16bit: bool = False) -> tuple[int, int]:
    """(units in a lone SMS, units per part of a concatenated one)."""
    header = 1 + CONCAT_IE_LENGTH[16 if concat_16bit else 8]
    if encoding == "gsm7":
        return MAX_SEPTETS, MAX_SEPTETS - header_septets(header)
    return MAX_OCTETS // 2, (MAX_OCTETS - header) // 2


# Any ASCII character that is not one septet of the default table: a control character, `
# or an extension character such as [ or ^ (two septets). ASCII text without one is GSM-7.
_NOT_PLAIN_ASCII = re.compile("[^%s]" % re.escape(
    "".join(ch for ch in GSM_CHARACTERS if ch.isascii())))

# part_limits of both alphabets, worked out once: segments runs for every accepted text
_PART_LIMITS = {(encoding, concat_16bit): part_limits(encoding, concat_16bit)
                for encoding in ("gsm7", "ucs2") for concat_16bit in (False, True)}


def segments(text: str, *, encoding: str | None = None, concat_16bit: bool = False) -> Segmentation:
    encoding, parts, total, left = split_text(text, encoding, bool(concat_16bit))
    return Segmentation(encoding, parts, len(text), total, left)


def split_text(text: str, encoding: str | None = None,
               concat_16bit: bool = False) -> tuple[str, list[str], int, int]:
    """`segments` as a tuple: (encoding, parts, units in all parts, units left in the last
    part). compose takes it so, for every text it accepts, without a Segmentation."""
    if encoding in (None, "gsm7") and text.isascii() and not _NOT_PLAIN_ASCII.search(text):
        encoding, total = "gsm7", len(text)     # the usual text: a septet per character
    else:
        encoding = choose_encoding(text, encoding)
        total = septet_cost(text) if encoding == "gsm7" else unit_count(text)
    single, per_part = _PART_LIMITS[encoding, concat_16bit]
    if total <= single:
        return encoding, [text], total, single - total
    parts, used_in_last = _split(text, per_part, CHAR_COST.__getitem__ if encoding == "gsm7"
                                 else code_units)
    return encoding, parts, total, per_part - used_in_last


def fit(text: str, septets: int, suffix: str = "") -> str:
    """`text` + `suffix`, the text cut short when needed, in no more characters than `septets`
    and in no more SMS parts than `septets` GSM-7 septets take (459: three parts).

    The cut keeps GSM-7 where it can: a text whose kept start is GSM-7 ends in "..." (an
    ellipsis character is not in GSM 03.38, so "…" would turn three GSM-7 parts into seven
    UCS-2 ones); a text that needs UCS-2 within the kept start gets the UCS-2 room of those
    parts (three: 201 characters) and ends in "…". Extension characters count two septets,
    astral characters (emoji) two UCS-2 units, and neither is split across two parts. A
    suffix that leaves the text no room is dropped."""
    fitted = _fit(text, septets, suffix)
    return fitted if fitted is not None else _fit(text, septets, "")


def _fit(text: str, septets: int, suffix: str) -> str | None:
    """fit(), or None when `suffix` leaves the text no room."""
    whole = text + suffix
    if is_gsm7(whole) and septet_cost(whole) <= septets:
        return _within(text, len(text), "", suffix, septets)
    if is_gsm7(suffix):
        kept = _fitting(text, septets - septet_cost("..." + suffix), CHAR_COST.get)
        if kept < len(text) and text[kept] in CHAR_COST:    # cut by the room, not the alphabet
            return _cut(text, suffix, septets, "...", septets, CHAR_COST.get)
    single, per_part = part_limits("ucs2")
    parts = _parts_for(septets)
    limit = min(septets, single if parts == 1 else per_part * parts)
    if unit_count(whole) <= limit:
        return _within(text, len(text), "", suffix, septets)
    return _cut(text, suffix, septets, "\u2026", limit, code_units)


def _cut(text: str, suffix: str, septets: int, mark: str, limit: int, cost) -> str | None:
    """The longest start of `text` + mark + suffix within `limit` units of `cost`; without
    room for the mark (a budget of a few characters) the text is cut bare."""
    room = limit - sum(map(cost, mark + suffix))
    if room <= 0:
        return None if suffix else text[:_fitting(text, limit, cost)]
    return _within(text, _fitting(text, room, cost), mark, suffix, septets)


def _parts_for(septets: int) -> int:
    return 1 if septets <= MAX_SEPTETS else -(-septets // part_limits("gsm7")[1])


def _fitting(text: str, room: int, cost) -> int:
    """How many leading characters of `text` fit in `room` units (none when `room` < 0); a
    character `cost` has no price for (None: not in the alphabet) ends the run."""
    used = 0
    for index, ch in enumerate(text):
        units = cost(ch)
        if units is None or used + units > room:
            return index
        used += units
    return len(text)


def _within(text: str, kept: int, mark: str, suffix: str, septets: int) -> str | None:
    """The first `kept` characters + mark + suffix, one character less at a time while the
    parts' boundaries need a part more (an ESC pair or a surrogate pair is never split);
    None when only dropping the suffix would do."""
    parts = _parts_for(septets)
    while True:
        candidate = (text[:kept].rstrip() + mark if mark else text[:kept]) + suffix
        if segments(candidate).count <= parts:
            return candidate
        if not mark:                   # whole, yet over the parts: cut like any other
            mark = "..." if is_gsm7(candidate) else "\u2026"
        elif kept == 0:                # the suffix alone is too long
            return None
        else:
            kept -= 1


def _split(text: str, limit: int, cost) -> tuple[list[str], int]:
    """Greedy split at character boundaries; returns the parts and units in the last."""
    parts: list[str] = []
    start, used = 0, 0
    for index, ch in enumerate(text):
        units = cost(ch)
        if used + units > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += units
    parts.append(text[start:])
    return parts, used


def split_binary(data: bytes, header_octets: int, concat_16bit: bool = False) -> list[bytes]:
    """Octet chunks for binary messages whose parts each carry `header_octets` of IEs."""
    single = MAX_OCTETS - (1 + header_octets if header_octets else 0)
    if len(data) <= single:
        return [bytes(data)]
    per_part = MAX_OCTETS - 1 - header_octets - CONCAT_IE_LENGTH[16 if concat_16bit else 8]
    if per_part <= 0:
        raise EncodingError(f"a {header_octets}-octet header leaves no room for data")
    return [bytes(data[i:i + per_part]) for i in range(0, len(data), per_part)]
