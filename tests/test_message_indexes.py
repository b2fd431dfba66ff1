"""The messages table's indexes (store/message_indexes.py): an accept with no dedupe window
writes no dedupe index entry; a journal made before this layout is migrated in place."""

from __future__ import annotations

import sqlite3

from appliance.compose import Submission, prepare
from appliance.errors import ValidationError
from appliance.store.journal import Journal


def send(journal, text="hello", **fields):
    (result,) = journal.accept([prepare(Submission(user="admin", recipient="+36201234567",
                                                   text=text, **fields))])
    return result


def index_entries(path, index: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM messages INDEXED BY {index}"
                            " WHERE dedupe = 1").fetchone()[0]
    finally:
        conn.close()


def message_indexes(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='messages'")}
    finally:
        conn.close()


def test_without_a_window_duplicates_are_accepted_and_not_indexed(journal):
    first, second = send(journal), send(journal)
    assert isinstance(first, str) and isinstance(second, str) and first != second
    assert index_entries(journal.path, "messages_dedupe_window") == 0


def test_under_a_window_the_duplicate_check_finds_marked_messages_by_their_index(journal,
                                                                                  clock):
    assert isinstance(send(journal, dedupe_window=60), str)
    assert isinstance(send(journal), str)                # no window: not checked, accepted
    refused = send(journal, dedupe_window=60)
    assert isinstance(refused, ValidationError) and refused.code == "duplicate"
    assert index_entries(journal.path, "messages_dedupe_window") == 1
    clock.advance(61)
    assert isinstance(send(journal, dedupe_window=60), str)
    conn = sqlite3.connect(journal.path)
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM messages WHERE dedupe=1 AND direction='out' AND"
        " user=? AND recipient=? AND created>=? AND body=? LIMIT 1", ("a", "b", 0, "c")))
    conn.close()
    assert "USING INDEX messages_dedupe_window" in plan


def test_only_the_indexes_queries_need_are_kept(journal):
    assert message_indexes(journal.path) == {
        "sqlite_autoindex_messages_1", "messages_box", "messages_dedupe_window"}


def test_an_old_journal_is_migrated_in_place(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    kept = send(journal)
    journal.close()
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")      # the layout before this one
    conn.executescript(
        "DROP INDEX messages_dedupe_window; ALTER TABLE messages DROP COLUMN dedupe;"
        "CREATE INDEX messages_dedupe ON messages(user, recipient, created)"
        " WHERE direction = 'out'; CREATE INDEX messages_created ON messages(created);")
    conn.close()
    journal = Journal.open(tmp_path, clock=clock)
    try:
        assert message_indexes(journal.path) == {
            "sqlite_autoindex_messages_1", "messages_box", "messages_dedupe_window"}
        assert journal.get_message(kept)["dedupe"] == 0
        assert isinstance(send(journal, dedupe_window=60), str)
        assert send(journal, dedupe_window=60).code == "duplicate"
    finally:
        journal.close()
