"""The submit_sm in flight, keyed by sequence number, and the sender's throttle state. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from appliance.model import OutPart


@dataclass
class InFlight:
    part: OutPart
    sent_at: float          # monotonic


class Window:
    """At most `size` submit_sm without their submit_sm_resp."""

    def __init__(self, size: int):
        self.size = size
        self._by_seq: dict[int, InFlight] = {}

    def __len__(self) -> int:
        return len(self._by_seq)

    def room(self) -> int:
        return max(0, self.size - len(self._by_seq))

    def add(self, sequence: int, part: OutPart, now: float) -> None:
        self._by_seq[sequence] = InFlight(part, now)

    def pop(self, sequence: int) -> InFlight | None:
        return self._by_seq.pop(sequence, None)

    def oldest(self) -> float | None:
        """When the oldest submit_sm in flight was sent (dicts keep insertion order)."""
        return next(iter(self._by_seq.values())).sent_at if self._by_seq else None

    def take_older(self, sent_before: float) -> list[OutPart]:
        """Remove and return the parts sent before `sent_before`."""
        old = [s for s, f in self._by_seq.items() if f.sent_at < sent_before]
        return [self._by_seq.pop(s).part for s in old]

    def parts(self) -> list[OutPart]:
        """The parts in flight, left in place (one C-level copy: safe from another thread)."""
        return [f.part for f in list(self._by_seq.values())]

    def drain(self) -> list[OutPart]:
        parts = [f.part for f in self._by_seq.values()]
        self._by_seq.clear()
        return parts


class Throttle:
    """ESME_RTHROTTLED / ESME_RMSGQFUL pause the sender; each one in a row doubles the pause."""

    def __init__(self, first: float = 1.0, cap: float = 30.0):
        self.first = first
        self.cap = cap
        self.until = 0.0
        self._pause = 0.0

    def hit(self, now: float) -> float:
        """One more refusal; during a pause it is the same event (answers to submit_sm sent
        before the pause began), so the pause does not grow with the window size."""
        if now < self.until:
            return self.until - now
        self._pause = min(self.cap, self._pause * 2 if self._pause else self.first)
        self.until = now + self._pause
        return self._pause

    def ok(self) -> None:
        self._pause = 0.0

    def paused(self, now: float) -> bool:
        return now < self.until


class Rate:
    """Successful submits per second over the last `span` seconds, counted in buckets of
    BUCKET seconds: memory and work per submit stay the same at any rate (a timestamp per
    submit was 40,000 floats at 4,000/s)."""

    BUCKET = 0.1

    def __init__(self, span: float = 10.0):
        self.span = span
        self._buckets: deque[list] = deque()     # [bucket index, first time, last time, count]

    def add(self, now: float, count: int = 1) -> None:
        index = int(now / self.BUCKET)
        buckets = self._buckets
        if buckets and buckets[-1][0] == index:
            last = buckets[-1]
            last[2] = now
            last[3] += count
            return
        buckets.append([index, now, now, count])
        self._trim(now)

    def per_second(self, now: float) -> float:
        self._trim(now)
        if not self._buckets:
            return 0.0
        total = sum(b[3] for b in self._buckets)
        first = self._buckets[0][1]
        return round(total / max(1.0, min(self.span, now - first + 1e-9)), 1)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][2] < now - self.span:
            self._buckets.popleft()
