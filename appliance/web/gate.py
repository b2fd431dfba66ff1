"""The do-not-disturb list and the address book's table name, shared by the dialects.

The way into the store is `appliance/intake.py` (`prepare`, `submit_batch`), which consults
this list for every recipient.
"""

from __future__ import annotations

import threading

from appliance.errors import ValidationError
from appliance.model import number_digits

DND_TABLE = "dnd"
ADDRESSBOOK_TABLE = "addressbook"


class DndList:
    """Numbers (exact, code 1042) and prefixes (`+3620*`, code 1732) nobody may message.

    Kept in the document store; cached here because every submission consults it. All
    changes go through this object, so the cache cannot go stale within the process.
    """

    def __init__(self, documents, on_added=None):
        self._documents = documents
        self._on_added = on_added     # entry -> None: what waits for it must not leave
        self._lock = threading.Lock()
        self._exact: set[str] | None = None
        self._prefixes: tuple[str, ...] = ()

    def _load(self) -> None:
        entries = [d["name"] for d in self._documents.all(DND_TABLE)] if self._documents else []
        self._exact = {number_digits(e) for e in entries if not e.endswith("*")}
        prefixes = (number_digits(e[:-1]) for e in entries if e.endswith("*"))
        # a bare `*` (no digits) blocks nothing; check() hands the tuple to str.startswith
        self._prefixes = tuple(p for p in prefixes if p)

    def check(self, number: str) -> None:
        with self._lock:
            if self._exact is None:
                self._load()
            exact, prefixes = self._exact, self._prefixes
        digits = number_digits(number)
        if digits in exact:
            raise ValidationError("dnd_explicit", "recipient is on the do-not-disturb list",
                                  "recipient")
        if digits.startswith(prefixes):
            raise ValidationError("dnd", "recipient is in a do-not-disturb range", "recipient")

    def blocks(self, number: str) -> bool:
        try:
            self.check(number)
        except ValidationError:
            return True
        return False

    def entries(self) -> list[str]:
        return sorted(d["name"] for d in self._documents.all(DND_TABLE))

    def add(self, entry: str) -> None:
        with self._lock:
            self._documents.put(DND_TABLE, {"name": entry})
            self._exact = None
        if self._on_added is not None:
            self._on_added(entry)

    def remove(self, entry: str) -> bool:
        with self._lock:
            self._exact = None
            return self._documents.remove(DND_TABLE, entry)


def dnd_list(services) -> DndList:
    """The appliance's one list, kept by the control plane (control.py)."""
    return services.control.dnd
