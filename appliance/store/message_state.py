"""A message's state follows its parts. These functions run inside the writer's transaction."""

from __future__ import annotations

from appliance.model import State, number_digits
from appliance.store import events
from appliance.store.refunds import refund_unsent

_FAILURE_ORDER = (State.FAILED, State.UNDELIVERED, State.EXPIRED)


def aggregate(states: list[str]) -> State:
    """The message state that its parts' states add up to.

    Parts cancelled by a delete (`deleted`) count only once nothing else is left to happen:
    a message deleted from the outbox ends `deleted` when its in-flight parts are settled.
    """
    present = {State(s) for s in states}
    if State.DELETED in present:
        rest = present - {State.DELETED}
        if not rest or all(s.final for s in rest):
            return State.DELETED
        present = rest
    for active in (State.SENDING, State.QUEUED):
        if active in present:
            return State.SENDING if (present - {State.QUEUED, State.SCHEDULED}) else active
    if State.SCHEDULED in present:
        return State.SCHEDULED
    if State.SUBMITTED in present:
        return State.SUBMITTED
    for failure in _FAILURE_ORDER:
        if failure in present:
            return failure
    return State.DELIVERED


def refresh(conn, message_id: str, now: float, connection: str = "", *,
            states: list[str] | None = None) -> None:
    """Recompute the message state; record an event for the notifier when it changed.
    `states`: the parts' states when the caller knows them (a one-part message it just
    updated), which saves a query per part on the dispatch path."""
    if states is None:
        states = [r[0] for r in conn.execute("SELECT state FROM parts WHERE message_id=?",
                                             (message_id,))]
    row = conn.execute("SELECT state, callback FROM messages WHERE id=?", (message_id,)).fetchone()
    if row is None or not states:
        return
    new = aggregate(states)
    if new.value == row["state"]:
        return
    ended = new.final or new == State.DELETED
    reason = _first_reason(conn, message_id) if ended else ""
    conn.execute(
        "UPDATE messages SET state=?, updated=?, reason=?,"
        " connection=CASE WHEN ?<>'' THEN ? ELSE connection END,"
        " submitted_at=CASE WHEN ? IN ('submitted','delivered') AND submitted_at IS NULL"
        "   THEN ? ELSE submitted_at END,"
        " done_at=CASE WHEN ? THEN ? ELSE done_at END WHERE id=?",
        (new.value, now, reason, connection, connection, new.value, now, int(ended), now,
         message_id))
    if row["callback"] and new != State.DELETED:     # the client deleted it: nothing to tell
        events.record(conn, message_id, new.value, now, row["callback"])


def _first_reason(conn, message_id: str) -> str:
    row = conn.execute("SELECT reason FROM parts WHERE message_id=? AND reason<>''"
                       " AND state<>'delivered' ORDER BY seq LIMIT 1", (message_id,)).fetchone()
    return row[0] if row else ""


def promote_scheduled(conn, now: float) -> int:
    ids = [r[0] for r in conn.execute("SELECT DISTINCT message_id FROM parts"
                                      " WHERE state='scheduled' AND next_attempt<=?", (now,))]
    conn.execute("UPDATE parts SET state='queued' WHERE state='scheduled' AND next_attempt<=?",
                 (now,))
    for message_id in ids:
        refresh(conn, message_id, now)
    return len(ids)


def expire_overdue(conn, now: float) -> int:
    counts = conn.execute(
        "SELECT message_id, count(*) FROM parts WHERE state IN ('queued','scheduled')"
        " AND valid_until IS NOT NULL AND valid_until<? GROUP BY message_id", (now,)).fetchall()
    conn.execute("UPDATE parts SET state='expired', done_at=?, reason=CASE WHEN reason<>''"
                 " THEN 'validity period ended; last error ' || reason"
                 " ELSE 'validity period ended before a route was available' END"
                 " WHERE state IN ('queued','scheduled') AND valid_until IS NOT NULL"
                 " AND valid_until<?", (now, now))
    for message_id, parts in counts:
        refund_unsent(conn, message_id, parts, "expired before it was sent", now)
        refresh(conn, message_id, now)
    return len(counts)


def requeue_sending(conn, now: float) -> int:
    # Deduplicated here: with DISTINCT, SQLite scans all of parts_message (0.25 s at 1M).
    ids = list(dict.fromkeys(r[0] for r in conn.execute(
        "SELECT message_id FROM parts WHERE state='sending'")))
    conn.execute("UPDATE parts SET state='queued', next_attempt=?,"
                 " reason='requeued after restart' WHERE state='sending'", (now,))
    for message_id in ids:
        if not cancel_if_deleted(conn, message_id, now):
            refresh(conn, message_id, now)
    return len(ids)


CANCELLED = "cancelled: deleted before it was sent"


def cancel_unsent(conn, message_id: str, now: float) -> int:
    """A deleted message: parts not yet handed to a channel never leave. In-flight parts
    (`sending`) finish on their channel and are recorded as usual."""
    cur = conn.execute("UPDATE parts SET state='deleted', done_at=?, reason=? WHERE message_id=?"
                       " AND state IN ('queued','scheduled')", (now, CANCELLED, message_id))
    if cur.rowcount:
        refund_unsent(conn, message_id, cur.rowcount, "deleted before it was sent", now)
        refresh(conn, message_id, now)
    return cur.rowcount


def fail_unsent(conn, message_id: str, failed_seq: int, total: int, why: str,
                now: float) -> int:
    """A part of a long message failed for good: no phone can join the message any more,
    so its parts not yet handed to a channel never leave (each would be charged). Parts in
    flight finish on their channel. The caller refreshes the message's state."""
    cur = conn.execute("UPDATE parts SET state='failed', done_at=?, reason=? WHERE message_id=?"
                       " AND state IN ('queued','scheduled')",
                       (now, f"not sent: part {failed_seq} of {total} failed ({why})",
                        message_id))
    refund_unsent(conn, message_id, cur.rowcount, "another part failed", now)
    return cur.rowcount


DND_REASON = "not sent: the recipient was put on the do-not-disturb list"
# A part in these states was handed to a channel or has left. A message with such a part is
# started: a failure no longer frees it for another channel (message_routes), and its other
# parts follow it even to a number put on the do-not-disturb list since (withheld, they left
# the phone a fragment it never joins or shows whole).
STARTED = "('sending','submitted','delivered','undelivered')"


def started(conn, message_id: str) -> bool:
    """Whether a part of the message was handed to a channel or has left."""
    return conn.execute(f"SELECT 1 FROM parts WHERE message_id=? AND state IN {STARTED}"
                        " LIMIT 1", (message_id,)).fetchone() is not None


def fail_unsent_to(conn, entry: str, now: float) -> int:
    """A number, or a `+3620*` range, just put on the do-not-disturb list: outbound messages
    to it not yet handed to a channel (queued, scheduled) never leave. The list is checked
    at acceptance; someone who sent STOP must not get the campaign scheduled before. A long
    message already started (`started`) finishes."""
    digits = number_digits(entry.strip().rstrip("*"))
    if not digits:
        return 0
    if entry.strip().endswith("*"):
        match, value = "ltrim(m.recipient, '+') LIKE ?", digits + "%"
    else:
        match, value = "ltrim(m.recipient, '+') = ?", digits
    ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT p.message_id FROM parts p JOIN messages m ON m.id=p.message_id"
        f" WHERE p.state IN ('queued','scheduled') AND m.direction='out' AND {match}"
        " AND NOT EXISTS (SELECT 1 FROM parts q WHERE q.message_id=p.message_id"
        f" AND q.state IN {STARTED})", (value,))]
    for message_id in ids:
        withhold(conn, message_id, now)
        refresh(conn, message_id, now)
    return len(ids)


def withhold(conn, message_id: str, now: float) -> int:
    """Fail a message's waiting parts for the do-not-disturb list (refunded); the caller
    refreshes its state. Also for a part handed back by a channel after the number was put
    on the list while it was in flight (Journal.part_failed)."""
    cur = conn.execute("UPDATE parts SET state='failed', done_at=?, reason=? WHERE"
                       " message_id=? AND state IN ('queued','scheduled')",
                       (now, DND_REASON, message_id))
    refund_unsent(conn, message_id, cur.rowcount, "do-not-disturb", now)
    return cur.rowcount


def cancel_if_deleted(conn, message_id: str, now: float) -> int:
    row = conn.execute("SELECT deleted FROM messages WHERE id=?", (message_id,)).fetchone()
    return cancel_unsent(conn, message_id, now) if row and row[0] else 0
