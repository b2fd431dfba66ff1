"""Which parts a delivery receipt may belong to: every bind of one SMSC account.

An aggregator account is often two binds, a transmitter that sends and a receiver that gets
the receipts; the SMSC's message ids are unique per account, not per bind. Each SMPP
connection records its account here when it starts (`smsc_accounts`, durable, so receipts
for parts sent before a restart still find them), and a receipt arriving on any bind is
matched against the parts of every bind of that account. Connections that never recorded an
account (modems) are an account of their own.

These functions run inside the journal writer's transaction.
"""

from __future__ import annotations

DDL = """
CREATE TABLE IF NOT EXISTS smsc_accounts (
    connection    TEXT PRIMARY KEY,
    account       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS smsc_accounts_account ON smsc_accounts(account);
CREATE INDEX IF NOT EXISTS orphan_age ON orphan_reports(connection, received);
"""


def migrate(conn) -> None:
    """Idempotent: new tables and indexes only."""
    conn.executescript(DDL)


def set_account(conn, connection: str, account: str) -> None:
    conn.execute("INSERT INTO smsc_accounts(connection, account) VALUES (?,?)"
                 " ON CONFLICT(connection) DO UPDATE SET account=excluded.account",
                 (connection, account))


def peers(conn, connection: str) -> list[str]:
    """`connection` and every other connection of its SMSC account."""
    rows = conn.execute("SELECT connection FROM smsc_accounts WHERE account="
                        "(SELECT account FROM smsc_accounts WHERE connection=?)",
                        (connection,)).fetchall()
    return [connection] + [r[0] for r in rows if r[0] != connection]


def part_by_reference(conn, connection: str, reference: str, recipient: str | None):
    """The part (id, message_id, connection) a receipt on `connection` is for, or None."""
    names = peers(conn, connection)
    sql = ("SELECT p.id, p.message_id, p.connection FROM parts p"
           " JOIN messages m ON m.id=p.message_id"
           f" WHERE p.connection IN ({_marks(names)}) AND p.reference=?"
           " AND p.state IN ('submitted','sending')")
    params: list = [*names, reference]
    if recipient:
        # Modem references wrap at 256: the recipient tells two parts with one MR apart.
        sql += " AND (m.recipient=? OR ltrim(m.recipient,'+')=ltrim(?,'+'))"
        params += [recipient, recipient]
    sql += " ORDER BY p.submitted_at DESC LIMIT 1"
    return conn.execute(sql, params).fetchone()


def take_orphans(conn, connection: str, reference: str) -> list[str]:
    """Remove and return (as stored JSON) the receipts for `reference` that came, on any
    bind of `connection`'s account, before the reference was recorded."""
    names = peers(conn, connection)
    rows = conn.execute(f"SELECT rowid, report FROM orphan_reports WHERE connection IN"
                        f" ({_marks(names)}) AND reference=?", (*names, reference)).fetchall()
    for row in rows:
        conn.execute("DELETE FROM orphan_reports WHERE rowid=?", (row[0],))
    return [row[1] for row in rows]


def drop_orphans(conn, connection: str, older_than: float) -> int:
    """Drop receipts that came on `connection` before `older_than` and never found a part."""
    return conn.execute("DELETE FROM orphan_reports WHERE connection=? AND received<?",
                        (connection, older_than)).rowcount


def _marks(names: list[str]) -> str:
    return ",".join("?" * len(names))
