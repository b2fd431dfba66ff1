"""Delivery receipts: the `id:... stat:...` text, the receipt TLVs, and message ids.

SMSCs disagree about the form of one message id: the submit_sm_resp may say `0A3F` and the
receipt `a3f`, `00000A3F` or the decimal `2623` (Jasmin's DLRMapNotFound, field-notes §2
point 7). `normalise_id` maps all of these to one string, and is applied both to the
submit_sm_resp id and to the receipt id, so the journal matches them as equal strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.model import ReportStatus

ESM_RECEIPT_MASK = 0x3C          # esm_class bits 5..2: message type
ESM_SMSC_RECEIPT = 0x04
ESM_INTERMEDIATE = 0x20

_STAT = {
    "DELIVRD": ReportStatus.DELIVERED,
    "EXPIRED": ReportStatus.EXPIRED,
    "DELETED": ReportStatus.FAILED,
    "UNDELIV": ReportStatus.FAILED,
    "REJECTD": ReportStatus.FAILED,
    "UNKNOWN": ReportStatus.FAILED,
    "ACCEPTD": ReportStatus.PENDING,
    "ENROUTE": ReportStatus.PENDING,
}

# message_state TLV (SMPP 3.4 §5.2.28)
_MESSAGE_STATE = {
    1: ReportStatus.PENDING,     # ENROUTE
    2: ReportStatus.DELIVERED,
    3: ReportStatus.EXPIRED,
    4: ReportStatus.FAILED,      # DELETED
    5: ReportStatus.FAILED,      # UNDELIVERABLE
    6: ReportStatus.PENDING,     # ACCEPTED
    7: ReportStatus.FAILED,      # UNKNOWN
    8: ReportStatus.FAILED,      # REJECTED
}

# a key starts a word ("paid:" holds no id); `text:` is the last field and all of the rest
_FIELD = re.compile(r"(?<![a-z])(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*",
                    re.I)
_HEX = re.compile(r"[0-9a-f]+")
_HEX_LETTER = re.compile(r"[a-f]")


ID_BASES = ("auto", "hex", "decimal", "hex-decimal", "decimal-hex")


def normalise_id(raw, base: str = "auto") -> str:
    """One canonical form for an SMSC message id.

    Case and surrounding NULs/spaces are dropped. `base` says how the SMSC writes ids:
    "hex" or "decimal" read every numeric id in that base and write it in decimal; "auto"
    reads an id of hex digits with at least one letter as hex and a digits-only id as
    decimal, so `0A3`, `0a3`, `000a3` and `163` are all `163`. Ids that are not numbers
    (UUIDs) are only lower-cased. An SMSC that answers `00000100` (hex) and reports `256`
    (decimal) is "hex-decimal" (`id_bases`); in "auto" the journal tries `other_readings`
    when a receipt matches nothing (store/receipt_match.py), and the connection learns the
    convention.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    text = (raw or "").strip().strip("\x00").strip().lower()
    if not text or not _HEX.fullmatch(text) or len(text) > 32:
        return text
    if base == "hex" or (base == "auto" and _HEX_LETTER.search(text)):
        return str(int(text, 16))
    if base == "decimal" and not text.isdigit():
        return text
    return str(int(text, 10))


# What a learned convention is called, for the log line (uplink/smpp.py).
CONVENTION_WORDS = {"hex-decimal": "decimal ids for hex submit ids",
                    "decimal-hex": "hex ids for decimal submit ids",
                    "hex": "hex ids throughout"}


def has_hex_letter(raw) -> bool:
    """An id of hex digits with a letter in it: evidence the SMSC writes that side in hex."""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    text = (raw or "").strip().strip("\x00").strip().lower()
    return bool(_HEX.fullmatch(text) and _HEX_LETTER.search(text))


def id_bases(setting: str) -> tuple[str, str]:
    """(base of submit_sm_resp ids, base of receipt ids) for a `messageidbase` setting."""
    if setting == "hex-decimal":
        return "hex", "decimal"
    if setting == "decimal-hex":
        return "decimal", "hex"
    return setting, setting


def account_key(conn) -> str:
    """The SMSC account a connection binds to: its `smscaccount`, else `username@host`.
    Receipts match parts sent on any connection with the same key (store/receipt_match.py)."""
    if conn.smscaccount:
        return conn.smscaccount
    return f"{conn.username}@{conn.host.lower()}"


def is_receipt(esm_class: int) -> bool:
    kind = esm_class & ESM_RECEIPT_MASK
    return kind in (ESM_SMSC_RECEIPT, ESM_INTERMEDIATE)


def parse_text(text: str) -> dict[str, str]:
    """`id:123 sub:001 dlvrd:001 submit date:... stat:DELIVRD err:000 text:...` -> fields.
    Everything after `text:` is the message's own beginning: a user's "Your code id: 3"
    there made the receipt settle message 3 instead of its own. A key seen twice keeps its
    first value."""
    fields: dict[str, str] = {}
    text = text or ""
    matches = []
    for match in _FIELD.finditer(text):
        matches.append(match)
        if match.group(1).lower() == "text":
            break
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        key = match.group(1).lower()
        value = text[match.end():end]
        fields.setdefault(key, value if key == "text" else value.strip())
    return fields


@dataclass(frozen=True)
class Receipt:
    message_id: str            # normalised
    status: ReportStatus
    code: int = 0
    detail: str = ""
    raw_id: str = ""           # as the SMSC wrote it (for has_hex_letter)


def read_receipt(text: str, receipted_id=None, message_state: int | None = None,
                 base: str = "auto") -> Receipt | None:
    """A receipt from a deliver_sm's text and TLVs; the TLVs win where both are present."""
    fields = parse_text(text)
    raw_id = receipted_id if receipted_id else fields.get("id")
    if not raw_id:
        return None
    stat = fields.get("stat", "").upper()
    status = _MESSAGE_STATE.get(message_state) if message_state else None
    status = status or _STAT.get(stat) or ReportStatus.FAILED
    code = _int(fields.get("err", "0"))
    detail = "" if status == ReportStatus.DELIVERED else f"{stat or 'state'} err:{fields.get('err', '')}"
    return Receipt(normalise_id(raw_id, base), status, code, detail.strip(),
                   raw_id if isinstance(raw_id, str) else raw_id.decode("latin-1"))


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        try:
            return int(text, 16)
        except ValueError:
            return 0
