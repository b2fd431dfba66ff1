"""What a step of the wall clock changes in the journal (appliance/clock_step.py says when).

Forward (NTP setting a Pi's clock after boot): the messages still under way that this run
stamped before the step carry the old time. Their acceptance time, validity, submit time
(the report timeout counts from it), open routing rounds and pending callbacks move by the
step, so an alert accepted at boot keeps the validity it was given and goes out; so do the
parts of long inbound SMS waiting for the rest, and the SMS read once (duplicates). Rows of
earlier runs, and those stamped after the step, keep their times. A client's own send time
is an absolute time: scheduled messages keep it, and their validity with it; so does a
validity the sender gave (Ozeki `vp`, JSON `valid_until`): only the default validity, which
counts from acceptance (`messages.valid_relative`), moves.

Either way, nothing the appliance scheduled itself may wait longer than it ever schedules:
a retry (a queued part's next attempt, a callback's), an open round's start, a submit time
are brought back to now plus at most LONGEST_RETRY. After a step back they were in the
future by the size of the step, and the queue would have stood still that long.
These functions run inside the journal writer's transaction; a step is rare, so they may
scan the tables once (the messages in slices: `shift_forward`).
"""

from __future__ import annotations

LONGEST_RETRY = 900.0   # journal.RETRY_BACKOFF and notify.BACKOFF stay within it (a test says so)
_UNDER_WAY = "('queued','scheduled','sending','submitted')"


def migrate(conn) -> None:
    """Idempotent: journals from before `valid_relative` get it (0: their messages are of
    earlier runs, which a step never moves)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "valid_relative" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN valid_relative INTEGER NOT NULL DEFAULT 0")


def shift_forward(conn, step: float, start: float, end: float, rowids: tuple[int, int]) -> int:
    """Move the outgoing messages accepted in [start, end] (the old time), among those with
    a rowid in `rowids`, and their parts by `step`; returns how many messages moved. The
    caller walks the table in such slices, one transaction each, so a big queue does not
    hold the writer for long (200,000 messages, all moved: about 5 s here)."""
    params = {"d": step, "lo": start, "hi": end, "first": rowids[0], "last": rowids[1]}
    # parts first: they find their messages by the acceptance time not yet moved
    conn.execute(
        "UPDATE parts SET submitted_at=parts.submitted_at+:d, valid_until=CASE WHEN"
        " m.valid_relative=1 THEN parts.valid_until+:d ELSE parts.valid_until END FROM messages m"
        " WHERE m.rowid BETWEEN :first AND :last AND m.id=parts.message_id"
        f" AND m.direction='out' AND m.created BETWEEN :lo AND :hi AND parts.state IN {_UNDER_WAY}",
        params)
    return conn.execute(
        "UPDATE messages SET created=created+:d, updated=updated+:d,"
        " valid_until=CASE WHEN valid_relative=1 THEN valid_until+:d ELSE valid_until END,"
        " submitted_at=submitted_at+:d WHERE rowid BETWEEN :first AND :last"
        f" AND direction='out' AND created BETWEEN :lo AND :hi AND state IN {_UNDER_WAY}",
        params).rowcount


def shift_timers(conn, step: float, start: float, end: float) -> None:
    """The open routing rounds, pending callbacks, waiting inbound parts and remembered
    inbound SMS stamped in [start, end] (the old time) move by `step`."""
    window = (start, end)
    conn.execute("UPDATE message_routes SET started=started+? WHERE ended IS NULL"
                 " AND started BETWEEN ? AND ?", (step, *window))
    conn.execute("UPDATE events SET at=at+?, next_attempt=next_attempt+? WHERE"
                 " state='pending' AND at BETWEEN ? AND ?", (step, step, *window))
    # parts of a long inbound SMS wait for the rest, and SMS read once are remembered, for
    # their time: a step must not give up on the one or forget the other early
    conn.execute("UPDATE fragments SET arrived=arrived+? WHERE arrived BETWEEN ? AND ?",
                 (step, *window))
    conn.execute("UPDATE inbound_seen SET at=at+? WHERE at BETWEEN ? AND ?", (step, *window))
    conn.execute("UPDATE inbound_ids SET at=at+? WHERE at BETWEEN ? AND ?", (step, *window))


def bring_back(conn, now: float) -> int:
    """Nothing the appliance scheduled waits past now + LONGEST_RETRY; returns the rows
    brought back."""
    latest = now + LONGEST_RETRY
    count = conn.execute("UPDATE parts SET next_attempt=? WHERE state='queued'"
                         " AND next_attempt>?", (now, latest)).rowcount
    count += conn.execute("UPDATE parts SET submitted_at=? WHERE state='submitted'"
                          " AND submitted_at>?", (now, now)).rowcount
    count += conn.execute("UPDATE events SET next_attempt=? WHERE state='pending'"
                          " AND next_attempt>?", (now, latest)).rowcount
    count += conn.execute("UPDATE message_routes SET started=? WHERE ended IS NULL"
                          " AND started>?", (now, now)).rowcount
    return count
