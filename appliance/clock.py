"""Injectable time, so behaviour that depends on time is tested without real sleeps."""

import threading
import time


class Clock:
    """Wall time for timestamps, monotonic time for intervals, and a sleep that can be woken."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait for `event` at most `seconds`; True if it was set."""
        return event.wait(max(0.0, seconds))


class FakeClock(Clock):
    """A clock that only moves when told to. `sleep` and `wait` advance it instead of blocking."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def step(self, seconds: float) -> None:
        """The wall clock alone jumps (NTP setting it, `date -s`); intervals do not."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.advance(max(0.0, seconds))
        return event.is_set()


SYSTEM_CLOCK = Clock()
