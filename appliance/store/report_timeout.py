"""The report timeout policy: a part whose delivery report never comes does not stay
`submitted` (Ozeki 13) for ever.

Each connection has `report_timeout_hours` (default 48 h, about an SMSC's default validity).
A part of a message that asked for a report, still `submitted` that long after it left,
becomes `expired` with a reason that says so; the message state follows and its callback
fires like any other. A connection that does not ask for reports (`deliveryreport = false`)
has no timeout. These functions run inside the journal writer's transaction.
"""

from __future__ import annotations

from appliance.store import message_state

DEFAULT_HOURS = 48.0
REASON = "no delivery report within {} (report timeout)"


def migrate(conn) -> None:
    conn.execute("CREATE INDEX IF NOT EXISTS parts_awaiting_report ON parts(submitted_at)"
                 " WHERE state = 'submitted'")


def timeouts_from_config(connections) -> dict[str, float | None]:
    """connection name -> seconds (None: that connection asks for no reports)."""
    return {c.name: (getattr(c, "report_timeout_hours", DEFAULT_HOURS) * 3600
                     if getattr(c, "deliveryreport", True) else None)
            for c in connections}


def any_due(conn, now: float, timeouts: dict, default: float) -> bool:
    """A cheap indexed read: is any submitted part older than the shortest timeout?"""
    shortest = min([t for t in timeouts.values() if t is not None] + [default])
    return conn.execute("SELECT 1 FROM parts WHERE state='submitted' AND submitted_at<?"
                        " LIMIT 1", (now - shortest,)).fetchone() is not None


def expire_unreported(conn, now: float, timeouts: dict, default: float) -> int:
    """End the parts whose report is overdue. Returns how many messages changed."""
    message_ids: set[str] = set()
    for connection, seconds in timeouts.items():
        if seconds is not None:
            message_ids |= _expire(conn, now, seconds, "connection=?", (connection,))
    named = list(timeouts)
    other = f"connection NOT IN ({','.join('?' * len(named))})" if named else "1=1"
    message_ids |= _expire(conn, now, default, other, tuple(named))
    for message_id in message_ids:
        message_state.refresh(conn, message_id, now)
    return len(message_ids)


def _expire(conn, now: float, seconds: float, where: str, params: tuple) -> set[str]:
    selection = (f" FROM parts WHERE state='submitted' AND submitted_at<? AND {where}"
                 " AND message_id IN (SELECT id FROM messages WHERE want_report=1)")
    args = (now - seconds, *params)
    ids = {r[0] for r in conn.execute("SELECT DISTINCT message_id" + selection, args)}
    if ids:
        conn.execute("UPDATE parts SET state='expired', done_at=?, reason=?"
                     " WHERE id IN (SELECT id" + selection + ")",
                     (now, REASON.format(_duration(seconds)), *args))
    return ids


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
