"""When the next SMS may leave one SIM: `limittompm`, a random gap, a daily budget.

Pure apart from the injected clock, so every rule is tested by moving a FakeClock.
The day is the local calendar day: operators count "per day", not per rolling 24 h.
"""

from __future__ import annotations

import random
import time

from appliance.clock import Clock


class Pacing:
    def __init__(self, clock: Clock, per_minute: int, random_delay: float, daily_limit: int,
                 rng: random.Random | None = None):
        self.clock = clock
        self.min_gap = 60.0 / per_minute if per_minute > 0 else 0.0
        self.random_delay = max(0.0, random_delay)
        self.daily_limit = daily_limit
        self._rng = rng or random.Random()
        self._next_at = 0.0
        self._day = self._today()
        self.sent_today = 0

    def start_day(self, already_sent: int) -> None:
        """After a restart the store knows what this SIM sent today (sink.sent_count_since)."""
        self._day = self._today()
        self.sent_today = already_sent

    def may_send(self) -> bool:
        self._roll_day()
        if self.daily_limit > 0 and self.sent_today >= self.daily_limit:
            return False
        return self.clock.monotonic() >= self._next_at

    def seconds_until_allowed(self) -> float:
        return max(0.0, self._next_at - self.clock.monotonic())

    def budget_exhausted(self) -> bool:
        self._roll_day()
        return self.daily_limit > 0 and self.sent_today >= self.daily_limit

    def record_attempt(self, counted: bool) -> None:
        """After each AT+CMGS: space the next one; count it against the day if it left."""
        gap = self.min_gap + (self._rng.uniform(0, self.random_delay) if self.random_delay else 0)
        self._next_at = self.clock.monotonic() + gap
        if counted:
            self.sent_today += 1

    def midnight(self) -> float:
        """Epoch seconds of today's local midnight."""
        local = time.localtime(self.clock.now())
        return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))

    def _today(self) -> tuple[int, int, int]:
        local = time.localtime(self.clock.now())
        return local.tm_year, local.tm_mon, local.tm_mday

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self.sent_today = 0
