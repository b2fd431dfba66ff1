"""Credit back for parts that never left the appliance.

Sending debits one credit per part when the message is accepted (store/accepting.py). A
part cancelled before it was handed to a channel (the message deleted), expired while it
waited for a route, withheld by the do-not-disturb list or not sent because another part of
its long message failed for good was never sent; seed 003's credit "specifies how many
messages the user can send", so its credit comes back, with a ledger row saying why.

Credit comes back only for what was charged: acceptance records it in the message row
(`messages.charged`, 1 or 0, no extra write on the hot path), so a user switched between
unlimited and metered since then gets back exactly what the send took. Before, the refund
followed the current setting: a user switched from unlimited to metered was credited for
parts never charged, the reverse got nothing back. Messages accepted before the column
(NULL) still follow the current setting: nothing else says what they cost.
Runs inside the writer's transaction.
"""

from __future__ import annotations

CREDIT_MAX = 2**31 - 1          # store/journal.py's range of a balance


def migrate(conn) -> None:
    """Idempotent: journals from before `charged` get it, NULL for the messages they hold."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "charged" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN charged INTEGER")


def refund_unsent(conn, message_id: str, parts: int, why: str, now: float) -> None:
    if parts <= 0:
        return
    row = conn.execute(
        "SELECT m.user FROM messages m JOIN balances b ON b.user=m.user WHERE m.id=?"
        " AND m.direction='out' AND (m.charged=1 OR (m.charged IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM unlimited_users u WHERE u.user=m.user)))", (message_id,)).fetchone()
    if row is None:
        return
    # within the balance's range (seed 003: an int), as every other credit change
    conn.execute("UPDATE balances SET balance=min(balance+?, ?) WHERE user=?",
                 (parts, CREDIT_MAX, row[0]))
    conn.execute("INSERT INTO ledger(user, delta, reason, message_id, at) VALUES (?,?,?,?,?)",
                 (row[0], parts, f"refund: {why}", message_id, now))
