"""Steps of the wall clock, seen against the monotonic clock.

A Raspberry Pi has no real-time clock: it boots with the time it saved at its last shutdown
(systemd-timesyncd's clock file, fake-hwclock), and NTP steps it forward once the network is
up, by as long as the box was off. Alerts accepted before that step carry the old time, so a
step of more than their validity (72 h by default) would expire them unsent. A step back (an
operator's `date -s`, a wrong time corrected) would leave every queued part's retry time in
the future by the size of the step. The dispatcher asks `StepWatch.check` at each
housekeeping pass and has the journal move what this run stamped (store/clock_step.py).
NTP's slews (at most 0.5 ms/s) never add up to a step: the offset is compared pass to pass.
"""

from __future__ import annotations

from appliance.clock import Clock

STEP_SECONDS = 30.0     # a smaller step changes no validity or retry a user would notice


class StepWatch:
    """`check()` returns the wall clock's step since the last call (0.0 when under
    STEP_SECONDS); after a step, `window` holds the wall times this run had stamped before
    it: from the watch's start to the check before the step, both in the old time."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._offset = clock.now() - clock.monotonic()
        self.started = clock.now()
        self.last_seen = self.started
        self.window = (self.started, self.started)

    def check(self) -> float:
        now = self.clock.now()
        offset = now - self.clock.monotonic()
        step, self._offset = offset - self._offset, offset
        if abs(step) < STEP_SECONDS:
            self.last_seen = now
            return 0.0
        self.window = (self.started, self.last_seen)
        self.started += step        # what this run stamped so far, in the new time
        self.last_seen = now
        return step
