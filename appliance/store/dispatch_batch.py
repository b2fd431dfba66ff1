"""Set-based writes for the dispatch path: one statement per batch, not per part.

A backlog leaves as fast as the writer can claim parts and record their submit_sm_resp;
per part that was about eight statements (claim, the message's state read and update, the
submit record, its message again). Here a batch of one-part messages is claimed with one
UPDATE ... RETURNING, their submit results are recorded with one UPDATE ... FROM, and their
messages' states follow with one UPDATE each time. A one-part message's state is its part's
state, so no per-message aggregate is needed. Their state counts move once per batch
(`counters.moved`; the rows are marked `counted_apart`, so the per-row trigger skips them). Multi-part messages (whole-message routing,
store/message_routes.py) and anything unusual (a part gone with its purged message, a part
no longer `sending`) stay on the per-part path in journal.py, which the caller runs for the
ids these functions did not take. These functions run inside the writer's transaction.
"""

from __future__ import annotations

import json

from appliance.store import counters, events


def claim_one_part(conn, connection: str, part_ids: list[int], now: float) -> list[int]:
    """Mark queued one-part parts as sending on `connection`; returns the ids claimed."""
    rows = conn.execute(
        "UPDATE parts SET state='sending', connection=?, attempts=attempts+1,"
        " counted_apart=counted_apart+1"
        " WHERE id IN (SELECT value FROM json_each(?)) AND state='queued' AND total=1"
        " RETURNING id, message_id", (connection, json.dumps(part_ids))).fetchall()
    counters.moved(conn, "parts", "queued", "sending", len(rows))
    set_message_state(conn, [r[1] for r in rows], "sending", connection, now)
    return [r[0] for r in rows]


def record_submitted(conn, connection: str, results: list[tuple[int, str]],
                     now: float) -> list[tuple[int, str]]:
    """submit_sm_resp OK for one-part parts in flight: state, reference and time in one
    statement. Returns the (part id, reference) pairs recorded; the others (a part given
    back to the queue meanwhile, one gone) are the caller's, part by part."""
    rows = conn.execute(
        "UPDATE parts SET state='submitted', connection=?, reference=json_extract(j.value, '$[1]'),"
        " submitted_at=?, reason='', counted_apart=counted_apart+1 FROM json_each(?) AS j"
        " WHERE parts.id=json_extract(j.value, '$[0]') AND parts.total=1"
        " AND parts.state='sending' RETURNING parts.id, parts.message_id,"
        " parts.reference", (connection, now, json.dumps(results))).fetchall()
    counters.moved(conn, "parts", "sending", "submitted", len(rows))
    set_message_state(conn, [r[1] for r in rows], "submitted", connection, now)
    return [(r[0], r[2]) for r in rows]


def record_submitted_long(conn, connection: str, results: list[tuple[int, str]],
                          now: float) -> dict[int, tuple[str, int]]:
    """submit_sm_resp OK for parts of long messages in flight, in one statement: the parts
    only; the caller settles each of their messages once (state, round). Returns part id ->
    (message id, parts total) for the parts recorded; the others are the caller's, part by
    part (one given back to the queue meanwhile, one gone with its purged message)."""
    rows = conn.execute(
        "UPDATE parts SET state='submitted', connection=?, reference=json_extract(j.value, '$[1]'),"
        " submitted_at=?, reason='', counted_apart=counted_apart+1 FROM json_each(?) AS j"
        " WHERE parts.id=json_extract(j.value, '$[0]') AND parts.total>1"
        " AND parts.state='sending' RETURNING parts.id, parts.message_id, parts.total",
        (connection, now, json.dumps(results))).fetchall()
    counters.moved(conn, "parts", "sending", "submitted", len(rows))
    return {r[0]: (r[1], r[2]) for r in rows}


def set_message_state(conn, message_ids: list[str], state: str, connection: str,
                      now: float) -> None:
    """One-part messages whose only part is now in `state` (neither final nor deleted):
    what message_state.refresh does per message, for the batch; an event for each message
    that changed state and has a callback."""
    if not message_ids:
        return
    ids = json.dumps(message_ids)
    # only the few messages with a callback come back to Python (a bulk backlog has none)
    told = conn.execute(
        "SELECT id, callback FROM messages WHERE id IN (SELECT value FROM json_each(?))"
        " AND state<>? AND callback IS NOT NULL AND callback<>''", (ids, state)).fetchall()
    conn.execute(
        "UPDATE messages SET state=?, updated=?, reason='', connection=?,"
        " submitted_at=CASE WHEN ?='submitted' AND submitted_at IS NULL THEN ?"
        "  ELSE submitted_at END"
        " WHERE id IN (SELECT value FROM json_each(?)) AND state<>?",
        (state, now, connection, state, now, ids, state))
    for message_id, callback in told:
        events.record(conn, message_id, state, now, callback)
