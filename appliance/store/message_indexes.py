"""The `messages` table's secondary indexes, kept to what its queries need.

Every index is one more B-tree whose right-edge page each group commit rewrites into the WAL
(a dozen pages per commit at the c=8 load of bench/vs_kannel.py: SD card wear and writer
CPU per accepted message). Two were paid for on every accept and used rarely:

- `messages_created` served newest-first lists. Rows are inserted in acceptance order, so
  those lists walk the table backwards by rowid instead (web/dashboard_data.py).
- `messages_dedupe` indexed every outgoing message for the duplicate check, which runs only
  under a dedupe window (`[store] dedupe_window_seconds`, a user's `dedupe_window`; off by
  default). A message accepted under a window is marked `dedupe = 1`, and only those are
  indexed, so with no window an accept touches no dedupe index at all.
"""

from __future__ import annotations

import sqlite3

DEDUPE_INDEX = ("CREATE INDEX IF NOT EXISTS messages_dedupe_window"
                " ON messages(user, recipient, created) WHERE dedupe = 1")


def migrate(conn: sqlite3.Connection) -> None:
    """Idempotent. A journal from before this layout gets the `dedupe` column (messages it
    already holds are not marked: a duplicate of one of them within the first window after
    the upgrade is accepted) and loses the two indexes."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "dedupe" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN dedupe INTEGER NOT NULL DEFAULT 0")
    conn.execute("DROP INDEX IF EXISTS messages_created")
    conn.execute("DROP INDEX IF EXISTS messages_dedupe")
    conn.execute(DEDUPE_INDEX)
