"""Which parts a delivery receipt may belong to: every bind of one SMSC account.

An aggregator account is often two binds, a transmitter that sends and a receiver that gets
the receipts; the SMSC's message ids are unique per account, not per bind. Each SMPP
connection records its account here when it starts (`smsc_accounts`, durable, so receipts
for parts sent before a restart still find them), and a receipt arriving on any bind is
matched against the parts of every bind of that account. Connections that never recorded an
account (modems) are an account of their own.

An SMPP connection with `messageidbase = "auto"` also records itself in `smsc_id_bases`:
a receipt id that matches nothing is then read in the mixed base its SMSC's ids allow
(`other_readings`, `plausible`), and the convention that matched is kept (docs/smpp.md).
Hex letters on both sides say the SMSC writes hex throughout: the account then learns "hex"
(`hex_throughout`), which reads a digits-only id as hex too, so `0000000A` and `00000010`
are no longer both 10.

These functions run inside the journal writer's transaction. The account table changes only
when a connection starts, so each writer connection keeps the peers it looked up (a receipt
then costs one index probe per bind of the account, as before this table existed).
"""

from __future__ import annotations

_CACHE_LIMIT = 16     # writer connections remembered (one per open journal; tests open many)
_peer_cache: dict[int, tuple[object, dict[str, list[str]]]] = {}
# writer connection -> {connection: (setting, learned, resp_letters, receipt_letters,
#                                    learned_at)}
_base_cache: dict[int, tuple[object, dict[str, tuple]]] = {}
_NONE = ("", "", 0, 0, None)
_INVERSE = {"hex-decimal": "decimal-hex", "decimal-hex": "hex-decimal"}

DDL = """
CREATE TABLE IF NOT EXISTS smsc_accounts (
    connection    TEXT PRIMARY KEY,
    account       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS smsc_accounts_account ON smsc_accounts(account);
CREATE INDEX IF NOT EXISTS orphan_age ON orphan_reports(connection, received);
CREATE TABLE IF NOT EXISTS smsc_id_bases (
    connection    TEXT PRIMARY KEY,
    setting       TEXT NOT NULL,               -- messageidbase as configured
    learned       TEXT NOT NULL DEFAULT '',    -- "auto" only: hex-decimal | decimal-hex | hex
    learned_at    REAL,
    resp_letters    INTEGER NOT NULL DEFAULT 0,  -- a submit_sm_resp id had a hex letter
    receipt_letters INTEGER NOT NULL DEFAULT 0   -- a receipt id had a hex letter
);
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


def part_by_reference(conn, connection: str, reference: str, recipient: str | None, *,
                      before: float | None = None, since: float | None = None):
    """The part (id, message_id, connection) a receipt on `connection` is for, or None:
    the newest one with the reference on any bind of the account (submitted `before` or
    `since` a time, if given). An SMSC's ids are unique only until its counter starts again
    (an SMSC restart): then an old part still waiting on one bind shares a newer one's id,
    and the first bind asked must not win."""
    sql = ("SELECT p.id, p.message_id, p.connection, p.submitted_at FROM parts p"
           " WHERE p.connection=? AND p.reference=? AND p.state IN ('submitted','sending')")
    extra: list = []
    if before is not None:
        sql += " AND p.submitted_at < ?"
        extra.append(before)
    if since is not None:
        sql += " AND p.submitted_at >= ?"
        extra.append(since)
    tail = _number_tail(recipient)
    if tail:
        # Modem references wrap at 256: the recipient tells two parts with one MR apart. By
        # its last digits: an SMSC may write it in national form (06201230077 for
        # +36201230077), and such a report stayed unmatched until the report timeout.
        sql += (" AND p.message_id IN (SELECT id FROM messages m WHERE m.id=p.message_id AND"
                " substr(m.recipient, -?)=?)")
        extra += [len(tail), tail]
    sql += " ORDER BY p.submitted_at DESC LIMIT 1"
    found = [row for name in peers(conn, connection)
             if (row := conn.execute(sql, [name, reference, *extra]).fetchone()) is not None]
    if not found:
        return None
    return max(found, key=lambda row: row[3] or 0.0)


def part_for_receipt(conn, connection: str, reference: str, recipient: str | None):
    """(part, the reference it was recorded with) for a receipt, or None. An account that
    learned "hex" recorded its parts sent before the learning under "auto"'s reading (a
    digits-only id as decimal: `00000010` as 10, now 16): those are looked up under that
    reading, and only those, so `00000016`, recorded as 16 then, cannot take 10's receipt."""
    _, learned, _, _, learned_at = _id_bases(conn).get(connection, _NONE)
    if learned != "hex" or learned_at is None:
        row = part_by_reference(conn, connection, reference, recipient)
        return None if row is None else (row, reference)
    row = part_by_reference(conn, connection, reference, recipient, since=learned_at)
    if row is not None:
        return row, reference
    before = _auto_reading(reference)
    row = part_by_reference(conn, connection, before, recipient, before=learned_at)
    return None if row is None else (row, before)


def _auto_reading(reference: str) -> str:
    """What "auto" made of the id whose hex reading is `reference`: its hex digits, when
    they are all digits, read as decimal (the "hex-decimal" reading of `other_readings`)."""
    return next((other for convention, other in other_readings(reference)
                 if convention == "hex-decimal"), reference)


NUMBER_TAIL_DIGITS = 8       # a subscriber number's end: the same in every number format


def _number_tail(recipient: str | None) -> str:
    digits = "".join(c for c in recipient or "" if c.isdigit())
    return digits[-NUMBER_TAIL_DIGITS:]


def set_id_base(conn, connection: str, setting: str) -> str:
    """Record `connection`'s messageidbase; returns the convention learned for it earlier
    ("" if none, or if the setting is explicit). A changed setting forgets what was learned:
    the operator changed something about the SMSC."""
    conn.execute("INSERT INTO smsc_id_bases(connection, setting) VALUES (?,?)"
                 " ON CONFLICT(connection) DO UPDATE SET setting=excluded.setting,"
                 " learned=CASE WHEN setting=excluded.setting THEN learned ELSE '' END,"
                 " learned_at=CASE WHEN setting=excluded.setting THEN learned_at END",
                 (connection, setting))
    _base_cache.pop(id(conn), None)
    return _id_bases(conn).get(connection, _NONE)[1] if setting == "auto" else ""


def set_letters(conn, connection: str, side: str) -> None:
    """`side` ("resp" or "receipt") of `connection` showed an id with a hex letter."""
    column = "resp_letters" if side == "resp" else "receipt_letters"
    conn.execute(f"UPDATE smsc_id_bases SET {column}=1 WHERE connection=?", (connection,))
    _base_cache.pop(id(conn), None)


def plausible(conn, connection: str) -> set[str]:
    """The mixed conventions the account's ids allow: hex letters seen in resp ids and never
    in receipt ids for "hex-decimal", the reverse for "decimal-hex". An SMSC that writes one
    base throughout (letters on both sides, or on neither) is never guessed about, so an
    early receipt cannot settle another part whose reference is its other reading."""
    bases = _id_bases(conn)
    rows = [bases.get(name, _NONE) for name in peers(conn, connection)]
    resp = any(row[2] for row in rows)
    receipt = any(row[3] for row in rows)
    if resp and not receipt:
        return {"hex-decimal"}
    if receipt and not resp:
        return {"decimal-hex"}
    return set()


def hex_throughout(conn, connection: str) -> bool:
    """Hex letters were seen in ids on both sides of `connection`'s account: one base, hex."""
    bases = _id_bases(conn)
    rows = [bases.get(name, _NONE) for name in peers(conn, connection)]
    return any(row[2] for row in rows) and any(row[3] for row in rows)


def guesses(conn, connection: str) -> bool:
    """Whether receipts on `connection` may be read the other ways (messageidbase "auto",
    recorded by an SMPP uplink; modems and explicit settings never guess)."""
    return _id_bases(conn).get(connection, _NONE)[0] == "auto"


def part_by_other_reading(conn, connection: str, reference: str, recipient: str | None):
    """After `part_by_reference` missed: (part, reference it matched, convention) under one
    of the mixed conventions, or None. Only for a connection in "auto" mode."""
    setting, learned = _id_bases(conn).get(connection, _NONE)[:2]
    if setting != "auto":
        return None
    if learned == "hex":
        return None             # one base throughout: part_for_receipt read it both ways
    allowed = plausible(conn, connection)
    for convention, other in other_readings(reference, learned):
        if convention not in allowed:
            continue
        row = part_by_reference(conn, connection, other, recipient)
        if row is not None:
            return row, other, convention
    return None


def learn(conn, connection: str, convention: str, now: float) -> list[str]:
    """Every "auto" bind of `connection`'s account now reads ids by `convention`; returns
    the connections for which that is news (empty when it was known already). "hex" (letters
    on both sides) is learned only by a bind that has learned nothing: a mixed convention
    matched receipts, so a stray id with a letter does not overturn it."""
    names = peers(conn, connection)
    bases = _id_bases(conn)
    news = [n for n in names if bases.get(n, _NONE)[0] == "auto"
            and bases[n][1] != convention and (convention != "hex" or not bases[n][1])]
    for name in news:
        conn.execute("UPDATE smsc_id_bases SET learned=?, learned_at=? WHERE connection=?",
                     (convention, now, name))
    if news:
        _base_cache.pop(id(conn), None)
    return news


def _id_bases(conn) -> dict[str, tuple]:
    # one small table (a row per SMPP connection), read once per writer connection
    cached = _base_cache.get(id(conn))
    if cached is None or cached[0] is not conn:
        if len(_base_cache) >= _CACHE_LIMIT:
            _base_cache.clear()
        rows = conn.execute("SELECT connection, setting, learned, resp_letters,"
                            " receipt_letters, learned_at FROM smsc_id_bases")
        cached = _base_cache[id(conn)] = (conn, {r[0]: tuple(r[1:]) for r in rows})
    return cached[1]


def other_readings(reference: str, learned: str = "") -> list[tuple[str, str]]:
    """For `auto` mode, when a receipt's (normalised) id matched no part: the references it
    has under the two mixed conventions, as (convention, reference), `learned` first.

    Under "auto" a digits-only id is read as decimal, so the same number can be stored two
    ways. "hex-decimal" (submit_sm_resp in hex, receipt in decimal): a resp like `00000100`
    was stored as "100" while the receipt says 256, so 256 written in hex and read as
    decimal. "decimal-hex": the receipt `100` means hex, 256. The two readings are each
    other's inverse, so the same list also finds the receipts waiting (orphans) for a
    newly recorded reference."""
    if not reference.isdigit() or len(reference) > 32:
        return []           # not a number (UUIDs): nothing else to read
    found = []
    hex_digits = format(int(reference), "x")
    if hex_digits.isdigit():
        found.append(("hex-decimal", str(int(hex_digits, 10))))
    found.append(("decimal-hex", str(int(reference, 16))))
    found = [(convention, ref) for convention, ref in found if ref != reference]
    found.sort(key=lambda item: item[0] != learned)     # the learned one first (stable)
    return found


def any_orphans(conn) -> bool:
    return conn.execute("SELECT 1 FROM orphan_reports LIMIT 1").fetchone() is not None


def take_orphans(conn, connection: str, reference: str) -> list[str]:
    """Remove and return (as stored JSON) the receipts for `reference` that came, on any
    bind of `connection`'s account, before the reference was recorded."""
    if conn.execute("SELECT 1 FROM orphan_reports LIMIT 1").fetchone() is None:
        return []           # the usual case, asked once per submitted part: one probe
    names = peers(conn, connection)
    # an "auto" bind's receipt may wait under another reading of the same id (the two
    # readings are each other's inverse: other_readings)
    refs = [reference]
    if any(guesses(conn, name) for name in names):
        # an orphan X found as (c, X) here is read as `reference` under the inverse of c
        allowed = plausible(conn, connection)
        refs += [other for convention, other in other_readings(reference)
                 if _INVERSE[convention] in allowed]
    rows = conn.execute(f"SELECT rowid, report, connection, reference FROM orphan_reports"
                        f" WHERE connection IN ({_marks(names)}) AND reference IN"
                        f" ({_marks(refs)})", (*names, *refs)).fetchall()
    rows = [row for row in rows if row[3] == reference or guesses(conn, row[2])]
    for row in rows:
        conn.execute("DELETE FROM orphan_reports WHERE rowid=?", (row[0],))
    return [row[1] for row in rows]


def drop_orphans(conn, connection: str, older_than: float) -> int:
    """Drop receipts that came on `connection` before `older_than` and never found a part."""
    return conn.execute("DELETE FROM orphan_reports WHERE connection=? AND received<?",
                        (connection, older_than)).rowcount


def _marks(names: list[str]) -> str:
    return ",".join("?" * len(names))
