"""The single gate between every API dialect and the store.

A dialect parses its request into a neutral `Submission`; `prepare` validates it and splits it
into the parts the store keeps and the channels send. No dialect has its own path: the
Ozeki, Ozeki 10 JSON, Phone System and bulksms adapters all call `prepare` then `store.accept`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from appliance import gsm
from appliance.errors import ValidationError
from appliance.model import Priority

MAX_PARTS = 20
MAX_RECIPIENT_DIGITS = 20
ALNUM_SENDER_MAX = 11
NUMERIC_SENDER_MAX = 20

_NUMBER_NOISE = re.compile(r"[\s\-().]")
_NUMBER = re.compile(r"\+?[0-9]{2,20}")
_ALNUM_SENDER = re.compile(r"[A-Za-z0-9 .\-_&!?]{1,11}")


@dataclass
class Submission:
    """What any dialect asks for, in the appliance's own words."""

    user: str
    recipient: str
    text: str
    messagetype: str = "SMS:TEXT"
    originator: str = ""
    send_at: float | None = None
    valid_until: float | None = None
    want_report: bool = True
    priority: int = Priority.NORMAL
    serviceprovider: str = ""
    dialect: str = "ozeki"
    callback: dict | None = None      # how to tell the client about state changes
    smpp_params: dict = field(default_factory=dict)
    client_ref: str = ""              # the client's own id, echoed back where a dialect has one
    message_id: str = ""              # a client-chosen id (Ozeki 10 JSON) or a new GUID


@dataclass(frozen=True)
class PartSpec:
    seq: int
    total: int
    encoding: str
    text: str | None = None
    data: bytes = b""
    udh: bytes = b""
    pid: int = 0
    dcs: int | None = None


@dataclass(frozen=True)
class NewMessage:
    """A validated submission with its parts, ready for `Journal.accept`."""

    id: str
    submission: Submission
    parts: tuple[PartSpec, ...]
    msg_class: int | None
    encoding: str


# --- numbers ---------------------------------------------------------------------------


def normalize_recipient(raw: str) -> str:
    """Strip spacing people type into numbers; refuse what is not a phone number."""
    number = _NUMBER_NOISE.sub("", raw or "")
    if number.startswith("00") and len(number) > 4:
        number = "+" + number[2:]
    if not _NUMBER.fullmatch(number):
        raise ValidationError("bad_recipient", f"invalid recipient number: {raw!r}", "recipient")
    return number


def check_originator(raw: str) -> str:
    """Numeric senders up to 20 digits (with +), alphanumeric up to 11 characters."""
    sender = (raw or "").strip()
    if not sender:
        return ""
    digits = _NUMBER_NOISE.sub("", sender)
    if _NUMBER.fullmatch(digits) and len(digits.lstrip("+")) <= NUMERIC_SENDER_MAX:
        return digits
    if _ALNUM_SENDER.fullmatch(sender):
        return sender
    raise ValidationError("bad_originator", f"invalid originator: {raw!r} "
                          "(up to 11 letters/digits, or a number)", "originator")


# --- message types ---------------------------------------------------------------------

_TEXT_TYPE = re.compile(r"SMS:TEXT(?::(GSM7BIT|UCS2))?(?::CLASS([0-3]))?")


def parse_text_type(messagetype: str) -> tuple[str | None, int | None]:
    """`SMS:TEXT:UCS2:CLASS0` -> ("ucs2", 0). None encoding means "pick the cheapest"."""
    match = _TEXT_TYPE.fullmatch((messagetype or "SMS:TEXT").strip().upper())
    if not match:
        raise ValidationError("bad_messagetype", f"unsupported message type: {messagetype}",
                              "messagetype")
    encoding = {"GSM7BIT": "gsm7", "UCS2": "ucs2", None: None}[match.group(1)]
    msg_class = int(match.group(2)) if match.group(2) is not None else None
    return encoding, msg_class


# Other message types (binary, WAP push) register a builder here: messagetype prefix ->
# function(submission) -> (parts, msg_class, encoding).
PAYLOAD_BUILDERS: dict[str, object] = {}


def _text_parts(sub: Submission) -> tuple[tuple[PartSpec, ...], int | None, str]:
    encoding, msg_class = parse_text_type(sub.messagetype)
    if not sub.text:
        raise ValidationError("empty_text", "message text is empty", "messagedata")
    try:
        seg = gsm.segments(sub.text, encoding=encoding)
    except ValueError as exc:
        raise ValidationError("bad_text", f"text cannot be encoded: {exc}", "messagedata") from None
    if seg.count > MAX_PARTS:
        raise ValidationError("text_too_long", f"text needs {seg.count} SMS; at most {MAX_PARTS} "
                              "are allowed", "messagedata")
    parts = tuple(PartSpec(seq=i + 1, total=seg.count, encoding=seg.encoding, text=t)
                  for i, t in enumerate(seg.parts))
    return parts, msg_class, seg.encoding


def _builder_for(messagetype: str):
    upper = (messagetype or "SMS:TEXT").upper()
    for prefix, builder in PAYLOAD_BUILDERS.items():
        if upper.startswith(prefix):
            return builder
    return _text_parts


def prepare(sub: Submission) -> NewMessage:
    """Validate a submission and split it into parts. Raises ValidationError."""
    sub.recipient = normalize_recipient(sub.recipient)
    sub.originator = check_originator(sub.originator)
    parts, msg_class, encoding = _builder_for(sub.messagetype)(sub)
    message_id = sub.message_id or str(uuid.uuid4())
    return NewMessage(id=message_id, submission=sub, parts=parts, msg_class=msg_class,
                      encoding=encoding)
