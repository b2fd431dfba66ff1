"""The journal's own counters (store/counters.py) against a real SQLite file: they must say
exactly what a full COUNT(*) says, through every write path, and survive an upgrade."""

import sqlite3


from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.model import Report, ReportStatus
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
