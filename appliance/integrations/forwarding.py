"""Forwards of received SMS by e-mail and webhook: off the rules thread, kept across restarts.

The rules thread decides (STOP words, autoreplies, forward SMS) and must never wait on a
network: a slow webhook (10 s a call, and its retries) held up every later SMS, STOP words
with them, so a person who had opted out still got messages for a minute. Jobs wait here,
retried with backoff for about an hour. Every pending job is in the document store before
the rules cursor moves past its SMS (`save`, called by the rules thread), so neither a
restart nor a crash drops one. Each destination (a webhook URL, a mail relay's recipients)
is tried on a thread of its own: a webhook that hangs for its timeout holds up its own
forwards only, not the e-mails.
"""

from __future__ import annotations

import logging
import threading

from appliance.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("appliance.integrations")

STATE_TABLE = "integration_state"
JOBS = "rules_forwards"
RETRY_DELAYS = (30, 60, 120, 300, 600, 1200, 1800)
MAX_JOBS = 1000
POLL_SECONDS = 1.0          # the longest real wait, so a FakeClock's advance is seen soon


class Forwarder:
    """`send(kind, target, context)` delivers one job ("mail" or "url"); it raises OSError
    or ValueError on failure. `documents()` is the document store, or None."""

    def __init__(self, send, documents, counters: dict, *, clock: Clock = SYSTEM_CLOCK):
        self._send = send
        self._documents = documents
        self.counters = counters            # the runner's: "forwarded", "failed"
        self.clock = clock
        self._jobs: list[dict] = []         # kind, target, context, tries, due (wall time)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._changed = False
        self._saved: list[dict] = []
        self._save_lock = threading.Lock()     # one writer of the jobs document at a time
        self._lanes: dict[tuple, threading.Thread] = {}   # destination -> its running thread
        self._thread = threading.Thread(target=self._run, name="rules-forward", daemon=True)

    def start(self) -> None:
        documents = self._documents()
        saved = documents.get(STATE_TABLE, JOBS) if documents else None
        self._jobs = list((saved or {}).get("jobs", []))
        self._saved = [dict(job) for job in self._jobs]
        if self._jobs:
            log.info("rules: %d forwards waiting from before the restart", len(self._jobs))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(15)
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:             # a send in progress ends within its own timeout
            lane.join(15)
        with self._lock:
            self._changed = True
        self.save()

    def add(self, kind: str, target, context: dict) -> None:
        with self._lock:
            if len(self._jobs) >= MAX_JOBS:
                self.counters["failed"] += 1
                log.error("rules: %d forwards already wait; SMS %s is not forwarded by %s",
                          MAX_JOBS, context["id"], kind)
                return
            self._jobs.append({"kind": kind, "target": target, "context": context,
                               "tries": 0, "due": self.clock.now()})
            self._changed = True
        self._wake.set()

    def retrying(self) -> int:
        """Forwards that failed at least once and wait for their next attempt."""
        with self._lock:
            return sum(1 for job in self._jobs if job["tries"] > 0)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()          # before the round: an add() during it is not lost
            try:
                self._attempt_due()
                self.save()
            except Exception:           # a bug here must not end the thread
                log.exception("rules: forwarding round failed")
            self._wake.wait(self._seconds_to_next())

    def _seconds_to_next(self) -> float:
        """Until the next job due on a destination not busy: a job its lane is trying is
        due too, and counting it spun this loop while a webhook hung (the lane's end
        wakes it)."""
        with self._lock:
            waiting = [job["due"] for job in self._jobs if _lane(job) not in self._lanes]
        if not waiting:
            return POLL_SECONDS * 60            # nothing waits: add() and lanes wake it
        return min(POLL_SECONDS, max(0.0, min(waiting) - self.clock.now()))

    def _attempt_due(self) -> None:
        """Start a thread for each destination with due jobs and none running."""
        now = self.clock.now()
        lanes: dict[tuple, list[dict]] = {}
        with self._lock:
            for job in self._jobs:
                lane = _lane(job)
                if job["due"] <= now and lane not in self._lanes:
                    lanes.setdefault(lane, []).append(job)
            for lane, jobs in lanes.items():
                thread = threading.Thread(target=self._run_lane, args=(lane, jobs),
                                          name=f"rules-forward-{lane[0]}", daemon=True)
                self._lanes[lane] = thread
        for lane in lanes:
            self._lanes[lane].start()

    def _run_lane(self, lane: tuple, jobs: list[dict]) -> None:
        try:
            for job in jobs:
                if self._stop.is_set():
                    return
                settled = self._attempt(job)
                with self._lock:
                    if settled:
                        self._jobs.remove(job)
                    self._changed = True
        except Exception:               # a bug here must not keep the lane busy for ever
            log.exception("rules: forwarding to %s failed", lane[0])
        finally:
            with self._lock:
                self._lanes.pop(lane, None)
            self._wake.set()            # save, and the next round

    def _attempt(self, job: dict) -> bool:
        """True when the job is done with (delivered, or given up after the last retry)."""
        kind, context, tries = job["kind"], job["context"], job["tries"]
        try:
            self._send(kind, job["target"], context)
        except (OSError, ValueError) as exc:    # smtplib.SMTPException is an OSError
            # a ValueError is the job's own (no relay configured, a value a mail or URL
            # cannot carry): trying again in an hour changes nothing
            if tries >= len(RETRY_DELAYS) or isinstance(exc, ValueError):
                with self._lock:
                    self.counters["failed"] += 1
                log.error("rules: forwarding SMS %s by %s failed for good: %s",
                          context["id"], kind, exc)
                return True
            log.warning("rules: forwarding SMS %s by %s failed (%s), retry in %ds",
                        context["id"], kind, exc, RETRY_DELAYS[tries])
            with self._lock:
                job["tries"], job["due"] = tries + 1, self.clock.now() + RETRY_DELAYS[tries]
            return False
        with self._lock:
            self.counters["forwarded"] += 1
        return True

    def save(self) -> None:
        """Write the pending jobs if they changed. The rules thread calls it before it moves
        its cursor past the SMS the jobs are for: a job added and not yet tried was only in
        memory, and a crash lost it (the cursor said the SMS was handled). Raises what the
        document store raises; the jobs stay marked changed."""
        with self._save_lock:
            with self._lock:
                if not self._changed:
                    return
                jobs = [dict(job) for job in self._jobs]
                self._changed = False
            if jobs == self._saved:
                return
            documents = self._documents()
            if documents is None:
                return
            try:
                documents.put(STATE_TABLE, {"name": JOBS, "jobs": jobs})
            except Exception:
                with self._lock:
                    self._changed = True
                raise
            self._saved = jobs


def _lane(job: dict) -> tuple:
    """The destination a job waits on: jobs for one are tried one after another."""
    target = job["target"]
    return job["kind"], ",".join(target) if isinstance(target, list) else str(target)
