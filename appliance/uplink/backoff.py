"""Exponential backoff with jitter for reconnects and throttling pauses. Pure."""

from __future__ import annotations

import random
from typing import Callable


class Backoff:
    """`base * factor**n`, capped, each delay scaled by a random factor in [1-jitter, 1]."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, factor: float = 2.0,
                 jitter: float = 0.5, rng: Callable[[], float] = random.random):
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        raw = min(self.cap, self.base * self.factor ** self.failures)
        if raw < self.cap:          # past the cap the count stops: no overflow, ever
            self.failures += 1
        return raw * (1.0 - self.jitter * self.rng())

    def reset(self) -> None:
        self.failures = 0
