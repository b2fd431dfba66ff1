"""Which parts a delivery receipt may belong to: every bind of one SMSC account.

An aggregator account is often two binds, a transmitter that sends and a receiver that gets
the receipts; the SMSC's message ids are unique per account, not per bind. Each SMPP
connection records its account here when it starts (`smsc_accounts`, durable, so receipts
for parts sent before a restart still find them), and a receipt arriving on any bind is
matched against the parts of every bind of that account. Connections that never recorded an
account (modems) are an account of their own.

These functions run inside the journal writer's transaction. The account table changes only
when a connection starts, so each writer connection keeps the peers it looked up (a receipt
then costs one index probe per bind of the account, as before this table existed).
"""

from __future__ import annotations

_CACHE_LIMIT = 16     # writer connections remembered (one per open journal; tests open many)
_peer_cache: dict[int, tuple[object, dict[str, list[str]]]] = {}

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
    _peer_cache.pop(id(conn), None)


def peers(conn, connection: str) -> list[str]:
    """`connection` first, then every other connection of its SMSC account."""
    cached = _peer_cache.get(id(conn))
    if cached is None or cached[0] is not conn:      # the object itself: ids are reused
        if len(_peer_cache) >= _CACHE_LIMIT:
            _peer_cache.clear()
        cached = _peer_cache[id(conn)] = (conn, {})
    names = cached[1].get(connection)
    if names is None:
        rows = conn.execute("SELECT connection FROM smsc_accounts WHERE account="
                            "(SELECT account FROM smsc_accounts WHERE connection=?)",
                            (connection,)).fetchall()
        names = cached[1][connection] = [connection] + [r[0] for r in rows
                                                        if r[0] != connection]
    return names


def part_by_reference(conn, connection: str, reference: str, recipient: str | None):
    """The part (id, message_id, connection) a receipt on `connection` is for, or None.
    SMSC ids are unique per account, so the first bind with the reference has it."""
    sql = ("SELECT p.id, p.message_id, p.connection FROM parts p"
           " WHERE p.connection=? AND p.reference=? AND p.state IN ('submitted','sending')")
    extra: list = []
    if recipient:
        # Modem references wrap at 256: the recipient tells two parts with one MR apart.
        sql += (" AND p.message_id IN (SELECT id FROM messages m WHERE m.id=p.message_id AND"
                " (m.recipient=? OR ltrim(m.recipient,'+')=ltrim(?,'+')))")
        extra = [recipient, recipient]
    sql += " ORDER BY p.submitted_at DESC LIMIT 1"
    for name in peers(conn, connection):
        row = conn.execute(sql, [name, reference, *extra]).fetchone()
        if row is not None:
            return row
    return None


def any_orphans(conn) -> bool:
    return conn.execute("SELECT 1 FROM orphan_reports LIMIT 1").fetchone() is not None


def take_orphans(conn, connection: str, reference: str) -> list[str]:
    """Remove and return (as stored JSON) the receipts for `reference` that came, on any
    bind of `connection`'s account, before the reference was recorded."""
    if conn.execute("SELECT 1 FROM orphan_reports LIMIT 1").fetchone() is None:
        return []           # the usual case, asked once per submitted part: one probe
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
