"""Counters the journal keeps in SQLite triggers, so /metrics and /health read a few rows
instead of counting the queue (the scrape costs the same at ten parts or a million).

Installed idempotently on the writer's connection: the triggers and tables are created if
missing and, only when they were just created, filled once from the existing rows. The
triggers run inside the writer's own transactions, so a counter can never disagree with the
rows it counts (no second write path, nothing kept per message in RAM).
"""

from __future__ import annotations

import sqlite3

DDL = """
CREATE TABLE IF NOT EXISTS counter_parts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counter_accepted (
    direction TEXT NOT NULL, dialect TEXT NOT NULL, user TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (direction, dialect, user));
CREATE TABLE IF NOT EXISTS counter_events (state TEXT PRIMARY KEY, n INTEGER NOT NULL);

CREATE TRIGGER IF NOT EXISTS counter_parts_ins AFTER INSERT ON parts BEGIN
    INSERT INTO counter_parts VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counter_parts_upd AFTER UPDATE OF state ON parts
    WHEN old.state IS NOT new.state BEGIN
    UPDATE counter_parts SET n = n - 1 WHERE state = old.state;
    INSERT INTO counter_parts VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counter_parts_del AFTER DELETE ON parts BEGIN
    UPDATE counter_parts SET n = n - 1 WHERE state = old.state;
END;

CREATE TRIGGER IF NOT EXISTS counter_accepted_ins AFTER INSERT ON messages BEGIN
    INSERT INTO counter_accepted VALUES (new.direction, new.dialect, new.user, 1)
        ON CONFLICT(direction, dialect, user) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS counter_events_ins AFTER INSERT ON events BEGIN
    INSERT INTO counter_events VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counter_events_upd AFTER UPDATE OF state ON events
    WHEN old.state IS NOT new.state BEGIN
    UPDATE counter_events SET n = n - 1 WHERE state = old.state;
    INSERT INTO counter_events VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counter_events_del AFTER DELETE ON events BEGIN
    UPDATE counter_events SET n = n - 1 WHERE state = old.state;
END;
"""

# Indexes for the dashboard's reads: newest-first lists walk messages by creation time, and a
# message's timeline finds its callback events (events_message covers pending ones only).
INDEXES = """
CREATE INDEX IF NOT EXISTS messages_created ON messages(created);
CREATE INDEX IF NOT EXISTS events_by_message ON events(message_id, id);
"""

_BACKFILL = (
    "INSERT INTO counter_parts SELECT state, count(*) FROM parts GROUP BY state",
    "INSERT INTO counter_accepted SELECT direction, dialect, user, count(*) FROM messages"
    " GROUP BY direction, dialect, user",
    "INSERT INTO counter_events SELECT state, count(*) FROM events GROUP BY state",
)


def install(conn: sqlite3.Connection) -> bool:
    """Create the counters if missing (backfilled once); True when they were just made.

    Runs inside the writer's transaction, so no write can slip between backfill and trigger.
    """
    _executescript_in_txn(conn, INDEXES)
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='trigger'"
                          " AND name='counter_parts_ins'").fetchone()
    if exists:
        return False
    for name in ("counter_parts", "counter_accepted", "counter_events"):   # start clean
        conn.execute(f"DROP TABLE IF EXISTS {name}")
    _executescript_in_txn(conn, DDL)
    for statement in _BACKFILL:
        conn.execute(statement)
    return True


def _executescript_in_txn(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the writer's open transaction; run statement by statement.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def ensure(journal) -> None:
    """Install through the journal's writer (group commit); cheap once installed."""
    if getattr(journal, "_counters_installed", False):
        return
    journal._write(install)
    journal._counters_installed = True


def parts_by_state(journal) -> dict[str, int]:
    return {r["state"]: r["n"] for r in journal.query("SELECT state, n FROM counter_parts")}


def accepted(journal) -> list[tuple[str, str, str, int]]:
    return [(r["direction"], r["dialect"], r["user"], r["n"])
            for r in journal.query("SELECT direction, dialect, user, n FROM counter_accepted")]


def events_by_state(journal) -> dict[str, int]:
    return {r["state"]: r["n"] for r in journal.query("SELECT state, n FROM counter_events")}


def oldest_waiting_created(journal) -> float | None:
    """When the oldest part still waiting (queued or sending) was accepted.

    Part ids grow with acceptance, so the oldest waiting part is the smallest id; each probe
    is one seek in a partial index (parts_queue is ordered by priority, then id), so the cost
    does not grow with the queue.
    """
    candidates = []
    row = journal.query("SELECT min(id) AS id FROM parts WHERE state='sending'")[0]
    if row["id"] is not None:
        candidates.append(row["id"])
    for priority in _queued_priorities(journal):
        row = journal.query("SELECT id FROM parts WHERE state='queued' AND priority=?"
                            " ORDER BY priority, id LIMIT 1", (priority,))
        if row:
            candidates.append(row[0]["id"])
    if not candidates:
        return None
    row = journal.query("SELECT m.created FROM parts p JOIN messages m ON m.id=p.message_id"
                        " WHERE p.id=?", (min(candidates),))
    return row[0]["created"] if row else None


def _queued_priorities(journal) -> list[int]:
    """The distinct priorities present in the queue, by skipping through the index."""
    found: list[int] = []
    last = -(2 ** 31)
    while len(found) < 64:
        row = journal.query("SELECT priority FROM parts WHERE state='queued' AND priority>?"
                            " ORDER BY priority, id LIMIT 1", (last,))
        if not row:
            break
        last = row[0]["priority"]
        found.append(last)
    return found
