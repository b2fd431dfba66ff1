"""Parts a channel took and no longer holds go back to the queue: a safety net.

A part is `sending` from its claim until its channel records a result or gives it back. A
channel that drops one in between by a bug leaves it `sending`: not sent again, not settled,
until a restart (the SMPP uplink did so when a window refill's send failed: a246ebb). A
channel that can say which parts it holds (`holding()`, the SMPP uplink) is compared with
the store from time to time: a part `sending` on it that it did not hold at every check for
LOST_AFTER seconds is queued again, and sent again at once (at least once, as after a
restart; a part held at any check in between starts over). Runs on the dispatcher's thread,
so no part is between its claim and its hand-over while it looks.
"""

from __future__ import annotations

import logging

from appliance.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("appliance.dispatch")

CHECK_SECONDS = 30.0
LOST_AFTER = 120.0      # far beyond any commit or hand-back of a part the channel let go
LOST_CODE = "lost"      # journal.RETRY_AT_ONCE: it has waited long enough


class LostParts:
    def __init__(self, journal, *, clock: Clock = SYSTEM_CLOCK, lost_after: float = LOST_AFTER):
        self.journal = journal
        self.clock = clock
        self.lost_after = lost_after
        self._unheld: dict[str, dict[int, float]] = {}   # connection -> part id -> first seen

    def check(self, channels: dict) -> int:
        """Compare each channel that tells what it holds with the store; queue again what
        it lost. Returns how many parts were queued again."""
        now = self.clock.monotonic()
        requeued = 0
        for name, channel in list(channels.items()):
            lost = self._lost_on(name, channel, now)
            if lost:
                self._requeue(name, lost)
                requeued += len(lost)
        for name in set(self._unheld) - set(channels):
            del self._unheld[name]
        return requeued

    def _lost_on(self, name: str, channel, now: float) -> list[int]:
        holding = getattr(channel, "holding", None)
        held = holding() if holding is not None else None
        if held is None:                # cannot tell now: start over at the next check
            self._unheld.pop(name, None)
            return []
        sending = self.journal.sending_on(name)
        before = self._unheld.get(name, {})
        unheld = {part_id: before.get(part_id, now) for part_id in sending
                  if part_id not in held}
        lost = [part_id for part_id, since in unheld.items() if now - since >= self.lost_after]
        for part_id in lost:
            del unheld[part_id]
        self._unheld[name] = unheld
        return lost

    def _requeue(self, name: str, part_ids: list[int]) -> None:
        log.warning("dispatch: %s no longer holds %d parts it took %gs ago or more (a fault in"
                    " the channel); they are queued again", name, len(part_ids),
                    self.lost_after)
        reason = f"{name} no longer held it; queued again"
        self.journal.write_many([lambda p=p: self.journal.part_failed(p, name, LOST_CODE,
                                                                      reason, True)
                                 for p in part_ids])
