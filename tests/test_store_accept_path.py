"""The lean accept path (issue 14 targets): one savepoint per accept call, per-message
refusals, debits and ledger; the journal file's page size; the quiet-moment checkpoint.
All through a real SQLite file in the test's temp dir."""

import sqlite3

import pytest

from appliance.compose import Submission, prepare
from appliance.errors import ValidationError
from appliance.store import writer
from appliance.store.documents import Documents
from appliance.store.journal import Journal


def new(text="Hello", recipient="+36201234567", **kw):
    return prepare(Submission(user=kw.pop("user", "bob"), recipient=recipient, text=text, **kw))


def ledger(journal, user):
    return [(r["delta"], r["reason"], r["message_id"]) for r in journal.query(
        "SELECT delta, reason, message_id FROM ledger WHERE user=? AND reason='send'"
        " ORDER BY id", (user,))]


def stored_ids(journal):
    return {r["id"] for r in journal.query("SELECT id FROM messages")}


def test_message_2_of_3_without_credit_refuses_only_itself(journal):
    journal.set_balance("bob", 3)
    one, two, three = new("first"), new("y" * 400), new("third")     # 1, 3 and 1 parts
    results = journal.accept([one, two, three])
    assert results[0] == one.id and results[2] == three.id
    assert isinstance(results[1], ValidationError) and results[1].code == "no_credit"
    assert journal.balance("bob") == 1
    assert ledger(journal, "bob") == [(-1, "send", one.id), (-1, "send", three.id)]
    assert stored_ids(journal) == {one.id, three.id}
    assert len(journal.due_parts()) == 2


def test_a_batch_sees_its_own_debits(journal):
    journal.set_balance("bob", 2)
    results = journal.accept([new("a"), new("b"), new("c")])
    assert [isinstance(r, str) for r in results] == [True, True, False]
    assert results[2].code == "no_credit" and journal.balance("bob") == 0
    assert len(ledger(journal, "bob")) == 2


def test_a_duplicate_id_in_a_batch_is_refused_and_not_debited(journal):
    journal.set_balance("bob", 10)
    first = new("first")
    again = prepare(Submission(user="bob", recipient="+36201234567", text="again",
                               message_id=first.id))
    last = new("last")
    results = journal.accept([first, again, last])
    assert results[0] == first.id and results[2] == last.id
    assert isinstance(results[1], ValidationError) and results[1].code == "duplicate_id"
    assert journal.balance("bob") == 8
    assert [entry[2] for entry in ledger(journal, "bob")] == [first.id, last.id]
    assert journal.get_message(first.id)["body"] == "first"


def test_unlimited_and_unmetered_users_are_not_debited(journal):
    journal.set_balance("bob", 0)
    journal.set_unlimited("bob", True)
    [ok] = journal.accept([new("free")])
    [internal] = journal.accept([new("internal", user="nobody-with-an-account")])
    assert isinstance(ok, str) and isinstance(internal, str)
    assert journal.balance("bob") == 0 and ledger(journal, "bob") == []


def test_a_failing_write_alone_in_its_batch_commits_nothing_and_the_next_one_works(journal):
    def half_then_fail(conn):
        conn.execute("INSERT INTO balances(user, balance) VALUES ('ghost', 5)")
        raise RuntimeError("bug in a write")

    with pytest.raises(RuntimeError):
        journal._write(half_then_fail)
    assert journal.query("SELECT 1 FROM balances WHERE user='ghost'") == []
    journal.set_balance("bob", 1)
    assert isinstance(journal.accept([new()])[0], str)


def _page_size(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


def test_a_new_journal_has_small_pages_and_reopens(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    [mid] = journal.accept([new("kept", user="admin")])
    journal.close()
    assert _page_size(tmp_path / "journal.sqlite3") == writer.PAGE_SIZE == 512
    again = Journal.open(tmp_path, clock=clock)
    try:
        assert again.get_message(mid)["body"] == "kept"
    finally:
        again.close()


def test_a_long_message_outgrows_a_small_page_and_comes_back_whole(tmp_path, clock):
    """With 512-byte pages a 1,530-character message's row (and a long callback) spill into
    overflow pages: what comes back after a reopen is still every character and part."""
    text = "".join(chr(0x41 + i % 26) for i in range(1530))
    callback = "http://192.0.2.10/report?" + "x" * 600
    journal = Journal.open(tmp_path, clock=clock)
    [mid] = journal.accept([new(text, user="admin", callback={"kind": "ozeki_reporturl",
                                                               "url": callback})])
    journal.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        message = again.get_message(mid)
        parts = again.due_parts(limit=20)       # what a channel is handed
        assert message["body"] == text and callback in message["callback"]
        assert [p.seq for p in parts] == list(range(1, 11))
        assert "".join(p.text for p in parts) == text
        assert [tuple(r) for r in again.query("PRAGMA integrity_check")] == [("ok",)]
    finally:
        again.close()


def test_an_old_journal_with_4096_byte_pages_still_opens_and_keeps_them(tmp_path, clock):
    old = sqlite3.connect(tmp_path / "journal.sqlite3")
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE early(x)")        # the file exists with its page size
    old.close()
    journal = Journal.open(tmp_path, clock=clock)
    try:
        [mid] = journal.accept([new("old file", user="admin")])
        assert journal.get_message(mid)["body"] == "old file"
    finally:
        journal.close()
    assert _page_size(tmp_path / "journal.sqlite3") == 4096


def test_the_checkpointer_copies_the_wal_back_once_the_writer_is_idle(journal):
    checkpointer = journal._writer.checkpointer
    checkpointer.stop()               # driven by hand below: no thread racing the asserts
    commits = journal.commits
    journal.accept([new("a", user="admin")])
    journal.accept([new("b", user="admin")])
    assert journal.commits == commits + 2
    last = checkpointer._last_commit
    assert not checkpointer.due(last)                        # still busy a moment ago
    assert checkpointer.due(last + checkpointer._idle)      # quiet for long enough
    busy, frames, copied = checkpointer.run_once()
    assert busy == 0 and frames > 0 and copied == frames
    assert not checkpointer.due(last + 100)                  # nothing new since


def test_the_checkpointer_acts_under_sustained_load_after_enough_commits(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    checkpointer = journal._writer.checkpointer
    checkpointer.stop()
    try:
        for i in range(checkpointer._every):
            journal.accept([new(f"m{i}", user="admin")])
        assert checkpointer.due(checkpointer._last_commit)   # no idle moment needed
    finally:
        journal.close()


def test_documents_see_another_process_change_after_the_recheck_and_their_own_at_once(tmp_path):
    ours = Documents(tmp_path, recheck=3600.0)
    ours.put("users", {"name": "alice", "password_hash": "one"})
    assert ours.get("users", "alice")["password_hash"] == "one"
    other = Documents(tmp_path)                              # `sms-appliance passwd`
    other.put("users", {"name": "alice", "password_hash": "two"})
    assert ours.get("users", "alice")["password_hash"] == "one"     # not looked yet
    ours._checked_at -= 3600.0                               # the recheck time has passed
    assert ours.get("users", "alice")["password_hash"] == "two"
    ours.update("users", "alice", {"password_hash": "three"})
    assert ours.get("users", "alice")["password_hash"] == "three"


def test_every_connection_keeps_a_small_page_cache(journal):
    reader = journal._read()
    assert reader.execute("PRAGMA cache_size").fetchone()[0] == -writer.READER_CACHE_KIB
    ours = journal._writer._conn.execute("PRAGMA cache_size").fetchone()[0]
    assert ours == -writer.WRITER_CACHE_KIB and writer.WRITER_CACHE_KIB < 2000


def test_a_store_error_after_the_message_row_undoes_the_whole_call(journal):
    """Only the message row's own conflict is a refusal (duplicate_id); a failure writing
    its parts is the store's, and leaves neither a message without parts nor a debit."""
    journal.set_balance("bob", 5)
    journal._write(lambda conn: conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON parts WHEN NEW.text = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'parts refused'); END"))
    with pytest.raises(sqlite3.IntegrityError):
        journal.accept([new("fine"), new("boom")])
    assert stored_ids(journal) == set() and journal.balance("bob") == 5
    assert ledger(journal, "bob") == []
