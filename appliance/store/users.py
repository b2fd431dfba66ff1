"""What the journal keeps per user, and how a deleted user's share is archived.

Runs inside the writer's transaction. Archived rows keep their history for reporting
under `name#deleted-<epoch>`; '#' is not allowed in user names, so a new user of the same
name never sees the old one's folders or balance.
"""

from __future__ import annotations

import json

from appliance.store import message_state


def archive_name(user: str, now: float) -> str:
    return f"{user}#deleted-{int(now)}"


def retire(conn, user: str, now: float) -> dict:
    archived = archive_name(user, now)
    outgoing = [r[0] for r in conn.execute(
        "SELECT id FROM messages WHERE user=? AND direction='out' AND deleted=0"
        " AND state IN ('scheduled','queued','sending')", (user,))]
    conn.execute("UPDATE messages SET deleted=1 WHERE id IN (SELECT value FROM json_each(?))",
                 (json.dumps(outgoing),))
    for message_id in outgoing:          # a deleted user's queue does not leave any more
        message_state.cancel_unsent(conn, message_id, now)
    messages = conn.execute("UPDATE messages SET user=? WHERE user=?", (archived, user)).rowcount
    ledger = conn.execute("UPDATE ledger SET user=? WHERE user=?", (archived, user)).rowcount
    balance = conn.execute("DELETE FROM balances WHERE user=?", (user,)).rowcount
    return {"archived_as": archived, "messages": messages, "ledger": ledger,
            "balance": bool(balance)}
