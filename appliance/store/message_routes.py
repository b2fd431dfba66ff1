"""Whole-message routing in the journal: a message leaves through one channel at a time.

A phone joins the parts of a long SMS by originator and concatenation reference, so every
part of a message must leave through the same channel under the same reference. When the
dispatcher claims the first part of a long message it opens a *round*: a row of
`message_routes` that pins the message to that connection with a concatenation reference
unique per (connection, recipient) among the messages still in flight. Every later part
waits for that connection. A single SMS needs no pin (its one part is the whole message);
it keeps the per-part failover of `routing.py` and costs no extra write.

Cost: one row written when the round opens and once when it ends; progress is read from
the parts' `submitted_at`, so a part's submit writes nothing here.

Failover (docs/architecture.md, "Whole messages"):

- A round in which nothing has left yet is given up at the first transient failure, or when
  its connection took none of its parts for `reroute_after` seconds: the message is free to
  go through any channel (the connection goes last in its candidates). No duplicate.
- A round in which some parts left but the rest made no progress for `reroute_after`
  seconds (the channel hung, lost its network, was removed) is abandoned: the whole message
  is sent again through another channel under a new reference. The parts that had left are
  counted as duplicates (the recipient may see them as a fragment); their references are
  retired so a late report for them cannot settle another message's part.
- Both happen at once, without waiting `reroute_after`, when the round's connection is
  known down (the dispatcher passes `down`: a failed/held/wrong_modem/stopped modem, a
  failing or stopped uplink, a connection the operator removed; appliance/channel_down.py).

Functions here run inside the writer's transaction, like `message_state`.
"""

from __future__ import annotations

import logging

from appliance.store import message_state

log = logging.getLogger("appliance.store")

REFS_8BIT = 256
RETIRED_KEEP_SECONDS = 7 * 24 * 3600
_UNSENT = "('queued','scheduled','sending')"
_LEFT = "('submitted','delivered','undelivered')"     # the part reached the network

DDL = """
CREATE TABLE IF NOT EXISTS message_routes (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL,
    round         INTEGER NOT NULL,            -- 1, 2, ... per message
    connection    TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    concat_ref    INTEGER NOT NULL,
    started       REAL NOT NULL,
    parts_sent    INTEGER NOT NULL DEFAULT 0,  -- set when the round ends
    ended         REAL,                        -- NULL while the round is in flight
    outcome       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS message_routes_message ON message_routes(message_id, round);
CREATE INDEX IF NOT EXISTS message_routes_open ON message_routes(started)
    WHERE ended IS NULL;
CREATE INDEX IF NOT EXISTS message_routes_refs ON message_routes(connection, recipient)
    WHERE ended IS NULL;
CREATE INDEX IF NOT EXISTS message_routes_resent ON message_routes(ended)
    WHERE ended IS NOT NULL AND parts_sent>0 AND outcome<>'sent';

CREATE TABLE IF NOT EXISTS concat_counters (  -- last reference given per channel and recipient
    connection    TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    last_ref      INTEGER NOT NULL,
    PRIMARY KEY (connection, recipient)
);

CREATE TABLE IF NOT EXISTS retired_refs (     -- references of abandoned rounds
    connection    TEXT NOT NULL,
    reference     TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    at            REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS retired_refs_ref ON retired_refs(connection, reference);
"""


# --- claiming ------------------------------------------------------------------------------


def open_round(conn, message_id: str, connection: str, now: float) -> int | None:
    """The concatenation reference of the message's round on `connection`, opening the round
    when the message has none. None: every 8-bit reference to this recipient on this
    connection is in flight (or the message is pinned elsewhere); the part waits."""
    row = conn.execute("SELECT connection, concat_ref FROM message_routes WHERE message_id=?"
                       " AND ended IS NULL", (message_id,)).fetchone()
    if row is not None:
        return row["concat_ref"] if row["connection"] == connection else None
    msg = conn.execute("SELECT recipient, parts_total FROM messages WHERE id=?",
                       (message_id,)).fetchone()
    if msg["parts_total"] <= 1:
        return 0
    ref = _allocate_ref(conn, connection, msg["recipient"])
    if ref is None:
        return None
    last = conn.execute("SELECT coalesce(max(round), 0) FROM message_routes WHERE message_id=?",
                        (message_id,)).fetchone()[0]
    conn.execute("INSERT INTO message_routes(message_id, round, connection, recipient,"
                 " concat_ref, started) VALUES (?,?,?,?,?,?)",
                 (message_id, last + 1, connection, msg["recipient"], ref, now))
    conn.execute("UPDATE parts SET concat_ref=? WHERE message_id=?", (ref, message_id))
    return ref


def _allocate_ref(conn, connection: str, recipient: str) -> int | None:
    """The next reference after the last one given to (connection, recipient), skipping
    those of messages still in flight; 8-bit references wrap after 256."""
    in_use = {r[0] for r in conn.execute(
        "SELECT r.concat_ref FROM message_routes r WHERE r.connection=? AND r.recipient=?"
        f" AND r.ended IS NULL AND EXISTS (SELECT 1 FROM parts p WHERE"
        f" p.message_id=r.message_id AND p.state IN {_UNSENT})", (connection, recipient))}
    row = conn.execute("SELECT last_ref FROM concat_counters WHERE connection=? AND recipient=?",
                       (connection, recipient)).fetchone()
    last = row[0] if row else -1
    for step in range(1, REFS_8BIT + 1):
        ref = (last + step) % REFS_8BIT
        if ref not in in_use:
            conn.execute("INSERT INTO concat_counters VALUES (?,?,?) ON CONFLICT(connection,"
                         " recipient) DO UPDATE SET last_ref=excluded.last_ref",
                         (connection, recipient, ref))
            return ref
    return None


# --- outcomes of parts -----------------------------------------------------------------------


def part_submitted(conn, message_id: str, total: int, now: float) -> None:
    """A round with nothing left to send ends (its reference is free again)."""
    if total > 1:
        close_if_done(conn, message_id, now)


def part_failed(conn, message_id: str, connection: str, retryable: bool, total: int,
                now: float) -> None:
    """A transient failure before anything of the round left frees the message at once."""
    if total <= 1:
        return
    if retryable and not message_state.started(conn, message_id):
        _end_round(conn, message_id, now, f"{connection} failed before any part left")
    else:
        close_if_done(conn, message_id, now)


def close_if_done(conn, message_id: str, now: float) -> None:
    left = conn.execute(f"SELECT 1 FROM parts WHERE message_id=? AND state IN {_UNSENT}"
                        " LIMIT 1", (message_id,)).fetchone()
    if left is None:
        _end_round(conn, message_id, now, "sent")


def _end_round(conn, message_id: str, now: float, outcome: str) -> None:
    conn.execute("UPDATE message_routes SET ended=?, outcome=?, parts_sent=(SELECT count(*)"
                 f" FROM parts WHERE message_id=? AND state IN {_LEFT}) WHERE message_id=?"
                 " AND ended IS NULL", (now, outcome, message_id, message_id))


# --- stalled rounds ------------------------------------------------------------------------------


def stalled_rounds(conn, now: float, grace: float, down: dict[str, str] | None = None) -> list:
    """Open rounds older than `grace` whose last part left more than `grace` ago (or none),
    and every open round pinned to a connection in `down` (known down: no grace)."""
    rows = conn.execute(
        "SELECT r.*, (SELECT count(*) FROM parts p WHERE p.message_id=r.message_id AND"
        f" p.state IN {_LEFT}) AS sent FROM message_routes r WHERE r.ended IS NULL AND"
        " r.started<? AND coalesce((SELECT max(submitted_at) FROM parts p WHERE"
        " p.message_id=r.message_id), 0)<?", (now - grace, now - grace)).fetchall()
    if not down:
        return rows
    seen = {r["id"] for r in rows}
    marks = ",".join("?" * len(down))
    rows += [r for r in conn.execute(
        "SELECT r.*, (SELECT count(*) FROM parts p WHERE p.message_id=r.message_id AND"
        f" p.state IN {_LEFT}) AS sent FROM message_routes r WHERE r.ended IS NULL AND"
        f" r.connection IN ({marks})", tuple(down)).fetchall() if r["id"] not in seen]
    return rows


def settle_stalled(conn, now: float, grace: float, down: dict[str, str] | None = None
                   ) -> list[dict]:
    """End or abandon every round that made no progress for `grace` seconds, or whose
    connection is known down (`down`: connection -> why, e.g. 'is failed'); returns what was
    done to each ({message_id, connection, action, duplicates, why}) for the log."""
    down = down or {}
    done = []
    for route in stalled_rounds(conn, now, grace, down):
        why = down.get(route["connection"], "")
        action = _settle(conn, route, now, why)
        if action:
            done.append({"message_id": route["message_id"], "connection": route["connection"],
                         "action": action, "duplicates": route["sent"], "why": why})
    return done


def _settle(conn, route, now: float, why: str = "") -> str:
    message_id = route["message_id"]
    states = [r[0] for r in conn.execute("SELECT state FROM parts WHERE message_id=?",
                                         (message_id,))]
    if not any(s in ("queued", "scheduled", "sending") for s in states):
        _end_round(conn, message_id, now, "sent")
        return ""
    if "sending" in states:       # the channel still owes an answer; it comes or times out
        return ""
    if route["sent"] == 0:
        reason = f"{route['connection']} {why}" if why else \
            f"{route['connection']} took no part for a while"
        _end_round(conn, message_id, now, reason)
        _requeue_whole(conn, message_id, route["connection"], now)
        return "released"
    _abandon(conn, route, now, why)
    return "resent"


def _abandon(conn, route, now: float, why: str = "") -> None:
    message_id, connection = route["message_id"], route["connection"]
    total = conn.execute("SELECT count(*) FROM parts WHERE message_id=?",
                         (message_id,)).fetchone()[0]
    stalled = f"stalled ({why})" if why else "stalled"
    _end_round(conn, message_id, now, f"{connection} {stalled} after {route['sent']} of"
               f" {total} parts; resent whole through another channel")
    conn.execute("DELETE FROM retired_refs WHERE at<?", (now - RETIRED_KEEP_SECONDS,))
    conn.execute("INSERT INTO retired_refs SELECT connection, reference, message_id, ? FROM parts"
                 " WHERE message_id=? AND reference IS NOT NULL", (now, message_id))
    _requeue_whole(conn, message_id, connection, now)


def _requeue_whole(conn, message_id: str, connection: str, now: float) -> None:
    if conn.execute("SELECT 1 FROM parts WHERE message_id=? AND reason=? LIMIT 1",
                    (message_id, message_state.DND_REASON)).fetchone():
        return          # withheld for the do-not-disturb list: not sent again, whole or not
    rows = conn.execute("SELECT id, tried FROM parts WHERE message_id=?", (message_id,))
    for row in rows.fetchall():
        names = [n for n in row["tried"].split(",") if n]
        tried = ",".join(names + ([connection] if connection not in names else []))
        conn.execute("UPDATE parts SET state='queued', next_attempt=?, connection='',"
                     " reference=NULL, submitted_at=NULL, done_at=NULL, reason='', tried=?"
                     " WHERE id=?", (now, tried, row["id"]))
    message_state.refresh(conn, message_id, now)


def is_retired(conn, connection: str, reference: str) -> bool:
    """A report for a part of an abandoned round: it settles nothing."""
    from appliance.store import receipt_match        # any bind of the same SMSC account
    names = receipt_match.peers(conn, connection)
    return conn.execute(f"SELECT 1 FROM retired_refs WHERE connection IN"
                        f" ({','.join('?' * len(names))}) AND reference=? LIMIT 1",
                        (*names, reference)).fetchone() is not None


# --- reading --------------------------------------------------------------------------------------


def history(conn, message_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT round, connection, concat_ref, started, ended, parts_sent, outcome"
        " FROM message_routes WHERE message_id=? ORDER BY round", (message_id,))]


def channels_used(conn, message_ids: list[str]) -> dict[str, list[str]]:
    """Every connection that carried (part of) each message, in the order used."""
    used: dict[str, list[str]] = {}
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
                f"SELECT message_id, connection FROM message_routes WHERE message_id IN ({marks})"
                " AND (parts_sent>0 OR ended IS NULL OR outcome='sent') ORDER BY message_id,"
                " round", chunk):
            names = used.setdefault(row[0], [])
            if row[1] not in names:
                names.append(row[1])
    return used


def duplicates(conn, message_id: str) -> int:
    """Parts that left in rounds later abandoned: the recipient may have them twice."""
    row = conn.execute("SELECT coalesce(sum(parts_sent), 0) FROM message_routes WHERE"
                       " message_id=? AND ended IS NOT NULL AND outcome<>'sent'",
                       (message_id,)).fetchone()
    return row[0]


def summary(conn) -> dict:
    """For /status: rounds in flight, messages resent whole, duplicate parts, the latest."""
    in_flight = conn.execute("SELECT count(*) FROM message_routes WHERE ended IS NULL"
                             ).fetchone()[0]
    resent = conn.execute("SELECT count(*), coalesce(sum(parts_sent),0) FROM message_routes"
                          " WHERE ended IS NOT NULL AND parts_sent>0 AND outcome<>'sent'"
                          ).fetchone()
    latest = conn.execute("SELECT message_id, connection, ended, outcome FROM message_routes"
                          " WHERE ended IS NOT NULL AND parts_sent>0 AND outcome<>'sent'"
                          " ORDER BY ended DESC LIMIT 5").fetchall()
    recent = []
    for row in latest:
        recent.append({"message_id": row["message_id"], "abandoned": row["connection"],
                       "at": row["ended"], "outcome": row["outcome"],
                       "channels": channels_used(conn, [row["message_id"]]).get(
                           row["message_id"], [])})
    return {"in_flight": in_flight, "resent_whole": resent[0], "duplicate_parts": resent[1],
            "recent_resends": recent}
