"""The journal's own counters (store/counters.py) against a real SQLite file: they must say
exactly what a full COUNT(*) says, through every write path, and survive an upgrade."""

import sqlite3
import struct

from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.model import Report, ReportStatus
from appliance.store import counters
from appliance.store.journal import DB_NAME, Journal


def new(text="Hello", recipient="+36201234567", **kw):
    return prepare(Submission(user="admin", recipient=recipient, text=text, **kw))


def full_count(journal, table="parts") -> dict:
    rows = journal.query(f"SELECT state, count(*) AS n FROM {table} GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


def test_counters_follow_every_part_transition(journal, clock):
    ids = journal.accept([new("x" * 200), new(), new(), new(send_at=clock.now() + 60),
                          new(valid_until=clock.now() + 30)])
    assert journal.stats()["parts_by_state"] == full_count(journal) == {"queued": 5,
                                                                        "scheduled": 1}
    p1, p2, p3, p4, p5 = journal.due_parts()
    journal.claim([(p1.id, "M0"), (p2.id, "M0"), (p3.id, "M0"), (p4.id, "M1")])
    journal.part_submitted(p1.id, "M0", "1")
    journal.part_submitted(p2.id, "M0", "2")
    journal.report(Report("M0", "1", ReportStatus.DELIVERED))
    journal.part_failed(p3.id, "M0", "cms500", "busy", retryable=True)
    journal.part_failed(p4.id, "M1", "cms304", "bad pdu", retryable=False)
    clock.advance(61)
    journal.housekeeping()                 # the scheduled one is due, the short one expired
    stats = journal.stats()
    assert stats["parts_by_state"] == full_count(journal)
    assert stats["waiting"] == full_count(journal).get("queued", 0)
    assert stats["scheduled"] == 0
    assert len(ids) == 5


def test_oldest_waiting_age_comes_from_the_oldest_part_of_any_priority(journal, clock):
    assert journal.stats()["oldest_waiting_age"] is None
    journal.accept([new(priority=9)])                 # bulk, oldest
    clock.advance(100)
    journal.accept([new(priority=0)])                 # alert, newer
    clock.advance(50)
    assert journal.stats()["oldest_waiting_age"] == 150
    [alert, bulk] = journal.due_parts()
    journal.claim([(bulk.id, "M0")])                  # sending still counts as waiting
    assert journal.stats()["oldest_waiting_age"] == 150
    journal.part_submitted(bulk.id, "M0", "9")
    assert journal.stats()["oldest_waiting_age"] == 50


def test_a_scheduled_message_waits_from_its_send_time(journal, clock):
    """Found by a helper: a campaign accepted an hour before its send time showed as an
    hour late the moment it was due (/health warn, then fail)."""
    journal.accept([new(send_at=clock.now() + 3600)])
    clock.advance(3600 + 20)
    assert journal.housekeeping()["promoted"] == 1
    assert journal.stats()["waiting"] == 1
    assert journal.stats()["oldest_waiting_age"] == 20


def test_pending_callbacks_are_counted_as_events_change(journal):
    journal.accept([new(callback={"kind": "ozeki_reporturl", "url": "http://127.0.0.1:1/x"})])
    [part] = journal.due_parts()
    journal.claim([(part.id, "M0")])
    journal.part_submitted(part.id, "M0", "3")
    pending = full_count(journal, "events").get("pending", 0)
    assert journal.pending_events() == pending > 0
    while events := journal.due_events():             # one at a time per message, in order
        journal.event_done(events[0]["event_id"])
    assert journal.pending_events() == full_count(journal, "events").get("pending", 0) == 0


def test_a_journal_from_before_the_counters_is_counted_once_at_start(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    journal.accept([new(), new("y" * 200)])
    journal.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)        # as an older release left it
    conn.executescript("DROP TABLE state_counts; DROP TRIGGER parts_count_insert;"
                       " DROP TRIGGER parts_count_update; DROP TRIGGER parts_count_delete;")
    conn.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        assert again.stats()["parts_by_state"] == {"queued": 3}
        again.accept([new()])
        assert again.stats()["parts_by_state"] == {"queued": 4}
    finally:
        again.close()


def test_deleting_rows_keeps_the_counts(journal):
    journal.accept([new(), new()])
    journal._write(lambda conn: conn.execute("DELETE FROM parts WHERE id=(SELECT min(id)"
                                             " FROM parts)"))
    assert journal.stats()["parts_by_state"] == full_count(journal) == {"queued": 1}


def drain_in_batches(journal, connection="S0"):
    """Claim every due part as the dispatcher does (one-part messages set-wise) and record
    their submit results as the SMPP channel does (`parts_submitted`)."""
    parts = journal.due_parts()
    claimed = journal.claim_whole([(p.id, connection, p.message_id, p.total) for p in parts])
    return [p for p in parts if p.id in claimed]


def test_batch_claims_and_results_keep_the_counts_exact(journal):
    journal.accept([new(recipient=f"+3620{i:07d}") for i in range(20)] + [new("z" * 200)])
    parts = drain_in_batches(journal)
    assert journal.stats()["parts_by_state"] == full_count(journal) == {"sending": 22}
    singles = [p for p in parts if p.total == 1]
    # counted set-wise: the rows carry the mark the trigger skips
    assert journal.query("SELECT count(*) AS n FROM parts WHERE counted_apart>0")[0]["n"] == 20
    back = singles[0]                                 # given back before its result came
    journal.part_failed(back.id, "S0", "link_down", "link lost", retryable=True)
    journal.parts_submitted("S0", [(p.id, f"R{p.id}") for p in parts])
    assert journal.stats()["parts_by_state"] == full_count(journal)
    assert full_count(journal) == {"submitted": 22}     # the given-back one part by part
    journal.report(Report("S0", f"R{singles[1].id}", ReportStatus.DELIVERED))
    assert journal.stats()["parts_by_state"] == full_count(journal)


def test_a_journal_whose_trigger_counts_every_row_is_upgraded(tmp_path, clock):
    """An older release's parts trigger counts every state change; after the upgrade the
    batch path's changes are counted once, not twice."""
    journal = Journal.open(tmp_path, clock=clock)
    journal.accept([new(recipient=f"+3620{i:07d}") for i in range(5)])
    journal.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)        # as the release before left it
    conn.executescript(
        "DROP TRIGGER parts_count_update; ALTER TABLE parts DROP COLUMN counted_apart;"
        " CREATE TRIGGER parts_count_update AFTER UPDATE OF state ON parts"
        " WHEN OLD.state IS NOT NEW.state BEGIN"
        " UPDATE state_counts SET n = n - 1 WHERE tbl = 'parts' AND state = OLD.state;"
        " INSERT INTO state_counts(tbl, state, n) VALUES ('parts', NEW.state, 1)"
        " ON CONFLICT(tbl, state) DO UPDATE SET n = n + 1; END;")
    conn.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        parts = drain_in_batches(again)
        again.parts_submitted("S0", [(p.id, f"R{p.id}") for p in parts])
        assert again.stats()["parts_by_state"] == full_count(again) == {"submitted": 5}
    finally:
        again.close()


def last_commit_pages(db_path) -> set[int]:
    """The pages the WAL's last commit wrote (frames of the current salt only: a WAL
    restarted after a checkpoint keeps older frames past its end)."""
    data = (db_path.parent / (db_path.name + "-wal")).read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    salt = data[16:24]
    commits, current = [], set()
    for at in range(32, len(data) - 24 - page_size + 1, 24 + page_size):
        page, size_after = struct.unpack(">II", data[at:at + 8])
        if data[at + 8:at + 16] != salt:
            break
        current.add(page)
        if size_after:               # a commit frame ends the transaction
            commits.append(current)
            current = set()
    return commits[-1]


def test_an_accept_commit_writes_one_counter_page(journal):
    """The accepted counts and the parts' state counts are rows of one table: an accept
    commit writes one counter page into the WAL, not one per counter table (a page per
    commit on the SD card)."""
    journal.accept([new(recipient=f"+3620{i:07d}") for i in range(3)])
    journal.accept([new(recipient=f"+3630{i:07d}") for i in range(3)])
    conn = sqlite3.connect(journal.path)
    try:
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    finally:
        conn.close()
    written = {owner.get(p) for p in last_commit_pages(journal.path)}
    assert {"messages", "parts"} <= written
    assert sorted(n for n in written if n and "count" in n) == ["state_counts"]
    assert counters.accepted(journal) == [("out", "ozeki", "admin", 6)]


def test_a_journal_with_an_accepted_counter_table_keeps_its_counts(tmp_path, clock):
    """A journal from before the accepted counts moved into state_counts: its
    `counter_accepted` table is carried over and dropped with its trigger."""
    journal = Journal.open(tmp_path, clock=clock)
    journal.accept([new(), new()])
    journal.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)        # as the release before left it
    conn.executescript(
        "DROP TRIGGER accepted_count_insert; DELETE FROM state_counts WHERE tbl='accepted';"
        " CREATE TABLE counter_accepted (direction TEXT NOT NULL, dialect TEXT NOT NULL,"
        " user TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (direction, dialect, user))"
        " WITHOUT ROWID;"
        " CREATE TRIGGER counter_accepted_ins AFTER INSERT ON messages BEGIN"
        " INSERT INTO counter_accepted VALUES (new.direction, new.dialect, new.user, 1)"
        " ON CONFLICT(direction, dialect, user) DO UPDATE SET n = n + 1; END;"
        " INSERT INTO counter_accepted VALUES ('out', 'ozeki', 'admin', 7),"
        " ('in', '', 'admin', 2);")
    conn.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        again.accept([new()])
        assert sorted(counters.accepted(again)) == [("in", "", "admin", 2),
                                                    ("out", "ozeki", "admin", 8)]
        assert again.query("SELECT name FROM sqlite_master WHERE name LIKE"
                           " 'counter_accepted%'") == []
    finally:
        again.close()


def test_an_accepted_counter_table_made_again_by_a_rollback_is_dropped(tmp_path, clock):
    """The release before the move, started on an upgraded journal (a rollback), makes its
    `counter_accepted` again, counted from the messages; the next start of this release drops
    it and its trigger (an extra page per accept commit) and keeps the counts state_counts
    went on keeping, messages purged meanwhile included."""
    journal = Journal.open(tmp_path, clock=clock)
    journal.accept([new(), new()])
    journal.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)        # as the release before leaves it
    conn.executescript(
        "CREATE TABLE counter_accepted (direction TEXT NOT NULL, dialect TEXT NOT NULL,"
        " user TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (direction, dialect, user))"
        " WITHOUT ROWID;"
        " CREATE TRIGGER counter_accepted_ins AFTER INSERT ON messages BEGIN"
        " INSERT INTO counter_accepted VALUES (new.direction, new.dialect, new.user, 1)"
        " ON CONFLICT(direction, dialect, user) DO UPDATE SET n = n + 1; END;"
        " INSERT INTO counter_accepted VALUES ('out', 'ozeki', 'admin', 1);")   # one purged
    conn.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        again.accept([new()])
        assert counters.accepted(again) == [("out", "ozeki", "admin", 3)]
        assert again.query("SELECT name FROM sqlite_master WHERE name LIKE"
                           " 'counter_accepted%'") == []
    finally:
        again.close()
