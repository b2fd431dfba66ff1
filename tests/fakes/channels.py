"""Channels that stand in for a modem worker in a state that takes long to reach for real
(the daemon's `build_channel` is monkeypatched to make them)."""

from __future__ import annotations


class HeldModem:
    """A modem worker the reset cap holds (a state /health fails on): it sends nothing and
    refuses an operator's reset."""

    def __init__(self, conn):
        self.conn, self.name = conn, conn.name

    def start(self):
        pass

    def stop(self, timeout: float = 10.0):
        pass

    def free_slots(self):
        return 0

    def alive(self):
        return True

    def request_reset(self, reason: str) -> bool:
        return False

    def status(self):
        return {"name": self.name, "state": "held", "last_error": "4 resets in the last hour"}
