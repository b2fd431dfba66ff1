"""The loop that moves due parts from the journal to channels.

It owns no I/O resource: it asks each channel how many parts it takes now, asks the router
where each due part may go, claims the chosen parts in one write and hands them over.
Parts with no free route stay queued; they leave in order when a route comes back.
"""

from __future__ import annotations

import logging
import threading

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.routing import Router

log = logging.getLogger("appliance.dispatch")

HOUSEKEEPING_SECONDS = 1.0
FRAGMENT_SWEEP_SECONDS = 60.0


class Dispatcher:
    def __init__(self, journal, channels: dict, router: Router, *, clock: Clock = SYSTEM_CLOCK,
                 idle_seconds: float = 0.5):
        self.journal = journal
        self.channels = channels        # name -> Channel; replaced whole on reconfiguration
        self.router = router
        self.clock = clock
        self.idle_seconds = idle_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self._last_fragment_sweep = 0.0
        self.heartbeat = clock.monotonic()
        self.dispatched = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def wake(self) -> None:
        """New work or a freed channel: look now rather than at the next tick."""
        self._wake.set()

    def alive(self, max_age: float = 30.0) -> bool:
        fresh = self.clock.monotonic() - self.heartbeat < max_age
        return bool(self._thread and self._thread.is_alive() and fresh)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            try:
                moved = self.step()
            except Exception:  # one bad step must not stop the queue for good
                log.exception("dispatch: step failed; retrying")
                moved = 0
            if not moved:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()

    def step(self) -> int:
        """One pass: housekeeping when due, then dispatch what fits. Returns parts moved."""
        self._housekeeping()
        free = {name: max(0, ch.free_slots()) for name, ch in list(self.channels.items())}
        capacity = sum(free.values())
        if capacity == 0:
            return 0
        parts = self.journal.due_parts(limit=max(50, capacity * 4))
        chosen = self._assign(parts, free)
        if not chosen:
            return 0
        claimed = set(self.journal.claim([(p.id, name) for p, name in chosen]))
        for part, name in chosen:
            if part.id in claimed:
                self.channels[name].submit(part)
        self.dispatched += len(claimed)
        return len(claimed)

    def _assign(self, parts, free: dict[str, int]) -> list:
        chosen = []
        for part in parts:
            name = self.router.pick(part, free)
            if name is not None and name in self.channels:
                free[name] -= 1
                chosen.append((part, name))
        return chosen

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = now
            result = self.journal.housekeeping()
            if result["expired"]:
                log.info("dispatch: %d messages expired before a route was available",
                         result["expired"])
            if result.get("unreported"):
                log.warning("dispatch: %d messages got no delivery report in time; expired",
                            result["unreported"])
        if now - self._last_fragment_sweep >= FRAGMENT_SWEEP_SECONDS:
            self._last_fragment_sweep = now
            self.journal.expire_fragments()
