"""The loop that moves due parts from the journal to channels.

It owns no I/O resource: it asks each channel how many parts it takes now, asks the router
where each due message may go, claims the chosen parts in one write and hands them over.
Parts with no free route stay queued; they leave in order when a route comes back.

A message is routed as a whole: the router picks a channel for its first part, and every
later part waits for that channel and leaves after the parts before it (a phone joins parts
by originator and reference). When that channel makes no progress for `reroute_after`
seconds the journal releases the message or resends it whole (store/message_routes.py);
when that channel is known down (channel_down.py, or removed by the operator) it does so at
the next housekeeping pass, without waiting.
"""

from __future__ import annotations

import logging
import threading

from dataclasses import replace

from appliance.channel_down import can_send, known_down
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.clock_step import StepWatch
from appliance.lost_parts import CHECK_SECONDS as LOST_CHECK_SECONDS, LostParts
from appliance.routing import Router

log = logging.getLogger("appliance.dispatch")

HOUSEKEEPING_SECONDS = 1.0
FRAGMENT_SWEEP_SECONDS = 60.0
REROUTE_AFTER_SECONDS = 300.0
MISSING_SECONDS = 2.0   # a connection absent this long was removed/stopped, not being restarted
LOOK_PAST = 50      # due parts read beyond the free slots when some of them must wait


class Dispatcher:
    def __init__(self, journal, channels: dict, router: Router, *, clock: Clock = SYSTEM_CLOCK,
                 idle_seconds: float = 0.5, reroute_after: float = REROUTE_AFTER_SECONDS):
        self.journal = journal
        self.channels = channels        # name -> Channel; replaced whole on reconfiguration
        # held while parts are handed over and while `channels` is swapped (set_channels): a
        # part claimed for a channel goes to it before its stop, or back to the queue
        self._handover = threading.Lock()
        self.router = router
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.reroute_after = reroute_after
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self._last_fragment_sweep = 0.0
        self._missing_since: dict[str, float] = {}   # pinned connection -> first seen absent
        self.heartbeat = clock.monotonic()
        self.dispatched = 0
        self._slots_seen = True         # the last pass found a free slot (or could not know)
        self._down: frozenset = frozenset()  # this pass's channels known down (failover rules)
        self._clock_steps = StepWatch(clock)
        self.lost_parts = LostParts(journal, clock=clock)
        self._last_lost_check = clock.monotonic()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def set_channels(self, channels: dict) -> None:
        """The running channels, replaced whole. A channel left out is stopped after this
        returns, so what was handed to it is in its queue and given back by its stop."""
        with self._handover:
            self.channels = channels

    def wake(self) -> None:
        """A freed slot or new channels: look now rather than at the next tick."""
        self._wake.set()

    def work_arrived(self) -> None:
        """New messages in the journal: worth a look only when the last pass found a free
        slot. With every slot taken, or no channel at all, the channel that frees a slot
        wakes the dispatcher (`set_wake`), so an alert storm into a busy or unconnected box
        does not wake this thread once per request for nothing."""
        if self._slots_seen and not self._wake.is_set():
            self._wake.set()

    def background_threads(self) -> list[threading.Thread]:
        """Its thread, once started (thread_priority.step_aside)."""
        return [self._thread] if self._thread is not None else []

    def alive(self, max_age: float = 30.0) -> bool:
        fresh = self.clock.monotonic() - self.heartbeat < max_age
        return bool(self._thread and self._thread.is_alive() and fresh)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            self._wake.clear()          # a wake during the step makes the wait below return
            try:
                moved = self.step()
            except Exception:  # one bad step must not stop the queue for good
                log.exception("dispatch: step failed; retrying")
                moved = 0
            if not moved or not self._unwoken_free():
                self._wake.wait(self.idle_seconds)

    def _has_unwoken_channel(self) -> bool:
        """A channel that cannot wake the dispatcher when a slot frees up (no `set_wake`)."""
        return any(not hasattr(ch, "set_wake") for ch in list(self.channels.values()))

    def _not_sending(self) -> frozenset:
        """Running channels not in a state to send (a modem not ready, an uplink not bound,
        a provider down), for failover rules: busy is not down (routing.py)."""
        return frozenset(name for name, ch in list(self.channels.items()) if not can_send(ch))

    def _unwoken_free(self) -> bool:
        """A channel with free slots that cannot wake the dispatcher when slots free up (no
        `set_wake`): look again at once. Channels that do wake it (SMPP, providers, modems)
        are left to work down what they hold, so a backlog moves in batches, not a few
        parts per pass."""
        return any(not hasattr(ch, "set_wake") and ch.free_slots() > 0
                   for ch in list(self.channels.values()))

    def step(self) -> int:
        """One pass: housekeeping when due, then dispatch what fits. Returns parts moved."""
        self._housekeeping()
        free = {name: max(0, ch.free_slots()) for name, ch in list(self.channels.items())}
        capacity = sum(free.values())
        self._slots_seen = capacity > 0 or self._has_unwoken_channel()
        if capacity == 0:
            return 0
        self._down = self._not_sending() if self.router.needs_down() else frozenset()
        chosen = self._choose(capacity, free)
        if not chosen:
            return 0
        claimed = self.journal.claim_whole([(p.id, name, p.message_id, p.total)
                                            for p, name in chosen])
        batches: dict[str, list] = {}
        for part, name in chosen:
            if part.id in claimed:
                if part.total > 1 and claimed[part.id] != part.concat_ref:
                    part = replace(part, concat_ref=claimed[part.id])
                batches.setdefault(name, []).append(part)
        stopped = {}
        with self._handover:
            channels = self.channels        # now, not when the parts were chosen
            for name, parts in batches.items():
                if name in channels:
                    self._hand_over(channels[name], parts)
                else:
                    stopped[name] = parts
        for name, parts in stopped.items():
            self._give_back(name, parts)
        moved = len(claimed) - sum(map(len, stopped.values()))
        self.dispatched += moved
        return moved

    @staticmethod
    def _hand_over(channel, parts: list) -> None:
        """In order; a channel that takes batches gets one call (one wake-up of its thread)."""
        submit_batch = getattr(channel, "submit_batch", None)
        if submit_batch is not None:
            submit_batch(parts)
        else:
            for part in parts:
                channel.submit(part)

    def _give_back(self, name: str, parts: list) -> None:
        """Parts claimed for a channel that was stopped or removed while they were being
        claimed (an operator's stop, a reconfiguration): back to the queue at once, in one
        commit; a message pinned to it is then released or resent (_pinned_down)."""
        log.warning("dispatch: %s was stopped while %d parts were claimed for it; they are"
                    " queued again", name, len(parts))
        reason = f"{name} was stopped before the part was handed over"
        self.journal.write_many([lambda p=p: self.journal.part_failed(
            p.id, name, "link_down", reason, True) for p in parts])

    def _choose(self, capacity: int, free: dict[str, int]) -> list:
        """(part, connection) pairs for the free slots. The first read is the size of the
        free slots (a backlog of one-part messages fills them all, nothing read in vain);
        when some of those parts must wait (a message's later parts, a full route), one more
        read looks LOOK_PAST parts further."""
        taken: dict[str, tuple[str, int]] = {}   # message id -> (connection, last seq chosen)
        parts = self.journal.due_parts(limit=capacity)
        chosen = self._assign(parts, free, taken)
        left = capacity - len(chosen)
        if left > 0 and len(parts) == capacity and any(free.values()):
            after = (parts[-1].priority, parts[-1].id)
            more = self.journal.due_parts(limit=left + LOOK_PAST, after=after)
            chosen += self._assign(more, free, taken)
        return chosen

    def _assign(self, parts, free: dict[str, int], taken: dict) -> list:
        """(part, connection) pairs: whole messages through one channel, parts in order."""
        chosen = []
        for part in parts:
            name = self._channel_for(part, taken, free)
            if name is not None:
                free[name] -= 1
                taken[part.message_id] = (name, part.seq)
                chosen.append((part, name))
        return chosen

    def _channel_for(self, part, taken: dict, free: dict[str, int]) -> str | None:
        if part.message_id in taken:
            name, last_seq = taken[part.message_id]
            in_order = part.seq == last_seq + 1
        else:
            name, in_order = part.pinned_to, part.seq == part.next_seq
            if not in_order:
                return None       # an earlier part waits (backoff): this one follows it
            if not name:
                name = self.router.pick(part, free, self._down)
        if not in_order or name is None or name not in self.channels:
            return None
        return name if free.get(name, 0) > 0 else None

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = now
            self._follow_clock_step()
            result = self.journal.housekeeping()
            if result["expired"]:
                log.info("dispatch: %d messages expired before a route was available",
                         result["expired"])
            if result.get("unreported"):
                log.warning("dispatch: %d messages got no delivery report in time; expired",
                            result["unreported"])
            self._settle_stalled()
        if now - self._last_lost_check >= LOST_CHECK_SECONDS:
            self._last_lost_check = now
            try:
                self.lost_parts.check(self.channels)
            except Exception:   # a safety net's fault must not hold up this pass
                log.exception("dispatch: the check for parts channels lost failed")
        if now - self._last_fragment_sweep >= self._fragment_sweep_seconds():
            self._last_fragment_sweep = now
            self.journal.expire_fragments()

    def _follow_clock_step(self) -> None:
        """Before the expiry check: a forward step must not expire what this run accepted
        under the old time (clock_step.py)."""
        step = self._clock_steps.check()
        if not step:
            return
        result = self.journal.clock_stepped(step, self._clock_steps.window,
                                            progress=self._beat)
        log.warning("dispatch: the system clock stepped %s by %s; %d messages accepted before"
                    " keep their validity, %d retries and timers brought back to now",
                    "forward" if step > 0 else "back", _duration(abs(step)), result["moved"],
                    result["brought_back"])

    def _beat(self) -> None:
        """Alive while a long pass makes progress (the watchdog asks `alive`)."""
        self.heartbeat = self.clock.monotonic()

    def _fragment_sweep_seconds(self) -> float:
        # often enough that a partial inbound message shows soon after its configured time
        timeout = getattr(self.journal, "fragment_timeout", FRAGMENT_SWEEP_SECONDS * 4)
        return min(FRAGMENT_SWEEP_SECONDS, max(HOUSEKEEPING_SECONDS, timeout / 4))

    def _settle_stalled(self) -> None:
        for item in self.journal.settle_stalled(self.reroute_after, self._pinned_down()):
            why = item.get("why", "")
            if item["action"] == "resent":
                log.warning("dispatch: message %s stalled on %s%s after %d parts left; resending"
                            " it whole through another channel", item["message_id"],
                            item["connection"], f" ({why})" if why else "", item["duplicates"])
            elif why:
                log.info("dispatch: message %s released from %s, which %s", item["message_id"],
                         item["connection"], why)
            else:
                log.info("dispatch: message %s released from %s, which took none of its"
                         " parts for %gs", item["message_id"], item["connection"],
                         self.reroute_after)

    def _pinned_down(self) -> dict[str, str]:
        """Connections with messages pinned to them that are known down -> why. A connection
        missing from `channels` or `stopped` counts once it stayed so MISSING_SECONDS (an
        operator stop or removal, not the brief gap of a restart or of start-up)."""
        pinned = self.journal.pinned_connections()
        channels, now = self.channels, self.clock.monotonic()
        self._missing_since = {n: t for n, t in self._missing_since.items() if n in pinned}
        down = {}
        for name in pinned:
            channel = channels.get(name)
            why = known_down(channel) if channel is not None else "was stopped or removed"
            if why in ("was stopped or removed", "is stopped"):
                # a channel is briefly absent or `stopped` while it (re)starts: wait to be sure
                since = self._missing_since.setdefault(name, now)
                if now - since < MISSING_SECONDS:
                    continue
            else:
                self._missing_since.pop(name, None)     # back (or never gone)
            if why:
                down[name] = why
        return down


def _duration(seconds: float) -> str:
    days, rest = divmod(round(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"),
                                                   (seconds, "s")) if n) or "0 s"
