"""The one way from any dialect into the store: compose.prepare, the appliance-wide policy
(do-not-disturb list, default validity), then a single `Journal.accept` per request.

Every dialect (Ozeki, Ozeki 10 JSON, Phone System, bulksms) calls `prepare` for each
recipient and `accept` once with all the messages of the request.
"""

from __future__ import annotations

import threading

from appliance.compose import NewMessage, Submission, prepare as compose_prepare
from appliance.errors import ValidationError

DND_TABLE = "dnd"
ADDRESSBOOK_TABLE = "addressbook"


class DndList:
    """Numbers (exact, code 1042) and prefixes (`+3620*`, code 1732) nobody may message.

    Kept in the document store; cached here because every submission consults it. All
    changes go through this object, so the cache cannot go stale within the process.
    """

    def __init__(self, documents):
        self._documents = documents
        self._lock = threading.Lock()
        self._exact: set[str] | None = None
        self._prefixes: tuple[str, ...] = ()

    def _load(self) -> None:
        entries = [d["name"] for d in self._documents.all(DND_TABLE)] if self._documents else []
        self._exact = {_digits(e) for e in entries if not e.endswith("*")}
        self._prefixes = tuple(_digits(e[:-1]) for e in entries if e.endswith("*"))

    def check(self, number: str) -> None:
        with self._lock:
            if self._exact is None:
                self._load()
            exact, prefixes = self._exact, self._prefixes
        digits = _digits(number)
        if digits in exact:
            raise ValidationError("dnd_explicit", "recipient is on the do-not-disturb list",
                                  "recipient")
        if any(p and digits.startswith(p) for p in prefixes):
            raise ValidationError("dnd", "recipient is in a do-not-disturb range", "recipient")

    def entries(self) -> list[str]:
        return sorted(d["name"] for d in self._documents.all(DND_TABLE))

    def add(self, entry: str) -> None:
        with self._lock:
            self._documents.put(DND_TABLE, {"name": entry})
            self._exact = None

    def remove(self, entry: str) -> bool:
        with self._lock:
            self._exact = None
            return self._documents.remove(DND_TABLE, entry)


def _digits(number: str) -> str:
    number = number.strip()
    if number.startswith("00"):
        number = number[2:]
    return number.lstrip("+")


def dnd_list(services) -> DndList:
    """The appliance's one list, kept by the control plane (control.py)."""
    return services.control.dnd


def prepare(services, sub: Submission) -> NewMessage:
    """Validate one recipient's submission. Raises ValidationError."""
    _check_unicode(sub.text)
    message = compose_prepare(sub)
    dnd_list(services).check(sub.recipient)
    if sub.valid_until is None:
        hours = services.config.store.default_validity_hours
        if hours and hours > 0:
            start = max(sub.send_at or 0.0, services.clock.now())
            sub.valid_until = start + hours * 3600.0
    if sub.valid_until is not None and sub.valid_until <= services.clock.now():
        # the same rule in every dialect: a message that may not leave any more is refused
        raise ValidationError("bad_validity", "the validity period is already over", "vp")
    if sub.valid_until is not None and sub.send_at is not None and sub.valid_until <= sub.send_at:
        raise ValidationError("bad_validity", "the validity period ends before the send time",
                              "vp")
    return message


def _check_unicode(text) -> None:
    """Bytes that were not UTF-8 (kept as lone surrogates by web.params) or a lone surrogate
    from a JSON escape: refused, never sent as U+FFFD."""
    if not isinstance(text, str):
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        detail = f"byte 0x{ord(bad) - 0xDC00:02X}" if 0xDC80 <= ord(bad) <= 0xDCFF else \
            f"lone surrogate U+{ord(bad):04X}"
        raise ValidationError("bad_text", f"the message text is not valid UTF-8 ({detail} at "
                              f"character {exc.start})", "messagedata") from None


def accept(services, messages: list[NewMessage]) -> list:
    """One durable commit for the whole request; one result (id or ValidationError) each."""
    if not messages:
        return []
    results = services.journal.accept(messages)
    services.wake()
    return results
