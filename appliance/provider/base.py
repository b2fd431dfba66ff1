"""What the HTTP Client and SMTP channels share: a bounded queue, a fixed set of worker
threads, pacing (LIMITTOMPM), down/up state with a probe and backoff, and the sink calls.

A subclass says how to reach the provider (`probe`), how one part goes out (`send_part`,
returning an `Outcome`) and whether a message leaves whole (`whole_message`). No thread is
made per message: `workers` threads take parts from one queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.model import OutPart
from appliance.provider.whole import WholeMessages
from appliance.uplink.backoff import Backoff

log = logging.getLogger("appliance.provider")

TICK = 0.5
# Delivery reports that named no part of ours (an unknown reference, one that came before
# the submit answer and never found it): kept this long, then dropped. Anyone on the LAN may
# call the report URL, so they must not pile up for ever (SMPP uplinks do the same with
# their own `report_timeout_hours`).
ORPHAN_MAX_AGE = 48 * 3600.0
ORPHAN_SWEEP = 600.0


@dataclass(frozen=True)
class Outcome:
    """How one send ended: `submitted` (with the provider's reference), `failed` (for good),
    `retry` (this part later, the provider is up) or `down` (the provider is unreachable)."""

    kind: str
    reference: str = ""
    code: str = ""
    reason: str = ""


def submitted(reference: str) -> Outcome:
    return Outcome("submitted", reference=reference)


def failed(code: str, reason: str) -> Outcome:
    return Outcome("failed", code=code, reason=reason)


def retry(code: str, reason: str) -> Outcome:
    return Outcome("retry", code=code, reason=reason)


def down(reason: str) -> Outcome:
    return Outcome("down", code="provider_down", reason=reason)


def timed_out(conn, reference: str, reason: str = "") -> Outcome:
    """SUBMITTIMEOUTACTION: what an unanswered submit counts as (the provider may or may
    not have taken it)."""
    action = conn.submittimeoutaction.strip().lower()
    reason = reason or f"no answer within {conn.submittimeout:g}s"
    if action == "submitsuccess":
        return submitted(reference)
    if action == "resend":
        return retry("timeout", reason)
    return failed("timeout", reason)


class QueuedChannel:
    """A `model.Channel` whose parts wait in a queue for `workers` threads."""

    kind = ""

    def __init__(self, conn, sink, *, clock: Clock = SYSTEM_CLOCK, workers: int = 1):
        self.name = conn.name
        self.conn = conn
        self.sink = sink
        self.clock = clock
        self.state = "stopped"
        self.last_error = ""
        self.heartbeat = clock.monotonic()
        self.counts = dict.fromkeys(("submitted", "failed", "retried", "down"), 0)
        self.failures_in_a_row = 0     # failed requests and probes since a send last succeeded
        self._workers_wanted = max(1, workers)
        self._queue: queue.Queue[OutPart | None] = queue.Queue()
        self._busy = 0
        self._lock = threading.Lock()            # busy count and pacing
        self._state_lock = threading.Lock()      # state, backoff, retry time
        self._next_send = 0.0
        self._gap = 60.0 / conn.limittompm if conn.limittompm > 0 else 0.0
        self._backoff = Backoff(conn.reconnectdelay, max(conn.reconnectdelay,
                                                         conn.keepaliveperiod))
        self._retry_at = 0.0
        self._next_sweep = 0.0
        self._whole = WholeMessages(self.name, sink)
        self._wake_dispatcher = lambda: None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the Channel interface (any thread) ---

    def start(self) -> None:
        self.state = "connecting"
        self._threads = [threading.Thread(target=self._supervise, daemon=True,
                                          name=f"{self.kind}-{self.name}")]
        self._threads += [threading.Thread(target=self._work, daemon=True,
                                           name=f"{self.kind}-{self.name}-{i}")
                          for i in range(self._workers_wanted)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for _ in self._threads[1:]:
            self._queue.put(None)
        deadline = time.monotonic() + timeout       # for all of them: one after another,
        for thread in self._threads:                # 16 workers in slow requests took 160 s
            thread.join(max(0.0, deadline - time.monotonic()))
        self._give_back("stopped", "the connection was stopped")
        self.state = "stopped"

    def set_wake(self, wake) -> None:
        self._wake_dispatcher = wake

    def free_slots(self) -> int:
        if self.state != "ready" or not self.conn.send:
            return 0
        with self._lock:
            busy = self._busy
        return max(0, self.conn.windowsize - self._queue.qsize() - busy)

    def submit(self, part: OutPart) -> None:
        self._queue.put(part)

    def alive(self) -> bool:
        fresh = self.clock.monotonic() - self.heartbeat < 30.0
        return fresh and bool(self._threads) and all(t.is_alive() for t in self._threads)

    def status(self) -> dict:
        with self._lock:
            busy = self._busy
        return {"name": self.name, "type": self.conn.type, "state": self.state,
                "failing": self.failing(), "failures_in_a_row": self.failures_in_a_row,
                "queued": self._queue.qsize(), "in_flight": busy,
                "window": {"size": self.conn.windowsize, "in_use": busy},
                "last_error": self.last_error, "counts": dict(self.counts), **self.describe()}

    def failing(self) -> bool:
        """Down, and the probe after the failure failed too: not a passing hiccup, so a
        long message pinned here is sent whole elsewhere at once (channel_down.py)."""
        return self.state == "down" and self.failures_in_a_row >= 2

    # --- for subclasses ---

    def describe(self) -> dict:
        return {}

    def probe(self) -> str:
        """'' when the provider answers, else why not."""
        raise NotImplementedError

    def send_part(self, part: OutPart, whole_text: str | None) -> Outcome:
        raise NotImplementedError

    def whole_message(self, part: OutPart) -> bool:
        """True when this part's message goes out once, whole, with part 1."""
        return False

    def idle(self) -> None:
        """Called by a worker with nothing to do (close idle sessions)."""

    # --- the supervisor thread: probes a provider that is down ---

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            if self.state in ("connecting", "down") and self.clock.monotonic() >= self._retry_at:
                self._try_connect()
            self._sweep_orphans()
            self.clock.wait(self._stop, TICK)

    def _sweep_orphans(self) -> None:
        sweep = getattr(self.sink, "drop_orphan_reports", None)
        if sweep is None or self.clock.monotonic() < self._next_sweep:
            return
        self._next_sweep = self.clock.monotonic() + ORPHAN_SWEEP
        try:
            dropped, _ = sweep(self.name, ORPHAN_MAX_AGE)
        except Exception as exc:      # the store busy or full: the next sweep tries again
            log.warning("%s: could not drop old unmatched reports: %s", self.name, exc)
            return
        if dropped:
            log.info("%s: dropped %d delivery reports that matched no message within %.0f h",
                     self.name, dropped, ORPHAN_MAX_AGE / 3600)

    def _try_connect(self) -> None:
        problem = self.probe()
        with self._state_lock:
            if problem:
                self._went_down(problem, probing=True)
                return
            # The count and the backoff go on until a send succeeds: a provider whose port
            # answers while every request fails (a certificate that does not verify, a
            # TARGETURLBIN host of its own) flapped down/ready, never "failing", at the
            # first backoff step, with the message queued for its whole validity.
            self.state = "ready"
        log.info("%s: %s reachable", self.name, self.describe_target())
        self._wake_dispatcher()

    def describe_target(self) -> str:
        return "provider"

    def _went_down(self, reason: str, probing: bool = False) -> None:
        """Called with `_state_lock` held. Workers that fail together count once."""
        if self.state == "down" and not probing:
            return
        self.failures_in_a_row += 1
        delay = self._backoff.next_delay()
        self._retry_at = self.clock.monotonic() + delay
        if reason != self.last_error or self.state != "down":
            log.warning("%s: %s; trying again in %.1fs", self.name, reason, delay)
        self.last_error = reason
        if self.state != "down":
            self.counts["down"] += 1
        self.state = "down"

    # --- the worker threads ---

    def _work(self) -> None:
        while True:
            try:
                part = self._queue.get(timeout=TICK)
            except queue.Empty:
                if self._stop.is_set():
                    return
                self.idle()
                continue
            if part is None:
                self.idle()
                return
            with self._lock:
                self._busy += 1
            try:
                self._handle(part)
            except Exception as exc:  # one bad part must not end the channel
                log.exception("%s: sending part %s failed", self.name, part.id)
                self._settle_failed(part, "internal", str(exc)[:200], retryable=True)
            finally:
                with self._lock:
                    self._busy -= 1
                self._wake_dispatcher()

    def _handle(self, part: OutPart) -> None:
        if self.state != "ready" or self._stop.is_set():
            self._settle_failed(part, "not_connected", self.last_error or "not connected", True)
            return
        whole = self.whole_message(part)
        if whole and part.seq > 1:
            follow = self._whole.follow(part)
            if follow == "later":
                self._settle_failed(part, "waits_for_part_1", "part 1 has not left yet", True)
            elif follow == "failed":
                self._settle_failed(part, "part_1_failed", "part 1, which carried the whole"
                                    " text, failed", False)
            if follow != "send":
                return
            whole = False                    # part 1 did not leave whole: this segment alone
        text = self._whole_text(part) if whole else None
        if whole:
            self._whole.begin(part)
        if whole and text is None:           # deleted meanwhile: nothing to send
            self._apply(part, failed("gone", "the message is no longer in the store"), True)
            return
        self._pace()
        outcome = self.send_part(part, text)
        self._apply(part, outcome, whole=whole)

    def _whole_text(self, part: OutPart) -> str | None:
        message = self.sink.get_message(part.message_id)
        return message["body"] if message else None

    def _pace(self) -> None:
        if not self._gap:
            return
        with self._lock:
            now = self.clock.monotonic()
            start = max(now, self._next_send)
            self._next_send = start + self._gap
        if start > now:
            self.clock.wait(self._stop, start - now)

    def _apply(self, part: OutPart, outcome: Outcome, whole: bool) -> None:
        if outcome.kind == "submitted":
            self.counts["submitted"] += 1
            if self.failures_in_a_row:
                with self._state_lock:
                    self.failures_in_a_row = 0
                    self._backoff.reset()
            if whole:
                self._whole.succeeded(part, outcome.reference)
            else:
                self.sink.part_submitted(part.id, self.name, outcome.reference)
            return
        if outcome.kind == "down":
            with self._state_lock:
                self._went_down(outcome.reason)
        followers = self._whole.failed(part) if whole else []
        retryable = outcome.kind != "failed"
        if not retryable:
            log.info("%s: part %s of %s failed: %s: %s", self.name, part.seq,
                        part.message_id, outcome.code, outcome.reason)
        for p in [part] + followers:
            self._settle_failed(p, outcome.code, outcome.reason, retryable)
        if outcome.kind == "down":
            self._give_back(outcome.code, outcome.reason)

    def _settle_failed(self, part: OutPart, code: str, reason: str, retryable: bool) -> None:
        self.counts["retried" if retryable else "failed"] += 1
        self.sink.part_failed(part.id, self.name, code, reason, retryable)

    def _give_back(self, code: str, reason: str) -> None:
        """Everything still queued here goes back to the store, to be sent later."""
        while True:
            try:
                part = self._queue.get_nowait()
            except queue.Empty:
                return
            if part is None:            # a stop marker: keep it for its worker
                self._queue.put(None)
                return
            self._settle_failed(part, code, reason, retryable=True)
