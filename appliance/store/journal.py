"""The journal: every message, part, report and inbound SMS, durable in SQLite (WAL).

Writes go through one `GroupWriter` (group commit); reads use a connection per thread.
The journal implements `model.ChannelSink`, so modem workers and the SMPP uplink report
to it directly, and it answers the questions of the dispatcher and the HTTP APIs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from appliance import suspend
from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.model import NewMessage
from appliance.errors import StoreError, ValidationError
from appliance.store.documents import DOCS_NAME
from appliance.model import (FINAL_STATES, InboundFragment, OutPart, Report, ReportStatus,
                             State, out_part_of)
from appliance.store import (accepting, clock_step, counters, dispatch_batch, events, inbox,
                             message_indexes, message_routes, message_state, report_timeout)
from appliance.store import refunds
from appliance.store.refunds import refund_unsent
from appliance.store.schema import DDL, SCHEMA_VERSION
from appliance.store.writer import GroupWriter, connect
from appliance.store import receipt_match

log = logging.getLogger("appliance.store")

DB_NAME = "journal.sqlite3"
STEP_SLICE = 20000      # messages per commit when a clock step moves their times
RETRY_BACKOFF = (5, 15, 30, 60, 120, 300, 600)   # seconds after the n-th transient failure
# The channel, not the part, failed: the part may leave again at once (through another
# channel, or this one when it is back), without the retry delay.
RETRY_AT_ONCE = frozenset({"link_down", "not_bound", "lost"})    # lost: lost_parts.py

_REPORT_STATE = {
    ReportStatus.DELIVERED: State.DELIVERED,
    ReportStatus.FAILED: State.UNDELIVERED,
    ReportStatus.EXPIRED: State.EXPIRED,
}


def retry_delay(attempts: int) -> float:
    return RETRY_BACKOFF[min(max(attempts - 1, 0), len(RETRY_BACKOFF) - 1)]


class Journal:
    """The durable store. Thread-safe: one writer thread, one reader connection per thread."""

    def __init__(self, path: Path, *, clock: Clock = SYSTEM_CLOCK, max_batch: int = 512,
                 dedupe_window: float = 0.0, fragment_timeout: float = 3600.0):
        self.path = Path(path)
        self.clock = clock
        self.dedupe_window = dedupe_window
        self.fragment_timeout = fragment_timeout
        self._writer = GroupWriter(str(self.path), max_batch=max_batch)
        # connection -> seconds a submitted part waits for its report (report_timeout.py)
        self.report_timeouts: dict[str, float | None] = {}
        self._id_base_listeners: dict = {}     # connection -> on_learned (register_id_base)
        self.default_report_timeout = report_timeout.DEFAULT_HOURS * 3600
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.inbound_owner = None      # fragment -> user name (appliance.inbound_owner)
        self.withheld = None           # recipient -> on the do-not-disturb list (control.py)
        self._accepted = 0          # messages accepted since start, for the INFO summary line

    @classmethod
    def open(cls, state_dir: str | Path, **kwargs) -> "Journal":
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / DB_NAME
        if (state_dir / DOCS_NAME).is_file() and not _has_content(path):
            log.warning("store: %s is missing or empty while the state directory holds"
                        " documents: a new, empty journal is made, and messages queued"
                        " before are not in it (restore it from a backup if that is wrong)",
                        path)
        journal = cls(path, **kwargs)
        try:
            journal._writer.start(_migrate)
        except sqlite3.DatabaseError as exc:     # damaged, read-only, a full disk at start
            journal._writer.stop()
            raise StoreError(f"{path}: {exc} (a damaged journal: restore it from a backup or"
                             " move it away; a full or read-only disk: free or fix it)") from None
        return journal

    def close(self) -> None:
        self._writer.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def alive(self) -> bool:
        return self._writer.alive()

    def background_threads(self) -> list:
        """The store's threads no request waits on (thread_priority.step_aside)."""
        return self._writer.background_threads()

    @property
    def commits(self) -> int:
        return self._writer.commits

    # --- plumbing ---

    def _read(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(str(self.path), readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _write(self, fn, timeout: float = 60.0):
        batch = getattr(self._local, "batch", None)
        if batch is not None:           # inside write_many: collected, run in one commit
            batch.append(fn)
            return None
        return self._writer.call(fn, timeout)

    def write_many(self, calls: list, *, wait: bool = True,
                   then=None) -> list[Exception | None] | None:
        """Run sink calls (`part_submitted`, `part_failed`, `report`, `inbound`: methods that
        write and return nothing) in one writer call: one transaction, one fsync, no thread
        per call. Each runs in its own savepoint, so one refused update undoes only itself.
        Returns, per call, None or the exception it raised; durable when it returns.

        `wait=False` queues the writes and returns None at once (errors are logged): for
        results nobody answers for (submit_sm_resp), so the caller's thread goes on sending.
        The writer keeps order, so a later call (a receipt) sees these writes.
        `then(errors)` also returns at once, and is called on the writer thread after the
        commit (or its failure) with the per-call list: for answers that may only leave
        once their writes are durable (deliver_sm_resp), without blocking the caller."""
        fns: list = []
        errors: list[Exception | None] = []
        for call in calls:
            self._local.batch = []
            try:
                call()
                fns.append(self._local.batch)
                errors.append(None)
            except Exception as exc:
                fns.append([])
                errors.append(exc)
            finally:
                self._local.batch = None

        def fn(conn):
            results = []
            for writes in fns:
                try:
                    conn.execute("SAVEPOINT one")
                    for write in writes:
                        write(conn)
                    conn.execute("RELEASE one")
                    results.append(None)
                except Exception as exc:
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    results.append(exc)
            return results
        if then is not None:
            self._writer.submit(fn).add_done_callback(
                lambda future: then(_merge_errors(errors, future)))
            return None
        if not wait:
            self._writer.submit(fn).add_done_callback(_log_refused)
            for error in errors:
                if error is not None:
                    log.error("store: an update was refused: %s", error)
            return None
        for i, error in enumerate(self._writer.call(fn, 60.0)):
            errors[i] = errors[i] or error
        return errors

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self._read().execute(sql, params).fetchall()

    def long_query(self, sql: str, params=()) -> list[sqlite3.Row]:
        """A read that may scan or sort much of the journal (a folder view, a report: 0.3-0.6 s
        at 1M messages): inside an HTTP request it runs off the loop's thread
        (`suspend.blocking`), so the other requests are answered meanwhile."""
        return suspend.blocking(self.query, sql, params)

    # --- accepting -------------------------------------------------------------------

    def accept(self, messages: list[NewMessage]) -> list[str | ValidationError]:
        """Store messages durably, debit credits per part; one result per message.

        Returns the message id, or the ValidationError (no credit, duplicate) that refused it.
        Returns only after the commit, so an id returned here survives a power cut. The
        rows are written by `accepting.Accept` (with the other accepts of the same commit).
        """
        results = self._write(accepting.Accept(messages, self.clock.now(), self.dedupe_window))
        with self._readers_lock:
            self._accepted += len([r for r in results if isinstance(r, str)])
        return results

    @property
    def accepted(self) -> int:
        """Messages accepted since this journal was opened (per-message lines are DEBUG)."""
        return self._accepted

    # --- the dispatcher's side ---------------------------------------------------------

    def due_parts(self, limit: int = 200, after: tuple[int, int] | None = None) -> list[OutPart]:
        """Queued parts in send order (priority, then acceptance), due now; `after` a
        (priority, id) already read: the page after it."""
        cursor = self._read().cursor()
        cursor.row_factory = None       # by position: sqlite3.Row looks names up linearly
        rows = cursor.execute(_DUE_PARTS.format(after=" AND (p.priority, p.id) > (?, ?)"
                                                if after else ""),
                              (self.clock.now(), *(after or ()), limit)).fetchall()
        return [_out_part(r) for r in rows]

    def sending_on(self, connection: str) -> list[int]:
        """The parts claimed for `connection` and not yet settled or given back
        (lost_parts.py): a few hundred at most, found through parts_sending."""
        return [r[0] for r in self._read().execute(
            "SELECT id FROM parts WHERE state='sending' AND connection=?", (connection,))]

    def claim(self, assignments: list[tuple[int, str]]) -> list[int]:
        """Mark parts as sending on their connection; returns the ids actually claimed."""
        return list(self.claim_whole(assignments))

    def claim_whole(self, assignments: list[tuple]) -> dict[int, int]:
        """Claim parts as `claim` does, pinning each message to its connection for all its
        parts (store/message_routes.py). Returns {part id: concatenation reference} for the
        parts claimed; a part whose message is pinned elsewhere, or for which no reference is
        free, stays queued. An assignment is (part id, connection), or (part id, connection,
        message id, total) from a due part, which saves the writer a lookup per part."""
        now = self.clock.now()
        # One-part messages are claimed set-wise, per connection (store/dispatch_batch.py);
        # multi-part messages open their round part by part, as before.
        single: dict[str, list[int]] = {}
        other = []
        for assignment in assignments:
            if len(assignment) == 4 and assignment[3] == 1:
                single.setdefault(assignment[1], []).append(assignment[0])
            else:
                other.append(assignment)

        def fn(conn):
            claimed = {}
            for connection, part_ids in single.items():
                for part_id in dispatch_batch.claim_one_part(conn, connection, part_ids, now):
                    claimed[part_id] = 0
            settle: dict[str, str] = {}     # long message -> its connection, settled once
            rounds: dict[tuple[str, str], int | None] = {}   # its round's reference, asked once
            for part_id, connection, *known in other:
                message_id, total = known if known else _message_and_total(conn, part_id)
                ref = 0
                if total > 1:
                    key = (message_id, connection)
                    if key not in rounds:
                        rounds[key] = message_routes.open_round(conn, message_id, connection,
                                                                now)
                    ref = rounds[key]
                if ref is None:
                    continue
                cur = conn.execute("UPDATE parts SET state='sending', connection=?,"
                                   " attempts=attempts+1 WHERE id=? AND state='queued'",
                                   (connection, part_id))
                if cur.rowcount:
                    claimed[part_id] = ref
                    if total == 1:
                        message_state.refresh(conn, message_id, now, connection,
                                              states=["sending"])
                    else:
                        settle[message_id] = connection
            for message_id, connection in settle.items():
                message_state.refresh(conn, message_id, now, connection)
            return claimed
        return self._write(fn)

    def settle_stalled(self, grace: float, down: dict[str, str] | None = None) -> list[dict]:
        """Release or resend whole the messages whose channel made no progress for `grace`
        seconds, or whose channel is known down (`down`: connection -> why) (the failover
        policy in store/message_routes.py)."""
        now = self.clock.now()
        if not down and not self.query("SELECT 1 FROM message_routes WHERE ended IS NULL AND"
                                       " started<? LIMIT 1", (now - grace,)):
            return []
        return self._write(lambda conn: message_routes.settle_stalled(conn, now, grace, down))

    def in_use(self) -> bool:
        """Whether any message was ever accepted into this store (one row read)."""
        return bool(self.query("SELECT 1 FROM messages LIMIT 1"))

    def pinned_connections(self) -> set[str]:
        """Connections that long messages in flight are pinned to (cheap: partial index)."""
        return {r[0] for r in self.query("SELECT DISTINCT connection FROM message_routes"
                                         " WHERE ended IS NULL")}

    def housekeeping(self) -> dict:
        """Promote scheduled parts that are due and expire those past their validity."""
        now = self.clock.now()
        unreported = report_timeout.any_due(self._read(), now, self.report_timeouts,
                                            self.default_report_timeout)
        if not unreported and not self._housekeeping_due(now):
            return {"promoted": 0, "expired": 0, "unreported": 0}
        timeouts, default = dict(self.report_timeouts), self.default_report_timeout
        return self._write(lambda conn: {
            "promoted": message_state.promote_scheduled(conn, now),
            "expired": message_state.expire_overdue(conn, now),
            "unreported": report_timeout.expire_unreported(conn, now, timeouts, default)
            if unreported else 0,
        })

    def _housekeeping_due(self, now: float) -> bool:
        # A cheap indexed read first, so an idle appliance does not fsync every second.
        return bool(self.query(
            "SELECT 1 FROM parts WHERE state='scheduled' AND next_attempt<=? UNION ALL"
            " SELECT 1 FROM parts WHERE state IN ('queued','scheduled') AND valid_until<? LIMIT 1",
            (now, now)))

    def clock_stepped(self, step: float, window: tuple[float, float],
                      progress=lambda: None) -> dict:
        """The wall clock stepped by `step` seconds; `window` holds the (old) times this run
        stamped before it (store/clock_step.py). A forward step moves those times by the
        step, the messages in slices of STEP_SLICE rowids, one commit each, `progress()`
        called after each; any step brings back retries and timers it left in the future."""
        now = self.clock.now()
        moved = 0
        if step > 0:        # what was stamped up to half the step after the last check
            start, end = window[0], window[1] + step / 2
            first, last = self.query("SELECT min(rowid), max(rowid) FROM messages")[0]
            for low in range(first or 0, (last or -1) + 1, STEP_SLICE):
                moved += self._write(lambda conn, low=low: clock_step.shift_forward(
                    conn, step, start, end, (low, low + STEP_SLICE - 1)))
                progress()
            self._write(lambda conn: clock_step.shift_timers(conn, step, start, end))
        return {"moved": moved,
                "brought_back": self._write(lambda conn: clock_step.bring_back(conn, now))}

    def requeue_inflight(self) -> int:
        """After a crash, parts left in `sending` go back to the queue (at-least-once)."""
        now = self.clock.now()
        return self._write(lambda conn: message_state.requeue_sending(conn, now))

    # --- ChannelSink -----------------------------------------------------------------

    def part_submitted(self, part_id: int, connection: str, reference: str, *,
                       whole_message: bool = False) -> None:
        """`whole_message`: the submit carried the whole message (SMPP message_payload), so
        every part of it not yet submitted is submitted with this reference: one receipt
        settles them all, also after a restart."""
        now = self.clock.now()
        self._write(lambda conn: self._record_submitted(conn, part_id, connection, reference,
                                                        whole_message, now))

    def parts_submitted(self, connection: str, results: list[tuple[int, str]]) -> None:
        """Many `part_submitted(part_id, connection, reference)` in one write: one-part
        parts set-wise (store/dispatch_batch.py), the rest (parts of long messages, a part
        whose message was purged meanwhile, one no longer in flight) one by one as
        `part_submitted` records them."""
        now = self.clock.now()

        def fn(conn):
            done = dispatch_batch.record_submitted(conn, connection, results, now)
            if len(done) < len(results):
                taken = {part_id for part_id, _ in done}
                self._record_submitted_parts(conn, connection, now, [
                    (part_id, reference) for part_id, reference in results
                    if part_id not in taken])
            if done and receipt_match.any_orphans(conn):
                for _, reference in done:
                    for report in _take_orphans(conn, connection, reference):
                        self._apply_report(conn, report, now)
        self._write(fn)

    def _record_submitted_parts(self, conn, connection: str, now: float,
                                results: list[tuple[int, str]]) -> None:
        """The results the set-wise path left: mostly parts of long messages. Each part is
        recorded, then each message's state and round are settled once for all its parts
        here, not once per part (a 4-part message read its parts 4 times). With receipts
        waiting for a reference (orphans), part by part as `_record_submitted` does, so a
        receipt applies after its own part's record, as before."""
        if receipt_match.any_orphans(conn):
            for part_id, reference in results:
                self._record_submitted(conn, part_id, connection, reference, False, now)
            return
        settle: dict[str, int] = {}     # message id -> parts total, in the order first seen
        recorded = dispatch_batch.record_submitted_long(conn, connection, results, now)
        for part_id, reference in results:
            marked = recorded.get(part_id)
            if marked is None:      # not in flight any more, or gone: as it always was
                marked = _mark_submitted(conn, part_id, connection, reference, False, now)
            if marked is None:
                continue
            if marked[1] == 1:          # a one-part message's part no longer in flight
                self._settle_submitted(conn, *marked, connection, reference, now)
            else:
                settle.setdefault(marked[0], marked[1])
        for message_id, total in settle.items():
            message_state.refresh(conn, message_id, now, connection)
            message_routes.part_submitted(conn, message_id, total, now)

    def _record_submitted(self, conn, part_id: int, connection: str, reference: str,
                          whole_message: bool, now: float) -> None:
        marked = _mark_submitted(conn, part_id, connection, reference, whole_message, now)
        if marked is not None:
            self._settle_submitted(conn, *marked, connection, reference, now)

    def _settle_submitted(self, conn, message_id: str, total: int, updated: int,
                          connection: str, reference: str, now: float) -> None:
        """A recorded part's message: its state, its round, receipts that came first."""
        known = ["submitted"] if total == 1 and updated == 1 else None
        message_state.refresh(conn, message_id, now, connection, states=known)
        message_routes.part_submitted(conn, message_id, total, now)
        for report in _take_orphans(conn, connection, reference):
            self._apply_report(conn, report, now)

    def register_id_base(self, connection: str, setting: str, on_learned=None) -> str:
        """Record an SMPP connection's `messageidbase`; returns the convention learned for
        it before (durable, "" if none). `on_learned(convention)` is called (on the writer
        thread) when its receipts turn out to use another one (receipt_match.other_readings)."""
        if on_learned is not None:
            self._id_base_listeners[connection] = on_learned
        return self._write(lambda conn: receipt_match.set_id_base(conn, connection, setting))

    def id_letters_seen(self, connection: str, side: str) -> None:
        """An SMPP connection's `side` ("resp" or "receipt") showed a hex letter in an id:
        what tells a mixed-base SMSC from one that uses one base (receipt_match.plausible).
        Letters on both sides: the account learns "hex" (receipt_match.hex_throughout)."""
        now = self.clock.now()

        def note(conn) -> None:
            receipt_match.set_letters(conn, connection, side)
            if receipt_match.hex_throughout(conn, connection):
                self._learned(conn, connection, "hex", now)
        self._write(note)

    def _part_by_other_reading(self, conn, report: Report, now: float):
        found = receipt_match.part_by_other_reading(conn, report.connection, report.reference,
                                                    report.recipient)
        if found is None:
            return None, report
        part, reference, convention = found
        self._learned(conn, report.connection, convention, now)
        # siblings sent whole share the reference the part was recorded with
        return part, dataclasses.replace(report, reference=reference)

    def _learned(self, conn, connection: str, convention: str, now: float) -> None:
        """The account of `connection` reads ids by `convention`: tell its channels."""
        for name in receipt_match.learn(conn, connection, convention, now):
            listener = self._id_base_listeners.get(name)
            if listener is not None:
                try:
                    listener(convention)
                except Exception:       # a channel's trouble must not undo the receipt
                    log.exception("store: %s: could not pass on the learned id base", name)

    def register_smsc_account(self, connection: str, account: str) -> None:
        """Receipts on any connection of `account` match parts sent by any other of it."""
        self._write(lambda conn: receipt_match.set_account(conn, connection, account))

    def orphans_waiting(self, connection: str) -> int:
        """Receipts that came on `connection` and wait for their part (/status)."""
        return self.query("SELECT count(*) AS n FROM orphan_reports WHERE connection=?",
                          (connection,))[0]["n"]

    def drop_orphan_reports(self, connection: str, max_age: float) -> tuple[int, int]:
        """Drop receipts that came on `connection` more than `max_age` seconds ago and never
        found their part; returns (dropped, still waiting). Reads first: no idle fsync."""
        older_than = self.clock.now() - max_age
        waiting = self.orphans_waiting(connection)
        stale = self.query("SELECT 1 FROM orphan_reports WHERE connection=? AND received<?"
                           " LIMIT 1", (connection, older_than))
        if not stale:
            return 0, waiting
        dropped = self._write(lambda conn: receipt_match.drop_orphans(conn, connection,
                                                                      older_than))
        return dropped, waiting - dropped

    def part_failed(self, part_id: int, connection: str, code: str, reason: str,
                    retryable: bool) -> None:
        now = self.clock.now()

        def fn(conn):
            row = conn.execute("SELECT attempts, tried, message_id, seq FROM parts WHERE id=?",
                               (part_id,)).fetchone()
            if row is None:
                _log_vanished(connection, part_id, f"failed ({code})")
                return
            if code == "expired":       # the channel saw its validity end: expired, not failed
                conn.execute("UPDATE parts SET state='expired', done_at=?, reason=? WHERE id=?",
                             (now, f"{code}: {reason}", part_id))
                refund_unsent(conn, row["message_id"], 1, "expired before it was sent", now)
            elif retryable:
                tried = _add_tried(row["tried"], connection)
                delay = 0.0 if code in RETRY_AT_ONCE else retry_delay(row["attempts"])
                conn.execute("UPDATE parts SET state='queued', next_attempt=?, reason=?,"
                             " tried=? WHERE id=? AND state='sending'",
                             (now + delay, f"{code}: {reason}", tried, part_id))
            else:
                conn.execute("UPDATE parts SET state='failed', done_at=?, reason=? WHERE id=?",
                             (now, f"{code}: {reason}", part_id))
            message_id, total = _message_and_total(conn, part_id)
            if retryable and self._withheld(conn, message_id):
                message_state.withhold(conn, message_id, now)
            if not retryable and code != "expired" and total > 1:     # (the rest expire too)
                message_state.fail_unsent(conn, message_id, row["seq"], total,
                                          f"{code}: {reason}", now)
            if not (retryable and message_state.cancel_if_deleted(conn, message_id, now)):
                message_state.refresh(conn, message_id, now, connection)
            message_routes.part_failed(conn, message_id, connection, retryable, total, now)
        self._write(fn)

    def report(self, report: Report) -> None:
        now = self.clock.now()
        self._write(lambda conn: self._apply_report(conn, report, now))

    def _apply_report(self, conn, report: Report, now: float) -> None:
        part, report = _part_by_reference(conn, report)
        if part is None:        # only on a miss: an "auto" SMSC id read the other ways
            part, report = self._part_by_other_reading(conn, report, now)
        if part is None and _purged(conn, report):
            log.info("store: %s: report for reference %s of a purged message dropped",
                     report.connection, report.reference)
            return
        if part is None and message_routes.is_retired(conn, report.connection, report.reference):
            return      # for a part of a message since resent whole: it settles nothing
        if part is None:
            conn.execute("INSERT INTO orphan_reports VALUES (?,?,?,?)",
                         (report.connection, report.reference,
                          json.dumps(_report_dict(report), separators=(",", ":")), now))
            return
        new_state = _REPORT_STATE.get(report.status)
        if new_state is None:          # pending: the SMSC keeps trying; nothing final yet
            return
        reason = "" if new_state == State.DELIVERED else (report.detail or f"status {report.code}")
        if new_state != State.DELIVERED and report.code:
            # the operator's own code (TP-ST, the receipt's err:) is the callbacks'
            # $statuscode on a failure: set before the state change records its event
            conn.execute("UPDATE messages SET code=? WHERE id=?",
                         (str(report.code), part["message_id"]))
        # parts of one message that share the reference (sent whole) share the receipt;
        # the part's connection, not the receipt's: a receiver bind reports for a transmitter
        conn.execute("UPDATE parts SET state=?, done_at=?, reason=? WHERE id=? OR (message_id=?"
                     " AND connection=? AND reference=? AND state IN ('submitted','sending'))",
                     (new_state.value, report.done_at or now, reason, part["id"],
                      part["message_id"], part["connection"], report.reference))
        message_state.refresh(conn, part["message_id"], now, part["connection"])

    def inbound(self, fragment: InboundFragment) -> str | None:
        """Keep a received SMS; the inbox id once it is whole (None for a part or a repeat)."""
        now = self.clock.now()
        owner = self._owner_of(fragment)    # before the writer: it reads the users
        return self._write(lambda conn: inbox.receive(conn, fragment, now,
                                                      owner_of=lambda _msg: owner))

    def inbound_once(self, fragment: InboundFragment,
                     provider_id: str) -> tuple[str | None, bool]:
        """Keep a whole SMS a provider may send again: (inbox id, whether it is a repeat);
        a repeat is not stored again and gets the first one's id (inbox.receive_once)."""
        now = self.clock.now()
        owner = self._owner_of(fragment)
        return self._write(lambda conn: inbox.receive_once(conn, fragment, provider_id, now,
                                                           owner_of=lambda _msg: owner))

    def expire_fragments(self) -> int:
        """Deliver long inbound messages whose missing parts never came, marked as such."""
        now = self.clock.now()
        return self._write(lambda conn: inbox.expire(conn, now, self.fragment_timeout,
                                                     self._owner_of))

    def _owner_of(self, fragment: InboundFragment) -> str:
        """The user an inbound SMS is filed under; the admin if that cannot be decided."""
        if self.inbound_owner is None:
            return inbox.INBOUND_USER
        try:
            return self.inbound_owner(fragment) or inbox.INBOUND_USER
        except Exception:        # a received SMS is never lost over whose inbox it is
            log.exception("store: cannot tell whose SMS from %s is; filed under %s",
                          fragment.connection, inbox.INBOUND_USER)
            return inbox.INBOUND_USER

    def route_history(self, message_id: str) -> list[dict]:
        """The message's rounds: which channel, which reference, how each ended."""
        return message_routes.history(self._read(), message_id)

    def channels_used(self, message_ids: list[str]) -> dict[str, list[str]]:
        return message_routes.channels_used(self._read(), list(message_ids))

    def duplicate_parts(self, message_id: str) -> int:
        return message_routes.duplicates(self._read(), message_id)

    def routes_summary(self) -> dict:
        return message_routes.summary(self._read())

    def sent_count_since(self, connection: str, since: float) -> int:
        row = self.query("SELECT count(*) AS n FROM parts WHERE connection=? AND submitted_at>=?",
                         (connection, since))
        return row[0]["n"]

    # --- queries for the APIs ---------------------------------------------------------

    def get_message(self, message_id: str) -> dict | None:
        rows = self.query("SELECT * FROM messages WHERE id=?", (message_id,))
        return dict(rows[0]) if rows else None

    def get_parts(self, message_id: str) -> list[dict]:
        return [dict(r) for r in self.query(
            "SELECT id, seq, total, state, connection, reference, attempts, submitted_at,"
            " done_at, reason FROM parts WHERE message_id=? ORDER BY seq", (message_id,))]

    def folder(self, user: str | None, folder: str, limit: int = 100, *,
               unread_only: bool = False) -> list[dict]:
        return [dict(r) for r in self.long_query(*inbox.folder_query(user, folder, limit,
                                                                     unread_only))]

    def mark_read(self, ids: list[str], user: str | None = None) -> list[str]:
        return self._write(lambda conn: inbox.set_flag(conn, ids, user, "is_read"))

    def claim_unread(self, ids: list[str], user: str | None = None) -> list[str]:
        return self._write(lambda conn: inbox.claim_unread(conn, ids, user))

    def delete_messages(self, ids: list[str], user: str | None = None) -> list[str]:
        now = self.clock.now()
        return self._write(lambda conn: inbox.set_flag(conn, ids, user, "deleted", now))

    def purge_deleted(self, user: str | None, folder: str) -> int:
        """Empty a folder (`inbox.purge_batch`), a batch per transaction: accepts, results
        and reports are written between two. One transaction for a million messages held
        the writer, and so every request, for a minute. Messages accepted after the purge
        began are not touched."""
        now = self.clock.now()
        last = self.query("SELECT max(rowid) AS last FROM messages")[0]["last"] or 0
        total, after = 0, 0
        while after is not None:
            count, after = self._write(
                lambda conn, after=after: inbox.purge_batch(conn, user, folder, after, last, now))
            total += count
        return total

    def summary(self, direction: str, *, user: str | None = None, connection: str | None = None,
                since: float | None = None, until: float | None = None) -> list[dict]:
        """Message counts per user (and parts) for the reporting API; read-only."""
        where, params = ["direction=?"], [direction]
        for column, value, op in (("user", user, "="), ("connection", connection, "="),
                                  ("created", since, ">="), ("created", until, "<")):
            if value is not None:
                where.append(f"{column}{op}?")
                params.append(value)
        return [dict(r) for r in self.long_query(
            "SELECT user, count(*) AS messages, coalesce(sum(parts_total),0) AS parts,"
            " sum(state IN ('submitted','delivered')) AS sent,"
            " sum(state IN ('failed','undelivered','expired')) AS notsent"
            f" FROM messages WHERE {' AND '.join(where)} GROUP BY user ORDER BY user", params)]

    def stats(self) -> dict:
        """Counters kept by the journal's triggers and a few index seeks: O(1) in queue depth."""
        conn = self._read()
        queued = counters.counts(conn, "parts")
        oldest_t = counters.oldest_waiting_created(conn)
        return {
            "parts_by_state": queued,
            "waiting": queued.get("queued", 0) + queued.get("sending", 0),
            "scheduled": queued.get("scheduled", 0),
            "oldest_waiting_age": None if oldest_t is None else round(self.clock.now() - oldest_t, 1),
            "commits": self._writer.commits,
        }

    def _withheld(self, conn, message_id: str) -> bool:
        """Whether a part handed back may not go again: its recipient was put on the
        do-not-disturb list while it was in flight (`withheld` is the list's check, set by
        the control plane; without it, nothing is withheld), and no other part of its
        message has left (then it follows them: message_state.started)."""
        if self.withheld is None:
            return False
        row = conn.execute("SELECT recipient FROM messages WHERE id=?", (message_id,)).fetchone()
        return row is not None and self.withheld(row[0]) \
            and not message_state.started(conn, message_id)

    def withhold_from(self, entry: str) -> int:
        """Messages waiting for a number (or range) just put on the do-not-disturb list are
        failed before they leave; how many."""
        now = self.clock.now()
        return self._write(lambda conn: message_state.fail_unsent_to(conn, entry, now))

    def retire_user(self, user: str) -> dict:
        """A deleted user: its messages and ledger are archived under a name no new user can
        take, its unsent parts cancelled and its balance dropped (see store/users.py)."""
        from appliance.store import users
        now = self.clock.now()
        return self._write(lambda conn: users.retire(conn, user, now))

    # --- credits ---------------------------------------------------------------------

    def balance(self, user: str) -> int:
        rows = self.query("SELECT balance FROM balances WHERE user=?", (user,))
        return rows[0]["balance"] if rows else 0

    def unlimited(self, user: str) -> bool:
        """Unlimited sending: a per-user setting beside the balance, never a balance value.
        A user without a credit account (no balance row) is not metered either."""
        return bool(self.query("SELECT 1 FROM unlimited_users WHERE user=?", (user,))) or \
            not self.has_balance(user)

    def set_unlimited(self, user: str, on: bool) -> None:
        sql = ("INSERT OR IGNORE INTO unlimited_users(user) VALUES (?)" if on else
               "DELETE FROM unlimited_users WHERE user=?")
        self._write(lambda conn: conn.execute(sql, (user,)))

    def set_balance(self, user: str, balance: int, reason: str = "set") -> int:
        _check_credit_range(balance)
        now = self.clock.now()

        def fn(conn):
            old = conn.execute("SELECT balance FROM balances WHERE user=?", (user,)).fetchone()
            conn.execute("INSERT INTO balances(user, balance) VALUES (?,?) ON CONFLICT(user)"
                         " DO UPDATE SET balance=excluded.balance", (user, balance))
            delta = balance - (old["balance"] if old else 0)
            conn.execute("INSERT INTO ledger(user, delta, reason, at) VALUES (?,?,?,?)",
                         (user, delta, reason, now))
            return balance
        return self._write(fn)

    def add_balance(self, user: str, amount: int) -> int:
        """Add (or, negative, deduct) credits; ValueError if the result leaves the seed's int."""
        now = self.clock.now()

        def fn(conn):
            row = conn.execute("SELECT balance FROM balances WHERE user=?", (user,)).fetchone()
            new = (row["balance"] if row else 0) + amount
            _check_credit_range(new)
            conn.execute("INSERT INTO balances(user, balance) VALUES (?,?) ON CONFLICT(user)"
                         " DO UPDATE SET balance=excluded.balance", (user, new))
            conn.execute("INSERT INTO ledger(user, delta, reason, at) VALUES (?,?,?,?)",
                         (user, amount, "add", now))
            return new
        return self._write(fn)

    def has_balance(self, user: str) -> bool:
        return bool(self.query("SELECT 1 FROM balances WHERE user=?", (user,)))

    def ensure_balance(self, user: str, balance: int) -> None:
        """Provisioning: set a starting balance once; later API changes win."""
        self._write(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO balances(user, balance) VALUES (?,?)", (user, balance)))

    # --- events for the notifier -------------------------------------------------------

    def recent_event_outcomes(self, limit: int = 500) -> list[tuple[str, str]]:
        """(destination, state) of each destination's latest event among the last `limit`
        (by rowid: the newest rows, no scan)."""
        rows = self.query("SELECT destination, state FROM (SELECT destination, state, id FROM"
                          " events ORDER BY id DESC LIMIT ?) WHERE destination IS NOT NULL"
                          " AND destination<>'' ORDER BY id", (limit,))
        latest: dict[str, str] = {}
        for row in rows:
            latest[row["destination"]] = row["state"]
        return list(latest.items())

    def due_events(self, limit: int = 50, skip_destinations=()) -> list[dict]:
        """Due events, earliest per message; each carries the values of its own moment."""
        now = self.clock.now()
        skip = list(skip_destinations)
        return [events.apply_snapshot(dict(r)) for r in self.query(
            events.due_sql(len(skip)), (now, *skip, limit))]

    def event_done(self, event_id: int) -> None:
        self._write(lambda conn: conn.execute("UPDATE events SET state='done' WHERE id=?",
                                              (event_id,)))

    def set_event_destinations(self, pairs: list[tuple[int, str]]) -> None:
        """(event id, destination) pairs: where each event's callback goes now."""
        self._write(lambda conn: conn.executemany(
            "UPDATE events SET destination=? WHERE id=?", [(d, i) for i, d in pairs]))

    def event_skipped(self, event_id: int) -> None:
        """An event its client's dialect has nothing to say about (`sending`, an inbound
        message without an inbound URL): settled without a request, not counted as one
        delivered (sms_callbacks_delivered_total)."""
        self._write(lambda conn: conn.execute("UPDATE events SET state='skipped' WHERE id=?",
                                              (event_id,)))

    def event_retry(self, event_id: int, error: str, delay: float, give_up: bool) -> None:
        now = self.clock.now()
        self._write(lambda conn: conn.execute(
            "UPDATE events SET attempts=attempts+1, last_error=?, next_attempt=?, state=?,"
            " given_up_at=? WHERE id=?", (error[:300], now + delay,
                                          "dead" if give_up else "pending",
                                          now if give_up else None, event_id)))

    def give_up_events(self, max_age: float) -> int:
        """Events still pending after `max_age` seconds are given up (marked dead)."""
        now = self.clock.now()
        return self._write(lambda conn: events.give_up_older_than(conn, now - max_age, now))

    def event_health(self) -> dict:
        return events.health(self._read(), self.clock.now())

    def pending_events(self) -> int:
        return counters.counts(self._read(), "events").get("pending", 0)


# --- helpers ------------------------------------------------------------------------------


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"journal schema {version} is newer than this software ({SCHEMA_VERSION})")
    legacy_credits = _has_table(conn, "balances") and not _has_table(conn, "unlimited_users")
    conn.executescript(DDL)
    if legacy_credits:
        _migrate_unlimited_balances(conn)
    receipt_match.migrate(conn)
    counters.install(conn)
    message_indexes.migrate(conn)
    clock_step.migrate(conn)
    conn.executescript(message_routes.DDL)
    events.migrate(conn)
    report_timeout.migrate(conn)
    refunds.migrate(conn)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    _restrict(conn.execute("PRAGMA database_list").fetchone()[2])


def _restrict(path: str) -> None:
    """The journal holds numbers and texts: not for other users. Its -wal and -shm files
    were made at the first open with the umask's mode (0644 outside systemd's UMask) and
    SQLite gives later ones the database file's mode, so all three are set here."""
    for name in (path, path + "-wal", path + "-shm"):
        try:
            os.chmod(name, 0o640)
        except FileNotFoundError:
            pass


CREDIT_MIN, CREDIT_MAX = -2**31, 2**31 - 1     # seed 003: the balance is an "int value"


def _check_credit_range(balance: int) -> None:
    if not CREDIT_MIN <= balance <= CREDIT_MAX:
        raise ValueError(f"a balance must be between {CREDIT_MIN} and {CREDIT_MAX}")


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (name,)).fetchone() is not None


def _migrate_unlimited_balances(conn) -> None:
    """Once, from journals written when a balance of -1 meant unlimited: make those users
    unlimited by the setting, with a balance of 0."""
    conn.execute("INSERT OR IGNORE INTO unlimited_users(user) SELECT user FROM balances"
                 " WHERE balance=-1")
    conn.execute("UPDATE balances SET balance=0 WHERE balance=-1")


def _purged(conn, report: Report) -> bool:
    """A report for a part purged with its message: forget the reference once it is used."""
    names = receipt_match.peers(conn, report.connection)     # any bind of the SMSC account
    row = conn.execute(f"SELECT rowid FROM purged_refs WHERE connection IN"
                       f" ({','.join('?' * len(names))}) AND reference=? ORDER BY at LIMIT 1",
                       (*names, report.reference)).fetchone()
    if row is None:
        return False
    if report.status != ReportStatus.PENDING:     # a final report ends the reference's life
        conn.execute("DELETE FROM purged_refs WHERE rowid=?", (row[0],))
    return True


def _log_vanished(connection: str, part_id: int, what: str) -> None:
    # The message was purged while a channel held this part: nothing left to update.
    log.info("store: %s: part %s %s, but its message was purged; result dropped",
             connection, part_id, what)


def _merge_errors(errors: list, future) -> list:
    """Per call: the error raised while collecting its writes, else the one from the commit."""
    try:
        results = future.result()
    except Exception as exc:            # the whole commit failed
        return [error or exc for error in errors]
    return [error or result for error, result in zip(errors, results)]


def _log_refused(future) -> None:
    try:
        results = future.result()
    except Exception as exc:
        log.error("store: %s", exc)
        return
    for error in results or ():
        if error is not None:
            log.error("store: an update was refused: %s", error)


def _mark_submitted(conn, part_id: int, connection: str, reference: str, whole_message: bool,
                    now: float) -> tuple[str, int, int] | None:
    """Record the part `submitted` under `reference` (with `whole_message`, every part that
    shares it); (message id, parts total, rows updated), or None for a part gone with its
    purged message (its reference is kept for a receipt that may still come)."""
    row = conn.execute("SELECT message_id, total FROM parts WHERE id=?", (part_id,)).fetchone()
    if row is None:
        _log_vanished(connection, part_id, f"submitted (reference {reference})")
        conn.execute("INSERT INTO purged_refs VALUES (?,?,?)", (connection, reference, now))
        return None
    where = ("message_id=(SELECT message_id FROM parts WHERE id=?)" if whole_message
             else "id=?")
    cur = conn.execute("UPDATE parts SET state='submitted', connection=?, reference=?,"
                       f" submitted_at=?, reason='' WHERE {where}"
                       " AND state IN ('sending','queued')",
                       (connection, reference, now, part_id))
    return row[0], row[1], cur.rowcount


def _message_and_total(conn, part_id: int) -> tuple[str, int]:
    row = conn.execute("SELECT message_id, total FROM parts WHERE id=?", (part_id,)).fetchone()
    return row[0], row[1]


def _add_tried(tried: str, connection: str) -> str:
    names = [n for n in tried.split(",") if n]
    if connection not in names:
        names.append(connection)
    return ",".join(names)


def _part_by_reference(conn, report: Report):
    """(part or None, the report with the reference the part was recorded with): any bind
    of the receipt's SMSC account (store/receipt_match.py)."""
    found = receipt_match.part_for_receipt(conn, report.connection, report.reference,
                                           report.recipient)
    if found is None:
        return None, report
    part, reference = found
    if reference != report.reference:       # recorded under an earlier reading of ids
        report = dataclasses.replace(report, reference=reference)
    return part, report


def _take_orphans(conn, connection: str, reference: str) -> list[Report]:
    return [_report_from_dict(json.loads(text))
            for text in receipt_match.take_orphans(conn, connection, reference)]


def _report_dict(report: Report) -> dict:
    data = asdict(report)
    data["status"] = report.status.value
    return data


def _report_from_dict(data: dict) -> Report:
    data = dict(data)
    data["status"] = ReportStatus(data["status"])
    return Report(**data)


_DUE_PARTS = (
    "SELECT p.id, p.message_id, m.recipient, m.originator, p.seq, p.total, p.concat_ref,"
    " p.encoding, p.text, p.data, p.udh, p.pid, p.dcs, m.msg_class, m.want_report,"
    " p.valid_until, p.priority, p.attempts, m.user, m.messagetype, m.extra,"
    " m.serviceprovider, p.tried,"
    # whole-message routing: the channel the message is pinned to, and the first part of it
    # not yet handed over (parts leave in order); asked only for multi-part messages
    " CASE WHEN p.total>1 THEN coalesce((SELECT r.connection FROM message_routes r"
    "  WHERE r.message_id=p.message_id AND r.ended IS NULL), '') ELSE '' END,"
    " CASE WHEN p.total>1 THEN (SELECT min(q.seq) FROM parts q WHERE"
    "  q.message_id=p.message_id AND q.state IN ('queued','scheduled'))"
    "  ELSE p.seq END FROM parts p"
    " JOIN messages m ON m.id = p.message_id"
    " WHERE p.state='queued' AND p.next_attempt<=?{after} ORDER BY p.priority, p.id LIMIT ?")


def _out_part(row: tuple) -> OutPart:
    """A row of _DUE_PARTS, by position."""
    (part_id, message_id, recipient, originator, seq, total, concat_ref, encoding, text, data,
     udh, pid, dcs, msg_class, want_report, valid_until, priority, attempts, user,
     messagetype, extra, serviceprovider, tried, pinned_to, next_seq) = row
    return out_part_of(
        part_id, message_id, recipient, originator, seq, total, concat_ref, False, encoding,
        text, data or b"", udh or b"", pid, dcs, msg_class, bool(want_report), valid_until,
        priority, attempts, user, messagetype, json.loads(extra) if extra else {},
        serviceprovider, tuple(n for n in tried.split(",") if n) if tried else (),
        pinned_to, next_seq)


__all__ = ["Journal", "FINAL_STATES", "retry_delay"]
