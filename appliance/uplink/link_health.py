"""Bind failures and link stability of one SMPP uplink. Pure: time comes in as arguments.

Many SMSCs answer wrong credentials (or a blocked address) not with a bind_resp error but by
accepting the bind and unbinding or closing at once. So a link that goes down before it has
stayed up `stable_after` seconds counts as a failed bind, like a refused one: the reconnect
delay keeps doubling up to `reconnectmaxdelay`, and the uplink reports itself failing with
the SMSC's reason. Only a link that held for `stable_after` seconds forgets the failures and
resets the delay (a real aggregator may block an address that rebinds every second).
"""

from __future__ import annotations

from appliance.uplink.backoff import Backoff

STABLE_AFTER = 60.0       # seconds a bind must hold before the backoff starts again from the base


class LinkHealth:
    def __init__(self, backoff: Backoff, stable_after: float = STABLE_AFTER):
        self.backoff = backoff
        self.stable_after = stable_after
        self.failures = 0            # failed binds in a row since the last link that held
        self.reason = ""             # why the last one failed, in the SMSC's words if it gave any
        self.bound_at: float | None = None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def bound(self, now: float) -> None:
        self.bound_at = now

    def held(self, now: float) -> bool:
        return self.bound_at is not None and now - self.bound_at >= self.stable_after

    def check(self, now: float) -> bool:
        """Called while bound; True when this call found the link stable after failures."""
        if self.failures and self.held(now):
            self._forget()
            return True
        return False

    def refused(self, reason: str) -> float:
        """A bind that did not succeed: the delay before the next one."""
        self.failures += 1
        self.reason = reason
        self.bound_at = None
        return self.backoff.next_delay()

    def lost(self, now: float, reason: str) -> tuple[float, str]:
        """The bound link went down: (delay before the next bind, the reason to show)."""
        if self.held(now):
            self._forget()
            self.bound_at = None
            return self.backoff.next_delay(), reason
        if self.bound_at is None:
            return self.refused(reason), reason
        reason = f"bind not kept: {reason} {now - self.bound_at:.1f}s after the bind"
        return self.refused(reason), reason

    def _forget(self) -> None:
        self.failures = 0
        self.reason = ""
        self.backoff.reset()
