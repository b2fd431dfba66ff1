"""The journal through a real SQLite file in a temp dir."""

import threading


from appliance.clock import FakeClock
from appliance.compose import Submission, prepare
from appliance.errors import ValidationError
from appliance.model import InboundFragment, Report, ReportStatus, State
from appliance.store.journal import Journal


def new(text="Hello", recipient="+36201234567", **kw):
    return prepare(Submission(user=kw.pop("user", "admin"), recipient=recipient, text=text, **kw))


def state(journal, message_id):
    return journal.get_message(message_id)["state"]


def test_accepted_message_survives_reopening_the_file(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    [mid] = journal.accept([new("persist me")])
    journal.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        assert again.get_message(mid)["body"] == "persist me"
        assert [p.id for p in again.due_parts()] != []
    finally:
        again.close()


def test_concurrent_accepts_share_commits(journal):
    ids, barrier = [], threading.Barrier(32)

    def client():
        barrier.wait()
        for _ in range(10):
            ids.extend(journal.accept([new()]))

    before = journal.commits
    threads = [threading.Thread(target=client) for _ in range(32)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(ids)) == 320
    assert journal.commits - before < 320   # group commit: fewer fsyncs than messages


def test_long_message_is_split_into_parts_with_one_reference(journal):
    [mid] = journal.accept([new("x" * 300)])
    parts = journal.due_parts()
    assert [(p.seq, p.total) for p in parts] == [(1, 2), (2, 2)]
    assert len({p.concat_ref for p in parts}) == 1
    assert "".join(p.text for p in parts) == "x" * 300
    assert journal.get_message(mid)["parts_total"] == 2


def test_part_life_to_delivered_and_orphan_report_applied_late(journal):
    [mid] = journal.accept([new("x" * 200)])
    p1, p2 = journal.due_parts()
    assert journal.claim([(p1.id, "M0"), (p2.id, "M0")]) == [p1.id, p2.id]
    assert state(journal, mid) == "sending"
    journal.part_submitted(p1.id, "M0", "17")
    journal.report(Report("M0", "17", ReportStatus.DELIVERED, recipient="+36201234567"))
    # the report for part 2 arrives before its +CMGS answer was recorded
    journal.report(Report("M0", "18", ReportStatus.DELIVERED, recipient="+36201234567"))
    assert state(journal, mid) == "sending"
    journal.part_submitted(p2.id, "M0", "18")
    assert state(journal, mid) == "delivered"


def test_transient_failure_requeues_with_backoff_and_remembers_the_connection(journal, clock):
    [mid] = journal.accept([new()])
    [part] = journal.due_parts()
    journal.claim([(part.id, "M0")])
    journal.part_failed(part.id, "M0", "cms500", "unknown error", retryable=True)
    assert state(journal, mid) == "queued"
    assert journal.due_parts() == []          # backing off
    clock.advance(10)
    [again] = journal.due_parts()
    assert again.tried == ("M0",) and again.attempts == 1


def test_permanent_failure_ends_in_failed_with_reason(journal):
    [mid] = journal.accept([new()])
    [part] = journal.due_parts()
    journal.claim([(part.id, "M0")])
    journal.part_failed(part.id, "M0", "cms304", "invalid PDU parameter", retryable=False)
    message = journal.get_message(mid)
    assert message["state"] == "failed" and "invalid PDU" in message["reason"]


def test_failed_report_is_undelivered(journal):
    [mid] = journal.accept([new()])
    [part] = journal.due_parts()
    journal.claim([(part.id, "M0")])
    journal.part_submitted(part.id, "M0", "5")
    journal.report(Report("M0", "5", ReportStatus.PENDING))
    assert state(journal, mid) == "submitted"
    journal.report(Report("M0", "5", ReportStatus.FAILED, code=0x41, detail="incompatible"))
    assert state(journal, mid) == "undelivered"


def test_validity_ends_while_waiting_for_a_route(journal, clock):
    [mid] = journal.accept([new(valid_until=clock.now() + 60)])
    journal.housekeeping()
    assert state(journal, mid) == "queued"
    clock.advance(61)
    assert journal.housekeeping()["expired"] == 1
    message = journal.get_message(mid)
    assert message["state"] == "expired" and "validity" in message["reason"]


def test_scheduled_message_waits_for_its_time(journal, clock):
    [mid] = journal.accept([new(send_at=clock.now() + 3600)])
    assert state(journal, mid) == "scheduled" and journal.due_parts() == []
    clock.advance(3600)
    journal.housekeeping()
    assert state(journal, mid) == "queued" and len(journal.due_parts()) == 1


def test_credits_are_debited_per_part_and_exhaustion_refuses(journal):
    journal.set_balance("bob", 3)
    ok = journal.accept([new("y" * 300, user="bob")])      # 2 parts
    assert isinstance(ok[0], str) and journal.balance("bob") == 1
    [refused] = journal.accept([new("y" * 300, user="bob")])
    assert isinstance(refused, ValidationError) and refused.code == "no_credit"
    assert journal.balance("bob") == 1


def test_parts_in_flight_at_a_crash_are_sent_again(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock)
    [mid] = journal.accept([new()])
    [part] = journal.due_parts()
    journal.claim([(part.id, "M0")])
    journal.close()
    again = Journal.open(tmp_path, clock=clock)
    try:
        assert again.requeue_inflight() == 1
        assert state(again, mid) == "queued" and len(again.due_parts()) == 1
    finally:
        again.close()


def test_duplicate_within_window_is_refused(tmp_path, clock):
    journal = Journal.open(tmp_path, clock=clock, dedupe_window=60)
    try:
        journal.accept([new("same")])
        [dup] = journal.accept([new("same")])
        assert isinstance(dup, ValidationError) and dup.code == "duplicate"
        clock.advance(61)
        assert isinstance(journal.accept([new("same")])[0], str)
    finally:
        journal.close()


def test_long_inbound_message_is_joined_across_a_restart(tmp_path, clock):
    def fragment(seq, text):
        return InboundFragment(connection="M0", sender="+3620111", recipient="+3620222",
                               encoding="gsm7", text=text, concat=(7, 2, seq, 8))
    journal = Journal.open(tmp_path, clock=clock)
    journal.inbound(fragment(2, "world"))
    journal.close()
    journal = Journal.open(tmp_path, clock=clock)
    try:
        journal.inbound(fragment(1, "hello "))
        [message] = journal.folder("admin", "inbox")
        assert message["body"] == "hello world" and message["originator"] == "+3620111"
    finally:
        journal.close()


def test_state_aggregation_of_parts():
    from appliance.store.message_state import aggregate
    assert aggregate(["delivered", "delivered"]) == State.DELIVERED
    assert aggregate(["delivered", "submitted"]) == State.SUBMITTED
    assert aggregate(["submitted", "queued"]) == State.SENDING
    assert aggregate(["queued", "queued"]) == State.QUEUED
    assert aggregate(["delivered", "undelivered"]) == State.UNDELIVERED
    assert aggregate(["failed", "expired"]) == State.FAILED


def test_two_different_sms_in_the_same_second_are_both_kept(journal):
    """SCTS has one-second resolution: found by the reliability soak, where the second of two
    SMS from one sender within a second vanished as a 'duplicate'."""
    for text in ("first", "second", "second"):
        journal.inbound(InboundFragment(connection="M0", sender="+3620111",
                                        recipient="+3620222", encoding="gsm7", text=text,
                                        sent_at=1_700_000_000.0))
    assert sorted(m["body"] for m in journal.folder("admin", "inbox")) == ["first", "second"]


def test_an_sms_read_twice_is_kept_once(journal, clock):
    # a crash between our commit and AT+CMGD, or an SMSC redelivery: same sender, SCTS, part
    def fragment(text, seq=None):
        return InboundFragment(connection="M0", sender="+3620111", recipient="+3620222",
                               encoding="gsm7", text=text, sent_at=1_700_000_000.0,
                               concat=(9, 2, seq, 8) if seq else None)
    journal.inbound(fragment("alarm"))
    journal.inbound(fragment("alarm"))
    journal.inbound(fragment("part one ", 1))
    journal.inbound(fragment("part two", 2))
    journal.inbound(fragment("part two", 2))     # re-read after the message was joined
    bodies = sorted(m["body"] for m in journal.folder("admin", "inbox"))
    assert bodies == ["alarm", "part one part two"]
    clock.advance(2 * 3600)
    assert journal.expire_fragments() == 0       # no half message left to surface later


def test_the_journal_and_its_wal_are_not_readable_by_other_users(tmp_path):
    """Found by a helper: outside systemd (umask 022) the -wal and -shm files were 0644,
    and the WAL holds recipients and texts."""
    import os
    import stat
    old = os.umask(0o022)
    try:
        journal = Journal.open(tmp_path, clock=FakeClock())
        journal.query("SELECT 1")
    finally:
        os.umask(old)
    try:
        files = sorted(tmp_path.glob("journal.sqlite3*"))
        assert {f.name for f in files} >= {"journal.sqlite3", "journal.sqlite3-wal"}
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) & 0o007 == 0, f.name
    finally:
        journal.close()


def test_a_write_while_another_thread_is_still_importing_greenlet_goes_through(
        journal, monkeypatch):
    """Found by a helper: the HTTP front imports greenlet after the modem workers start; a
    worker's journal write that saw the half-made module in sys.modules raised
    AttributeError ('partially initialized module'), and an SMS stored on the SIM stayed
    there until the next restart."""
    import sys
    import types
    monkeypatch.setitem(sys.modules, "greenlet", types.ModuleType("greenlet"))  # half made
    journal.inbound(InboundFragment(connection="GSMModem0", sender="+36301234567",
                                    recipient="+36209999999", encoding="gsm7", text="boot"))
    assert [m["body"] for m in journal.folder(None, "inbox")] == ["boot"]
