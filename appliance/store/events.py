"""Notifier events: what a callback says is fixed when its event happens.

An event row snapshots the message's state, status code, reason and dates at the moment
of the change (issue 13): a quick receipt must not turn the network-ack callback into a
copy of the final one. It also records the callback's destination (scheme://host:port), so
the notifier can leave out the events of an endpoint that is failing (issue 17).
These functions run inside the journal writer's transaction or on a reader connection.
"""

from __future__ import annotations

import json

from appliance.callback_url import destination_of

# column -> type; added to old journals by `migrate` (ALTER TABLE ADD COLUMN is idempotent here)
SNAPSHOT_COLUMNS = {
    "snap_code": "TEXT",
    "snap_reason": "TEXT",
    "snap_submitted_at": "REAL",
    "snap_done_at": "REAL",
    "destination": "TEXT NOT NULL DEFAULT ''",
    "given_up_at": "REAL",
}
STUCK_AFTER_SECONDS = 600          # a pending event that failed and is older than this is stuck


def migrate(conn) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    for name, kind in SNAPSHOT_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
    conn.execute("CREATE INDEX IF NOT EXISTS events_given_up ON events(given_up_at)"
                 " WHERE state='dead'")


def record(conn, message_id: str, kind: str, now: float, callback: str | None) -> None:
    """Insert the event with the message's values as they are now (after its update)."""
    destination = ""
    if callback:
        try:
            destination = destination_of(json.loads(callback).get("url", ""))
        except (ValueError, AttributeError):
            destination = "invalid"
    conn.execute(
        "INSERT INTO events(message_id, kind, at, next_attempt, snap_code, snap_reason,"
        " snap_submitted_at, snap_done_at, destination)"
        " SELECT id, ?, ?, ?, code, reason, submitted_at, done_at, ? FROM messages WHERE id=?",
        (kind, now, now, destination, message_id))


def apply_snapshot(event: dict) -> dict:
    """Replace the message's current values with those snapshotted at the event."""
    if event.get("snap_reason") is not None:      # events written before the snapshot columns
        event["code"] = event["snap_code"] or ""
        event["reason"] = event["snap_reason"] or ""
        event["submitted_at"] = event["snap_submitted_at"]
        event["done_at"] = event["snap_done_at"]
    return event


def due_sql(skip: int) -> str:
    """Pending events whose time has come, the earliest per message only, `skip`
    destinations left out (their endpoint is busy or backing off)."""
    not_in = f" AND e.destination NOT IN ({','.join('?' * skip)})" if skip else ""
    return ("SELECT e.id AS event_id, e.kind, e.at, e.attempts, e.destination,"
            " e.snap_code, e.snap_reason, e.snap_submitted_at, e.snap_done_at, m.*"
            " FROM events e JOIN messages m ON m.id=e.message_id"
            " WHERE e.state='pending' AND e.next_attempt<=?" + not_in +
            # in order per message: an event waits while an earlier one is still pending
            " AND NOT EXISTS (SELECT 1 FROM events p WHERE p.message_id=e.message_id"
            " AND p.state='pending' AND p.id<e.id)"
            " ORDER BY e.next_attempt, e.id LIMIT ?")


def give_up_older_than(conn, cutoff: float, now: float) -> int:
    """Pending events created before `cutoff` are given up (their endpoint never answered)."""
    return conn.execute("UPDATE events SET state='dead', given_up_at=?,"
                        " last_error=CASE WHEN last_error='' THEN 'never attempted: endpoint"
                        " failing' ELSE last_error END"
                        " WHERE state='pending' AND at<?", (now, cutoff)).rowcount


def health(conn, now: float, recent_seconds: float = 86400) -> dict:
    """Counts for /status: pending, stuck (failed and old), given up recently."""
    pending = conn.execute("SELECT count(*) FROM events WHERE state='pending'").fetchone()[0]
    stuck = conn.execute("SELECT count(*) FROM events WHERE state='pending' AND attempts>0"
                         " AND at<?", (now - STUCK_AFTER_SECONDS,)).fetchone()[0]
    given_up = conn.execute("SELECT count(*) FROM events WHERE state='dead' AND given_up_at>?",
                            (now - recent_seconds,)).fetchone()[0]
    return {"pending": pending, "stuck": stuck, "given_up_24h": given_up}
