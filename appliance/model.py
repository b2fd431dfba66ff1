"""Plain data and vocabulary shared by every layer: states, parts, reports, inbound messages.

Nothing here does I/O. Channels (modem workers, the SMPP uplink) receive `OutPart`s and
tell the store what happened through a `ChannelSink`; the store is the only shared state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Protocol


class State(str, Enum):
    """Life of a message and of each of its parts (see docs/architecture.md)."""

    SCHEDULED = "scheduled"      # waits for its send time
    QUEUED = "queued"            # due, waiting for a channel
    SENDING = "sending"          # handed to a channel, no answer yet
    SUBMITTED = "submitted"      # the network / SMSC took it; report may follow
    DELIVERED = "delivered"      # handset delivery confirmed
    UNDELIVERED = "undelivered"  # the network gave up (status report)
    EXPIRED = "expired"          # validity period ended before it left or was delivered
    FAILED = "failed"            # permanent error, reason stored
    DELETED = "deleted"          # removed by the user (Ozeki `deleted` folder)

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.DELIVERED, State.UNDELIVERED, State.EXPIRED, State.FAILED})

# Ozeki folders are views over states (http-api.md §1.4).
FOLDER_STATES = {
    "outbox": (State.SCHEDULED, State.QUEUED, State.SENDING),
    "sent": (State.SUBMITTED, State.DELIVERED),
    "notsent": (State.UNDELIVERED, State.EXPIRED, State.FAILED),
}

# Ozeki getmessagebyid <state> numbers (http-api.md §4.1).
OZEKI_STATE = {
    State.QUEUED: 0,        # Idle
    State.SENDING: 1,       # Sending
    State.SUBMITTED: 13,    # Enroute: accepted by the network, report pending
    State.DELIVERED: 10,    # Delivery successful
    State.FAILED: 11,       # Delivery rejected
    State.EXPIRED: 14,      # Expired
    State.DELETED: 15,      # Deleted
    State.UNDELIVERED: 16,  # Undeliverable
    State.SCHEDULED: 17,    # Scheduled
}


class Priority(int, Enum):
    """Lower sorts first: alerts leave before bulk."""

    ALERT = 0
    NORMAL = 5
    BULK = 9


@dataclass(frozen=True)
class Submission:
    """What any sender asks for, in the appliance's own words. Never changed after it is
    built: `intake.prepare` answers with a new, effective copy inside a `NewMessage`."""

    user: str
    recipient: str
    text: str
    messagetype: str = "SMS:TEXT"
    originator: str = ""
    send_at: float | None = None
    valid_until: float | None = None
    # valid_until counts from acceptance (the default validity), not a time the sender gave:
    # a step of the clock after acceptance (NTP at boot) moves it (store/clock_step.py)
    validity_relative: bool = False
    want_report: bool = True
    priority: int = Priority.NORMAL
    serviceprovider: str = ""
    dialect: str = "ozeki"
    callback: dict | None = None      # how to tell the client about state changes
    smpp_params: dict = field(default_factory=dict)
    client_ref: str = ""              # the client's own id, echoed back where a dialect has one
    message_id: str = ""              # a client-chosen id (Ozeki 10 JSON) or a new GUID
    dedupe_window: float | None = None  # seconds; None = the journal's configured window


@dataclass(frozen=True)
class PartSpec:
    """One segment of a message as `compose` split it, before the journal numbers it."""

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
    """A validated submission with its parts, ready for `Journal.accept`. `submission` holds
    the effective values (normalised numbers, the validity that applies)."""

    id: str
    submission: Submission
    parts: tuple[PartSpec, ...]
    msg_class: int | None
    encoding: str


class ReportStatus(str, Enum):
    """A delivery report's meaning, independent of where it came from (TP-ST, SMPP stat)."""

    DELIVERED = "delivered"    # final, success
    FAILED = "failed"          # final, failure
    PENDING = "pending"        # temporary: the SMSC still tries; not final
    EXPIRED = "expired"        # final: validity ended in the network


@dataclass(frozen=True)
class OutPart:
    """One SMS segment ready for a channel. The store split the message at accept time.

    `seq` is 1-based; `total` 1 means a single SMS. `concat_ref` is the message's
    concatenation reference (8-bit unless `concat_16bit`). Channels build the concat UDH
    themselves from these fields (or SAR TLVs on SMPP) and prepend `udh` (non-concat IEs,
    for example WDP ports for WAP push).
    """

    id: int
    message_id: str
    recipient: str
    originator: str
    seq: int = 1
    total: int = 1
    concat_ref: int = 0
    concat_16bit: bool = False
    encoding: str = "gsm7"          # "gsm7" | "ucs2" | "8bit"
    text: str | None = None         # this part's text for gsm7/ucs2
    data: bytes = b""               # this part's octets for 8bit
    udh: bytes = b""                # extra UDH information elements, without the length octet
    pid: int = 0
    dcs: int | None = None          # explicit TP-DCS override (SMS:BINARY:XML)
    msg_class: int | None = None    # 0 = flash
    want_report: bool = True
    valid_until: float | None = None
    priority: int = Priority.NORMAL
    attempts: int = 0
    user: str = ""
    messagetype: str = "SMS:TEXT"
    smpp_params: dict = field(default_factory=dict)  # Ozeki dynamic SMPP overrides
    serviceprovider: str = ""       # a connection the user asked for (route override)
    tried: tuple[str, ...] = ()     # connections that failed this part transiently
    pinned_to: str = ""             # the connection carrying the whole message (dispatcher)
    next_seq: int = 1               # the message's first part not yet handed over


_OUT_PART_FIELDS = tuple(f.name for f in fields(OutPart))


def out_part_of(*values) -> OutPart:
    """An OutPart from all its field values in order, without the frozen dataclass's
    __init__: that sets each of its 26 fields through object.__setattr__ (3.7 µs against
    1.4 here, per part the dispatcher reads). Same object: equal, `replace` works."""
    part = object.__new__(OutPart)
    part.__dict__.update(zip(_OUT_PART_FIELDS, values, strict=True))
    return part


@dataclass(frozen=True)
class Report:
    """A delivery report for a part the channel submitted earlier under `reference`."""

    connection: str
    reference: str
    status: ReportStatus
    code: int = 0                 # TP-ST, SMPP error code, ...
    detail: str = ""
    recipient: str | None = None  # helps match modem TP-MR references (they wrap at 256)
    done_at: float | None = None


@dataclass(frozen=True)
class InboundFragment:
    """One received SMS (or one part of a long one) as a channel decoded it."""

    connection: str
    sender: str
    recipient: str
    encoding: str                  # "gsm7" | "ucs2" | "8bit"
    text: str | None
    data: bytes = b""
    concat: tuple[int, int, int, int] | None = None  # (ref, total, seq, ref_bits)
    sent_at: float | None = None   # SCTS
    received_at: float | None = None
    msg_class: int | None = None
    udh: bytes = b""               # information elements other than concatenation (ports...)
    # A part's text undecoded (UCS-2 octets or GSM septet values, one per byte), for joining
    # before decoding (gsm/reassembly.py); empty once joined, and where a channel has none.
    raw: bytes = field(default=b"", compare=False, repr=False)


class ChannelSink(Protocol):
    """What a channel may tell the store. Every call is durable when it returns."""

    def part_submitted(self, part_id: int, connection: str, reference: str) -> None: ...

    def part_failed(self, part_id: int, connection: str, code: str, reason: str,
                    retryable: bool) -> None: ...

    def report(self, report: Report) -> None: ...

    def inbound(self, fragment: InboundFragment) -> None: ...

    def inbound_once(self, fragment: InboundFragment,
                     provider_id: str) -> tuple[str | None, bool]: ...


class Channel(Protocol):
    """A way out: a modem worker or an SMPP uplink. One thread owns its I/O resource."""

    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def free_slots(self) -> int:
        """How many more parts it takes right now: 0 when down, busy or rate-limited."""

    def submit(self, part: OutPart) -> None:
        """Queue a part to the channel's thread. The outcome arrives through the sink."""

    def alive(self) -> bool:
        """True while the worker thread runs and its heartbeat is fresh (for the watchdog)."""

    def status(self) -> dict:
        """A JSON-able snapshot for /status."""


def number_digits(number: str) -> str:
    """A phone number as the digits that identify it, without its international prefix:
    "+36 20 000 0002", "0036200000002" and "36200000002" are one number. What the
    do-not-disturb list, its withholding of waiting messages and an inbound SMS's owner
    compare (a `+3620*` range's digits too, once its `*` is off)."""
    number = (number or "").strip()
    if number.startswith("00"):
        number = number[2:]
    if number.isascii():        # every submission's recipient: one C-level pass
        return _NOT_ASCII_DIGITS.sub("", number)
    return "".join(c for c in number if c.isdigit())   # other scripts' digits count too


_NOT_ASCII_DIGITS = re.compile(r"[^0-9]+")
