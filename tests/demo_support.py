"""Helpers for tests that run an in-process daemon with simulated demo modems."""

from __future__ import annotations

import time


def wait_registered(daemon, timeout: float = 60.0) -> None:
    """Until every running modem reports network registration (the simulated network
    answers 'searching' for a moment after boot, as a real one does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [c.status() for c in daemon.channels.running.values()]
        if statuses and all(s.get("registered") for s in statuses if "registered" in s):
            return
        time.sleep(0.05)
    raise AssertionError(f"modems not registered within {timeout:g}s")
