"""Outbound HTTP callbacks to the LAN with durable retry.

The journal records an event whenever a message with a callback changes state, and for every
inbound SMS. This thread only delivers them: the renderer it is given (by default
`web/callbacks.render`, the table of each dialect's renderers) turns an event into an HTTP
request, 2xx means done, anything else is retried with backoff across restarts, in order per
message, for up to `GIVE_UP_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from appliance.callback_url import destination_of, request_target
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.signing import sign_headers
from appliance.web.callback_kit import FORM, Call

log = logging.getLogger("appliance.notify")

BACKOFF = (10, 30, 60, 120, 300, 600, 900)
GIVE_UP_SECONDS = 3 * 24 * 3600
TIMEOUT_SECONDS = 10
MAX_WORKERS = 8          # destinations served at once; one thread each, only while busy
# Workers kept from destinations that did not answer: endpoints that hang for the whole
# timeout (28 dead hosts in a helper's run) held every worker, and a healthy client's
# callbacks waited 5-37 s behind them. One worker is kept for destinations that answered
# their last call (known from the journal after a restart), a second one from those
# that are failing, so a new receiver waits at most one timeout.
RESERVED_FOR_ANSWERING = 1
RESERVED_FROM_FAILING = 2
KNOWN_ANSWERING = 1024   # destinations remembered as answering (a LAN has a handful)
SWEEP_SECONDS = 60


@dataclass
class Destination:
    """Backoff state of an endpoint that failed (in memory: events keep their own retry)."""

    failures: int = 0
    last_error: str = ""
    until: float = 0.0


class Notifier:
    """Delivers events, isolated per destination (scheme://host:port).

    The loop fetches due events, leaving out destinations that are busy or backing off, and
    hands each destination's events to a worker thread of its own (at most `max_workers`
    at once), which sends them in order and stops at the first failure: that destination
    then waits `BACKOFF[n]` while every other one keeps flowing. Events still pending after
    `give_up_seconds` are given up (state dead), counted in /status.
    """

    def __init__(self, journal, accounts=None, *, clock: Clock = SYSTEM_CLOCK,
                 idle_seconds: float = 1.0, opener=None, max_workers: int = MAX_WORKERS,
                 give_up_seconds: float = GIVE_UP_SECONDS, timeout: float = TIMEOUT_SECONDS,
                 render: Callable[[dict, object], Call | None] | None = None):
        if render is None:
            from appliance.web.callbacks import render
        self._render_event = render          # event, accounts -> Call | None
        self.journal = journal
        self.accounts = accounts
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.max_workers = max_workers
        self.give_up_seconds = give_up_seconds
        self.timeout = timeout
        self._open = opener               # None: urllib's, imported by the first callback
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Thread] = {}      # destination -> its worker
        self._failing: dict[str, Destination] = {}        # destination -> backoff state
        self._answering: dict[str, None] = {}   # destinations whose last call succeeded
        self._last_sweep = 0.0
        self.heartbeat = clock.monotonic()
        self.delivered = 0

    def start(self) -> None:
        # who answered before the restart still counts as answering (the latest events)
        recent = getattr(self.journal, "recent_event_outcomes", None)
        for destination, state in (recent() if recent else []):
            if state == "done":
                self._answering.setdefault(destination, None)
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(self.timeout + 2)
        for worker in list(self._busy.values()):
            worker.join(self.timeout + 2)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def idle(self) -> bool:
        """No destination worker is running (tests and shutdown use it)."""
        with self._lock:
            return not self._busy

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = self.clock.monotonic()
            try:
                started = self.step()
            except Exception:
                log.exception("notify: step failed; retrying")
                started = 0
            if not started:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()

    def step(self) -> int:
        """One pass: give up old events, then start a worker per free destination.
        Returns how many events were handed out or settled."""
        self._sweep()
        skip = self._unavailable()
        if len(self._busy) >= self.max_workers:
            return 0
        events = self.journal.due_events(limit=100, skip_destinations=skip)
        batches: dict[str, list] = {}
        learned: list[tuple[int, str]] = []
        handled = 0
        for event in events:
            call = self._render(event)
            if call is None:                    # nothing to tell this client
                self.journal.event_skipped(event["event_id"])
                handled += 1
                continue
            destination = destination_of(call.url)
            if destination != event["destination"]:
                learned.append((event["event_id"], destination))
            if destination not in skip:
                batches.setdefault(destination, []).append((event, call))
        if learned:
            # An inbound SMS's URL is its user's (it may change), unknown when the event was
            # written: recorded now, so the query leaves it out while that endpoint fails.
            # Without it, 100 inbound events for one dead URL filled every fetch and no other
            # client was told anything (found by a helper).
            self.journal.set_event_destinations(learned)
        for destination, batch in batches.items():
            started = self._start_worker(destination, batch)
            if started is None:
                break                           # every worker is busy
            handled += len(batch) if started else 0
        return handled

    def status(self) -> dict:
        """Counts from the journal, and the destinations that are failing now."""
        health = self.journal.event_health()
        now = self.clock.monotonic()
        with self._lock:
            failing = [{"destination": name, "failures": d.failures, "last_error": d.last_error,
                        "retry_in": max(0, round(d.until - now))}
                       for name, d in sorted(self._failing.items())]
        health["failing_destinations"] = failing
        health["ok"] = not (health["stuck"] or health["given_up_24h"])
        return health

    # --- per destination ---

    def _unavailable(self) -> list[str]:
        now = self.clock.monotonic()
        with self._lock:
            backing_off = [n for n, d in self._failing.items() if d.until > now]
            return sorted(set(self._busy) | set(backing_off))

    def _start_worker(self, destination: str, batch: list) -> bool | None:
        """True when started; False when this destination must wait (it has not answered
        lately and the workers left are reserved); None when no worker is free."""
        with self._lock:
            if len(self._busy) >= self.max_workers:
                return None
            if destination not in self._answering and not self._may_take_a_worker(destination):
                return False
            worker = threading.Thread(target=self._deliver_batch, args=(destination, batch),
                                      name=f"notify-{destination}"[:40], daemon=True)
            self._busy[destination] = worker
        worker.start()
        return True

    def _may_take_a_worker(self, destination: str) -> bool:
        """For a destination that has not answered lately (call under _lock)."""
        unproven = sum(1 for d in self._busy if d not in self._answering)
        if unproven >= self.max_workers - min(RESERVED_FOR_ANSWERING, self.max_workers - 1):
            return False
        if destination not in self._failing:
            return True
        failing = sum(1 for d in self._busy if d in self._failing)
        return failing < self.max_workers - min(RESERVED_FROM_FAILING, self.max_workers - 1)

    def _deliver_batch(self, destination: str, batch: list) -> None:
        try:
            for event, call in batch:
                if self._stop.is_set() or not self._deliver(destination, event, call):
                    break
        except Exception:
            log.exception("notify: worker for %s failed", destination)
        finally:
            with self._lock:
                self._busy.pop(destination, None)
            self._wake.set()

    def _deliver(self, destination: str, event: dict, call: Call) -> bool:
        """Send one event; True when it is settled and the next one may go."""
        error = self._send(self._signed(call, event))
        if error is None:
            self.delivered += 1
            self.journal.event_done(event["event_id"])
            with self._lock:
                self._answering[destination] = None
                while len(self._answering) > KNOWN_ANSWERING:
                    del self._answering[next(iter(self._answering))]
                if self._failing.pop(destination, None):
                    log.info("notify: %s answers again", destination)
            return True
        delay = self._destination_failed(destination, error)
        give_up = self.clock.now() - event["at"] > self.give_up_seconds
        log.warning("notify: %s for %s to %s failed (%s); %s", event["kind"], event["id"],
                    destination, error, "giving up" if give_up else f"retry in {delay}s")
        self.journal.event_retry(event["event_id"], error, delay, give_up)
        return False

    def _destination_failed(self, destination: str, error: str) -> float:
        with self._lock:
            self._answering.pop(destination, None)
            state = self._failing.setdefault(destination, Destination())
            state.failures += 1
            state.last_error = error
            delay = BACKOFF[min(state.failures - 1, len(BACKOFF) - 1)]
            state.until = self.clock.monotonic() + delay
        return delay

    def _sweep(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = now
        given_up = self.journal.give_up_events(self.give_up_seconds)
        if given_up:
            log.warning("notify: gave up %d callback events older than %.0f h", given_up,
                        self.give_up_seconds / 3600)

    # --- one request ---

    def _render(self, event: dict) -> Call | None:
        return self._render_event(event, self.accounts)

    def _signed(self, call: Call, event: dict) -> Call:
        user = self.accounts.get(event.get("user", "")) if self.accounts else None
        secret = (user.settings or {}).get("callback_secret", "") if user else ""
        if not secret:
            return call
        headers = sign_headers(secret, self.clock.now(), call.method, call.url, call.body)
        return Call(call.url, call.method, call.body, {**call.headers, **headers})

    def _send(self, call: Call) -> str | None:
        import http.client
        import urllib.error
        import urllib.request
        opener = self._open or urllib.request.urlopen
        try:
            url, auth = request_target(call.url)
            request = urllib.request.Request(url, data=call.body, method=call.method,
                                             headers={"User-Agent": "sms-appliance",
                                                      **auth, **call.headers})
            with opener(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        return None if 200 <= status < 300 else f"HTTP {status}"

    # --- alerts to the administrator ---

    def admin_alert(self, admin, slot: str, text: str) -> None:
        """A POST to the admin's alert_url (the alert SMS goes through `intake.alert_sms`)."""
        if admin.alert_url:
            body = urllib.parse.urlencode({"slot": slot, "alert": text}).encode()
            threading.Thread(target=self._send, daemon=True,
                             args=(Call(admin.alert_url, "POST", body, FORM),)).start()
