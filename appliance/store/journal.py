"""The journal: every message, part, report and inbound SMS, durable in SQLite (WAL).

Writes go through one `GroupWriter` (group commit); reads use a connection per thread.
The journal implements `model.ChannelSink`, so modem workers and the SMPP uplink report
to it directly, and it answers the questions of the dispatcher and the HTTP APIs.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import zlib
from dataclasses import asdict
from pathlib import Path

from appliance.clock import SYSTEM_CLOCK, Clock
from appliance.compose import NewMessage
from appliance.errors import StoreError, ValidationError
from appliance.model import (FINAL_STATES, InboundFragment, OutPart, Report, ReportStatus,
                             State)
from appliance.store import events, inbox, message_state, report_timeout
from appliance.store.schema import DDL, SCHEMA_VERSION
from appliance.store.writer import GroupWriter, connect

log = logging.getLogger("appliance.store")

DB_NAME = "journal.sqlite3"
RETRY_BACKOFF = (5, 15, 30, 60, 120, 300, 600)   # seconds after the n-th transient failure

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
        self.default_report_timeout = report_timeout.DEFAULT_HOURS * 3600
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: str | Path, **kwargs) -> "Journal":
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        journal = cls(state_dir / DB_NAME, **kwargs)
        journal._writer.start(_migrate)
        return journal

    def close(self) -> None:
        self._writer.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def alive(self) -> bool:
        return self._writer.alive()

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
        return self._writer.call(fn, timeout)

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self._read().execute(sql, params).fetchall()

    # --- accepting -------------------------------------------------------------------

    def accept(self, messages: list[NewMessage]) -> list[str | ValidationError]:
        """Store messages durably, debit credits per part; one result per message.

        Returns the message id, or the ValidationError (no credit, duplicate) that refused it.
        Returns only after the commit, so an id returned here survives a power cut.
        """
        now = self.clock.now()
        return self._write(lambda conn: [self._accept_one(conn, m, now) for m in messages])

    def _accept_one(self, conn, msg: NewMessage, now: float):
        try:
            conn.execute("SAVEPOINT msg")
            self._check_duplicate(conn, msg, now)
            self._debit(conn, msg.submission.user, len(msg.parts), msg.id, now)
            self._insert_message(conn, msg, now)
            conn.execute("RELEASE msg")
            return msg.id
        except ValidationError as exc:
            conn.execute("ROLLBACK TO msg")
            conn.execute("RELEASE msg")
            return exc
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO msg")
            conn.execute("RELEASE msg")
            return ValidationError("duplicate_id", f"message id {msg.id} already exists", "id")

    def _check_duplicate(self, conn, msg: NewMessage, now: float) -> None:
        sub = msg.submission
        window = getattr(sub, "dedupe_window", None)
        window = self.dedupe_window if window is None else window
        if window <= 0:
            return
        row = conn.execute(
            "SELECT 1 FROM messages WHERE direction='out' AND user=? AND recipient=? "
            "AND created>=? AND body=? LIMIT 1",
            (sub.user, sub.recipient, now - window, sub.text)).fetchone()
        if row:
            raise ValidationError("duplicate", "the same message was sent to this recipient "
                                  "moments ago", "messagedata")

    def _debit(self, conn, user: str, cost: int, message_id: str, now: float) -> None:
        row = conn.execute("SELECT balance FROM balances WHERE user=?", (user,)).fetchone()
        if row is None or row["balance"] == -1:
            return
        if row["balance"] <= 0 or row["balance"] < cost:
            raise ValidationError("no_credit", f"insufficient credit: {row['balance']} left, "
                                  f"{cost} needed", "credits")
        conn.execute("UPDATE balances SET balance=balance-? WHERE user=?", (cost, user))
        conn.execute("INSERT INTO ledger(user, delta, reason, message_id, at) VALUES (?,?,?,?,?)",
                     (user, -cost, "send", message_id, now))

    def _insert_message(self, conn, msg: NewMessage, now: float) -> None:
        sub = msg.submission
        scheduled = sub.send_at is not None and sub.send_at > now
        state = State.SCHEDULED if scheduled else State.QUEUED
        due = sub.send_at if scheduled else now
        conn.execute(
            "INSERT INTO messages(id, direction, user, recipient, originator, messagetype, body,"
            " encoding, msg_class, state, parts_total, priority, created, send_at, valid_until,"
            " updated, want_report, serviceprovider, dialect, client_ref, callback, extra)"
            " VALUES (?,'out',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (msg.id, sub.user, sub.recipient, sub.originator, sub.messagetype, sub.text,
             msg.encoding, msg.msg_class, state.value, len(msg.parts), int(sub.priority), now,
             sub.send_at, sub.valid_until, now, int(sub.want_report), sub.serviceprovider,
             sub.dialect, sub.client_ref, _json(sub.callback), _json(sub.smpp_params or None)))
        ref = _concat_ref(msg.id)
        conn.executemany(
            "INSERT INTO parts(message_id, seq, total, concat_ref, encoding, text, data, udh,"
            " pid, dcs, state, priority, next_attempt, valid_until)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(msg.id, p.seq, p.total, ref, p.encoding, p.text, p.data, p.udh, p.pid, p.dcs,
              state.value, int(sub.priority), due, sub.valid_until) for p in msg.parts])

    # --- the dispatcher's side ---------------------------------------------------------

    def due_parts(self, limit: int = 200) -> list[OutPart]:
        """Queued parts in send order (priority, then acceptance), due now."""
        now = self.clock.now()
        rows = self.query(
            "SELECT p.*, m.recipient, m.originator, m.msg_class, m.want_report, m.user,"
            " m.messagetype, m.extra, m.serviceprovider FROM parts p"
            " JOIN messages m ON m.id = p.message_id"
            " WHERE p.state='queued' AND p.next_attempt<=? ORDER BY p.priority, p.id LIMIT ?",
            (now, limit))
        return [_out_part(r) for r in rows]

    def claim(self, assignments: list[tuple[int, str]]) -> list[int]:
        """Mark parts as sending on their connection; returns the ids actually claimed."""
        now = self.clock.now()

        def fn(conn):
            claimed = []
            for part_id, connection in assignments:
                cur = conn.execute("UPDATE parts SET state='sending', connection=?,"
                                   " attempts=attempts+1 WHERE id=? AND state='queued'",
                                   (connection, part_id))
                if cur.rowcount:
                    claimed.append(part_id)
                    message_state.refresh(conn, _message_of(conn, part_id), now, connection)
            return claimed
        return self._write(fn)

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
        where = ("message_id=(SELECT message_id FROM parts WHERE id=?)" if whole_message
                 else "id=?")

        def fn(conn):
            conn.execute("UPDATE parts SET state='submitted', connection=?, reference=?,"
                         f" submitted_at=?, reason='' WHERE {where}"
                         " AND state IN ('sending','queued')",
                         (connection, reference, now, part_id))
            message_state.refresh(conn, _message_of(conn, part_id), now, connection)
            for report in _take_orphans(conn, connection, reference):
                self._apply_report(conn, report, now)
        self._write(fn)

    def part_failed(self, part_id: int, connection: str, code: str, reason: str,
                    retryable: bool) -> None:
        now = self.clock.now()

        def fn(conn):
            row = conn.execute("SELECT attempts, tried FROM parts WHERE id=?",
                               (part_id,)).fetchone()
            if row is None:
                return
            if retryable:
                tried = _add_tried(row["tried"], connection)
                conn.execute("UPDATE parts SET state='queued', next_attempt=?, reason=?,"
                             " tried=? WHERE id=? AND state='sending'",
                             (now + retry_delay(row["attempts"]), f"{code}: {reason}", tried,
                              part_id))
            else:
                conn.execute("UPDATE parts SET state='failed', done_at=?, reason=? WHERE id=?",
                             (now, f"{code}: {reason}", part_id))
            message_state.refresh(conn, _message_of(conn, part_id), now, connection)
        self._write(fn)

    def report(self, report: Report) -> None:
        now = self.clock.now()
        self._write(lambda conn: self._apply_report(conn, report, now))

    def _apply_report(self, conn, report: Report, now: float) -> None:
        part = _part_by_reference(conn, report)
        if part is None:
            conn.execute("INSERT INTO orphan_reports VALUES (?,?,?,?)",
                         (report.connection, report.reference, _json(_report_dict(report)), now))
            return
        new_state = _REPORT_STATE.get(report.status)
        if new_state is None:          # pending: the SMSC keeps trying; nothing final yet
            return
        reason = "" if new_state == State.DELIVERED else (report.detail or f"status {report.code}")
        # parts of one message that share the reference (sent whole) share the receipt
        conn.execute("UPDATE parts SET state=?, done_at=?, reason=? WHERE id=? OR (message_id=?"
                     " AND connection=? AND reference=? AND state IN ('submitted','sending'))",
                     (new_state.value, report.done_at or now, reason, part["id"],
                      part["message_id"], report.connection, report.reference))
        message_state.refresh(conn, part["message_id"], now, report.connection)

    def inbound(self, fragment: InboundFragment) -> None:
        now = self.clock.now()
        self._write(lambda conn: inbox.receive(conn, fragment, now))

    def expire_fragments(self) -> int:
        """Deliver long inbound messages whose missing parts never came, marked as such."""
        now = self.clock.now()
        return self._write(lambda conn: inbox.expire(conn, now, self.fragment_timeout))

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
        return [dict(r) for r in self.query(*inbox.folder_query(user, folder, limit,
                                                                unread_only))]

    def mark_read(self, ids: list[str], user: str | None = None) -> list[str]:
        return self._write(lambda conn: inbox.set_flag(conn, ids, user, "is_read"))

    def delete_messages(self, ids: list[str], user: str | None = None) -> list[str]:
        return self._write(lambda conn: inbox.set_flag(conn, ids, user, "deleted"))

    def purge_deleted(self, user: str | None, folder: str) -> int:
        return self._write(lambda conn: inbox.purge(conn, user, folder))

    def summary(self, direction: str, *, user: str | None = None, connection: str | None = None,
                since: float | None = None, until: float | None = None) -> list[dict]:
        """Message counts per user (and parts) for the reporting API; read-only."""
        where, params = ["direction=?"], [direction]
        for column, value, op in (("user", user, "="), ("connection", connection, "="),
                                  ("created", since, ">="), ("created", until, "<")):
            if value is not None:
                where.append(f"{column}{op}?")
                params.append(value)
        return [dict(r) for r in self.query(
            "SELECT user, count(*) AS messages, coalesce(sum(parts_total),0) AS parts,"
            " sum(state IN ('submitted','delivered')) AS sent,"
            " sum(state IN ('failed','undelivered','expired')) AS notsent"
            f" FROM messages WHERE {' AND '.join(where)} GROUP BY user ORDER BY user", params)]

    def stats(self) -> dict:
        rows = self.query("SELECT state, count(*) AS n FROM parts GROUP BY state")
        queued = {r["state"]: r["n"] for r in rows}
        oldest = self.query("SELECT min(m.created) AS t FROM parts p JOIN messages m"
                            " ON m.id=p.message_id WHERE p.state IN ('queued','sending')")
        oldest_t = oldest[0]["t"]
        return {
            "parts_by_state": queued,
            "waiting": queued.get("queued", 0) + queued.get("sending", 0),
            "scheduled": queued.get("scheduled", 0),
            "oldest_waiting_age": None if oldest_t is None else round(self.clock.now() - oldest_t, 1),
            "commits": self._writer.commits,
        }

    # --- credits ---------------------------------------------------------------------

    def balance(self, user: str) -> int:
        rows = self.query("SELECT balance FROM balances WHERE user=?", (user,))
        return rows[0]["balance"] if rows else -1

    def set_balance(self, user: str, balance: int, reason: str = "set") -> int:
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
        now = self.clock.now()

        def fn(conn):
            row = conn.execute("SELECT balance FROM balances WHERE user=?", (user,)).fetchone()
            current = row["balance"] if row else -1
            if current == -1:
                return -1          # unlimited stays unlimited
            new = current + amount
            conn.execute("UPDATE balances SET balance=? WHERE user=?", (new, user))
            conn.execute("INSERT INTO ledger(user, delta, reason, at) VALUES (?,?,?,?)",
                         (user, amount, "add", now))
            return new
        return self._write(fn)

    def ensure_balance(self, user: str, balance: int) -> None:
        """Provisioning: set a starting balance once; later API changes win."""
        self._write(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO balances(user, balance) VALUES (?,?)", (user, balance)))

    # --- events for the notifier -------------------------------------------------------

    def due_events(self, limit: int = 50, skip_destinations=()) -> list[dict]:
        """Due events, earliest per message; each carries the values of its own moment."""
        now = self.clock.now()
        skip = list(skip_destinations)
        return [events.apply_snapshot(dict(r)) for r in self.query(
            events.due_sql(len(skip)), (now, *skip, limit))]

    def event_done(self, event_id: int) -> None:
        self._write(lambda conn: conn.execute("UPDATE events SET state='done' WHERE id=?",
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
        return self.query("SELECT count(*) AS n FROM events WHERE state='pending'")[0]["n"]


# --- helpers ------------------------------------------------------------------------------


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"journal schema {version} is newer than this software ({SCHEMA_VERSION})")
    conn.executescript(DDL)
    events.migrate(conn)
    report_timeout.migrate(conn)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    os.chmod(conn.execute("PRAGMA database_list").fetchone()[2], 0o640)


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _concat_ref(message_id: str) -> int:
    # Stable per message, so a retried part carries the same reference as its siblings.
    if not message_id:
        return 1
    try:
        value = int(message_id.replace("-", "")[:8], 16)
    except ValueError:          # a client-chosen id (Ozeki 10 JSON) need not be hex
        value = zlib.crc32(message_id.encode("utf-8"))
    return value % 255 + 1


def _message_of(conn, part_id: int) -> str:
    return conn.execute("SELECT message_id FROM parts WHERE id=?", (part_id,)).fetchone()[0]


def _add_tried(tried: str, connection: str) -> str:
    names = [n for n in tried.split(",") if n]
    if connection not in names:
        names.append(connection)
    return ",".join(names)


def _part_by_reference(conn, report: Report):
    sql = ("SELECT p.id, p.message_id FROM parts p JOIN messages m ON m.id=p.message_id"
           " WHERE p.connection=? AND p.reference=? AND p.state IN ('submitted','sending')")
    params: list = [report.connection, report.reference]
    if report.recipient:
        # Modem references wrap at 256: the recipient tells two parts with one MR apart.
        sql += " AND (m.recipient=? OR ltrim(m.recipient,'+')=ltrim(?,'+'))"
        params += [report.recipient, report.recipient]
    sql += " ORDER BY p.submitted_at DESC LIMIT 1"
    return conn.execute(sql, params).fetchone()


def _take_orphans(conn, connection: str, reference: str) -> list[Report]:
    rows = conn.execute("SELECT rowid, report FROM orphan_reports WHERE connection=? AND"
                        " reference=?", (connection, reference)).fetchall()
    for row in rows:
        conn.execute("DELETE FROM orphan_reports WHERE rowid=?", (row["rowid"],))
    return [_report_from_dict(json.loads(r["report"])) for r in rows]


def _report_dict(report: Report) -> dict:
    data = asdict(report)
    data["status"] = report.status.value
    return data


def _report_from_dict(data: dict) -> Report:
    data = dict(data)
    data["status"] = ReportStatus(data["status"])
    return Report(**data)


def _out_part(row: sqlite3.Row) -> OutPart:
    extra = json.loads(row["extra"]) if row["extra"] else {}
    return OutPart(
        id=row["id"], message_id=row["message_id"], recipient=row["recipient"],
        originator=row["originator"], seq=row["seq"], total=row["total"],
        concat_ref=row["concat_ref"], encoding=row["encoding"], text=row["text"],
        data=row["data"] or b"", udh=row["udh"] or b"", pid=row["pid"], dcs=row["dcs"],
        msg_class=row["msg_class"], want_report=bool(row["want_report"]),
        valid_until=row["valid_until"], priority=row["priority"], attempts=row["attempts"],
        user=row["user"], messagetype=row["messagetype"], smpp_params=extra,
        serviceprovider=row["serviceprovider"],
        tried=tuple(n for n in row["tried"].split(",") if n))


__all__ = ["Journal", "FINAL_STATES", "retry_delay"]
