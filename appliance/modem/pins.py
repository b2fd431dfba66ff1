"""PINs a SIM refused: never sent to that SIM again, not even after a restart.

A SIM locks (asks for its PUK) after three wrong PINs. A wrong `pincode` in the config,
sent once per start, would lock it after a few reboots or power cuts; so a refusal is kept
in the state directory's documents (the daemon calls `keep_in`) and a worker asks here
before it sends a PIN. Keyed by the SIM's ICCID (a SIM swapped into the slot is tried with
the PIN), or by the connection's name where the modem does not tell the ICCID before the
PIN; and by the PIN, so a corrected `pincode` is sent. Only hashes are kept.
"""

from __future__ import annotations

import hashlib
import logging
import threading

log = logging.getLogger("appliance.modem")

TABLE = "modem_state"
DOC = "refused_pins"


def _key(sim: str, pin: str) -> str:
    return hashlib.sha256(f"{sim}\0{pin}".encode()).hexdigest()


class RefusedPins:
    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._documents = None
        self._lock = threading.Lock()

    def keep_in(self, documents) -> None:
        """Remember refusals in `documents` (get/put of a named doc) and read earlier ones."""
        saved = documents.get(TABLE, DOC) or {}
        with self._lock:
            self._documents = documents
            self._keys |= set(saved.get("keys") or [])

    def refused(self, sim: str, pin: str) -> bool:
        with self._lock:
            return _key(sim, pin) in self._keys

    def remember(self, sim: str, pin: str) -> None:
        with self._lock:
            self._keys.add(_key(sim, pin))
            keys, documents = sorted(self._keys), self._documents
        if documents is None:
            return
        try:
            documents.put(TABLE, {"name": DOC, "keys": keys})
        except Exception as exc:        # the refusal still holds for this process
            log.error("modem: could not record a refused PIN in the state directory: %s", exc)

    def clear(self) -> None:
        """Forget every refusal in this process (tests: one test's SIM is its own)."""
        with self._lock:
            self._keys.clear()
            self._documents = None


# One per process: the daemon's workers, and a worker started anew for a connection (a
# driver stopped and started through the API), ask the same one.
REFUSED_PINS = RefusedPins()
