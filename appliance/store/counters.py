"""Counters kept by the journal itself, so `/status`, `/metrics`, `/health` and the dashboard
cost the same at 1M queued as empty.

SQLite triggers keep one row per (table, state): every write path, present or future (accept,
claim, reports, purge, cancel), keeps them right without remembering to. They cost one
in-memory row update per changed row, inside the same transaction, on one page.
The oldest waiting part is found through the queue's own indexes (a few index seeks).
"""

from __future__ import annotations

import json
import sqlite3

DDL = """
CREATE TABLE IF NOT EXISTS state_counts (
    tbl   TEXT NOT NULL,                       -- 'parts' | 'events'
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (tbl, state)
) WITHOUT ROWID;
"""

_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS {t}_count_insert AFTER INSERT ON {t} BEGIN
    INSERT INTO state_counts(tbl, state, n) VALUES ('{t}', NEW.state, 1)
        ON CONFLICT(tbl, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS {t}_count_delete AFTER DELETE ON {t} BEGIN
    UPDATE state_counts SET n = n - 1 WHERE tbl = '{t}' AND state = OLD.state;
END;
CREATE TRIGGER IF NOT EXISTS {t}_count_update AFTER UPDATE OF state ON {t}
    WHEN OLD.state IS NOT NEW.state{apart} BEGIN
    UPDATE state_counts SET n = n - 1 WHERE tbl = '{t}' AND state = OLD.state;
    INSERT INTO state_counts(tbl, state, n) VALUES ('{t}', NEW.state, 1)
        ON CONFLICT(tbl, state) DO UPDATE SET n = n + 1;
END;
"""

COUNTED = ("parts", "events")

# The dispatch path's set-based writes (store/dispatch_batch.py) move a whole batch of parts
# from one state to another and count the batch with one `moved()` instead of two counter
# row updates per part. They mark those updates by bumping `parts.counted_apart`; the parts
# trigger skips such rows. Every other write leaves the column alone and is counted by the
# trigger, so a path that forgets about this column is still counted right.
COUNTED_APART = {"parts": " AND OLD.counted_apart IS NEW.counted_apart"}

# Messages accepted by direction, dialect and user (for /metrics): rows of state_counts under
# tbl 'accepted', the key a JSON array. They had a table of their own, one more B-tree whose
# page every accept commit wrote into the WAL besides state_counts' (SD card wear); in the same
# table both counters are on one page. Also the dashboard's index: a timeline finds its events
# (newest-first lists walk messages by rowid).
EXTRA_DDL = """
CREATE TRIGGER IF NOT EXISTS accepted_count_insert AFTER INSERT ON messages BEGIN
    INSERT INTO state_counts(tbl, state, n)
        VALUES ('accepted', json_array(new.direction, new.dialect, new.user), 1)
        ON CONFLICT(tbl, state) DO UPDATE SET n = n + 1;
END;
CREATE INDEX IF NOT EXISTS events_by_message ON events(message_id, id);
"""

# Callback events delivered or given up, ever: Prometheus counters must never go down, and
# the per-state counts above do when emptying the deleted folder purges events (read as a
# counter reset, a purge made `increase(sms_callbacks_given_up_total[1h]) > 0` fire).
SETTLED_DDL = """
CREATE TABLE IF NOT EXISTS counter_events_settled (
    state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS counter_events_settled_upd AFTER UPDATE OF state ON events
    WHEN NEW.state IN ('done', 'dead') AND OLD.state IS NOT NEW.state BEGIN
    INSERT INTO counter_events_settled VALUES (NEW.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS counter_events_settled_ins AFTER INSERT ON events
    WHEN NEW.state IN ('done', 'dead') BEGIN
    INSERT INTO counter_events_settled VALUES (NEW.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
"""


def install(conn: sqlite3.Connection) -> None:
    """Idempotent: creates the table and triggers; a journal written before them is counted
    once here (the only full scan, at the first start after the upgrade)."""
    fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE name='state_counts'").fetchone() is None
    fresh_accepted = fresh or not _exists(conn, "accepted_count_insert")
    fresh_settled = conn.execute("SELECT 1 FROM sqlite_master"
                                 " WHERE name='counter_events_settled'").fetchone() is None
    conn.execute("BEGIN IMMEDIATE")
    try:
        _add_counted_apart(conn)
        script = DDL + "".join(_TRIGGERS.format(t=t, apart=COUNTED_APART.get(t, ""))
                               for t in COUNTED) + EXTRA_DDL + SETTLED_DDL
        for statement in _statements(script):
            conn.execute(statement)
        if fresh:
            for table in COUNTED:
                conn.execute(f"INSERT INTO state_counts(tbl, state, n) SELECT '{table}', state,"
                             f" count(*) FROM {table} GROUP BY state")
        if fresh_accepted:
            _count_accepted(conn)
        else:       # made again by a rollback's release: its counts went on here as well
            _drop_accepted_table(conn)
        if fresh_settled:       # from where the per-state counts stand: no drop at the upgrade
            conn.execute("INSERT INTO counter_events_settled SELECT state, n FROM state_counts"
                         " WHERE tbl='events' AND state IN ('done', 'dead')")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _count_accepted(conn: sqlite3.Connection) -> None:
    """The accepted counts into state_counts: from the `counter_accepted` table of a journal
    made before they moved (dropped with its trigger), or counted once from the messages of
    one made before there were any."""
    source = ("counter_accepted" if _exists(conn, "counter_accepted") else
              "(SELECT direction, dialect, user, count(*) AS n FROM messages"
              " GROUP BY direction, dialect, user)")
    conn.execute("DELETE FROM state_counts WHERE tbl='accepted'")
    conn.execute("INSERT INTO state_counts(tbl, state, n) SELECT 'accepted',"
                 f" json_array(direction, dialect, user), n FROM {source}")
    _drop_accepted_table(conn)


def _drop_accepted_table(conn: sqlite3.Connection) -> None:
    """The release before the move made `counter_accepted` again when it ran on a journal
    without it (a rollback); left there, its trigger wrote one more B-tree page into the WAL
    at every accept for good. `accepted_count_insert` kept state_counts right meanwhile."""
    conn.execute("DROP TRIGGER IF EXISTS counter_accepted_ins")
    conn.execute("DROP TABLE IF EXISTS counter_accepted")


def _exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None


def _add_counted_apart(conn: sqlite3.Connection) -> None:
    """Idempotent: the `parts.counted_apart` column, and the parts update trigger that
    respects it (a journal from before gets the trigger replaced; its counts stay)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(parts)")}
    if "counted_apart" not in columns:
        conn.execute("ALTER TABLE parts ADD COLUMN counted_apart INTEGER NOT NULL DEFAULT 0")
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type='trigger'"
                       " AND name='parts_count_update'").fetchone()
    if row is not None and "counted_apart" not in row[0]:
        conn.execute("DROP TRIGGER parts_count_update")


def moved(conn: sqlite3.Connection, table: str, old: str, new: str, n: int) -> None:
    """`n` rows of `table` went from state `old` to `new` in a write marked counted apart."""
    if n <= 0 or old == new:
        return
    conn.execute("UPDATE state_counts SET n = n - ? WHERE tbl = ? AND state = ?", (n, table, old))
    conn.execute("INSERT INTO state_counts(tbl, state, n) VALUES (?, ?, ?)"
                 " ON CONFLICT(tbl, state) DO UPDATE SET n = n + excluded.n", (table, new, n))


def _statements(script: str) -> list[str]:
    """Split on statement ends outside trigger bodies (each trigger ends with END;)."""
    out, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        text = "\n".join(buf).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            buf = []
    return out


def counts(conn: sqlite3.Connection, table: str) -> dict[str, int]:
    rows = conn.execute("SELECT state, n FROM state_counts WHERE tbl=? AND n<>0", (table,))
    return {state: n for state, n in rows}


def oldest_waiting_created(conn: sqlite3.Connection) -> float | None:
    """Since when the oldest queued or sending part has waited: its message's acceptance,
    or its send time when it was scheduled (a campaign accepted hours before its send time
    is not hours late; it tripped /health's warn and fail at once). Part ids grow with
    acceptance, so the smallest id per priority (index seeks) is the head of the queue."""
    ids = []
    priority = conn.execute("SELECT min(priority) FROM parts WHERE state='queued'").fetchone()[0]
    while priority is not None:
        ids.append(conn.execute("SELECT min(id) FROM parts WHERE state='queued' AND priority=?",
                                (priority,)).fetchone()[0])
        priority = conn.execute("SELECT min(priority) FROM parts WHERE state='queued' AND"
                                " priority>?", (priority,)).fetchone()[0]
    ids.append(conn.execute("SELECT min(id) FROM parts WHERE state='sending'").fetchone()[0])
    ids = [i for i in ids if i is not None]
    if not ids:
        return None
    row = conn.execute("SELECT min(max(m.created, coalesce(m.send_at, m.created)))"
                       " FROM parts p JOIN messages m ON m.id=p.message_id"
                       f" WHERE p.id IN ({','.join('?' * len(ids))})", ids).fetchone()
    return row[0]


# --- the same figures for readers that hold the Journal (metrics, health, dashboard) ---------


def ensure(journal) -> None:
    """Installed by the journal's migration; kept so callers need not know that."""


def parts_by_state(journal) -> dict[str, int]:
    return {r["state"]: r["n"] for r in journal.query(
        "SELECT state, n FROM state_counts WHERE tbl='parts' AND n<>0")}


def events_by_state(journal) -> dict[str, int]:
    return {r["state"]: r["n"] for r in journal.query(
        "SELECT state, n FROM state_counts WHERE tbl='events' AND n<>0")}


def events_settled(journal) -> dict[str, int]:
    """Callback events delivered ("done") and given up ("dead") ever: never decreasing."""
    return {r["state"]: r["n"] for r in journal.query(
        "SELECT state, n FROM counter_events_settled")}


def accepted(journal) -> list[tuple[str, str, str, int]]:
    """(direction, dialect, user, messages accepted) for /metrics."""
    return [(*json.loads(r["state"]), r["n"])
            for r in journal.query("SELECT state, n FROM state_counts WHERE tbl='accepted'")]


def oldest_waiting(journal) -> float | None:
    return oldest_waiting_created(journal._read())
