"""Counters kept by the journal itself, so `/status` costs the same at 1M queued as empty.

SQLite triggers keep one row per (table, state): every write path, present or future (accept,
claim, reports, purge, cancel), keeps them right without remembering to. They cost one
in-memory row update per changed row, inside the same transaction, on one page.
The oldest waiting part is found through the queue's own indexes (a few index seeks).
"""

from __future__ import annotations

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
    WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE state_counts SET n = n - 1 WHERE tbl = '{t}' AND state = OLD.state;
    INSERT INTO state_counts(tbl, state, n) VALUES ('{t}', NEW.state, 1)
        ON CONFLICT(tbl, state) DO UPDATE SET n = n + 1;
END;
"""

COUNTED = ("parts", "events")


def install(conn: sqlite3.Connection) -> None:
    """Idempotent: creates the table and triggers; a journal written before them is counted
    once here (the only full scan, at the first start after the upgrade)."""
    fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE name='state_counts'").fetchone() is None
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(DDL + "".join(_TRIGGERS.format(t=t) for t in COUNTED)):
            conn.execute(statement)
        if fresh:
            for table in COUNTED:
                conn.execute(f"INSERT INTO state_counts(tbl, state, n) SELECT '{table}', state,"
                             f" count(*) FROM {table} GROUP BY state")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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
    """`created` of the oldest queued or sending part's message. Part ids grow with
    acceptance, so the smallest id per priority (index seeks) is the oldest."""
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
    row = conn.execute("SELECT min(m.created) FROM parts p JOIN messages m ON m.id=p.message_id"
                       f" WHERE p.id IN ({','.join('?' * len(ids))})", ids).fetchone()
    return row[0]
