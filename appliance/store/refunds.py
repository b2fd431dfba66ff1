"""Credit back for parts that never left the appliance.

Sending debits one credit per part when the message is accepted (store/accepting.py). A
part cancelled before it was handed to a channel (the message deleted), expired while it
waited for a route, withheld by the do-not-disturb list or not sent because another part of
its long message failed for good was never sent; seed 003's credit "specifies how many
messages the user can send", so its credit comes back, with a ledger row saying why.

Metered means what the debit used: a balance row and not unlimited. A user switched from
unlimited to metered between the two gets the credit of a part never charged; that is the
rare case, and the accept path stays free of a ledger index to look the debit up.
Runs inside the writer's transaction.
"""

from __future__ import annotations

CREDIT_MAX = 2**31 - 1          # store/journal.py's range of a balance


def refund_unsent(conn, message_id: str, parts: int, why: str, now: float) -> None:
    if parts <= 0:
        return
    row = conn.execute(
        "SELECT m.user FROM messages m JOIN balances b ON b.user=m.user WHERE m.id=?"
        " AND m.direction='out' AND NOT EXISTS (SELECT 1 FROM unlimited_users u"
        " WHERE u.user=m.user)", (message_id,)).fetchone()
    if row is None:
        return
    # within the balance's range (seed 003: an int), as every other credit change
    conn.execute("UPDATE balances SET balance=min(balance+?, ?) WHERE user=?",
                 (parts, CREDIT_MAX, row[0]))
    conn.execute("INSERT INTO ledger(user, delta, reason, message_id, at) VALUES (?,?,?,?,?)",
                 (row[0], parts, f"refund: {why}", message_id, now))
